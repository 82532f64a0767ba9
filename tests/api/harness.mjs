// Test harness for the API suite: runs the real `rapport` binary on port 0 with a temp data dir.
//
//   const srv = await startServer();            // fresh data dir, waits for "listening on …"
//   const admin = await srv.userClient('admin', {role: 'Administrator'});  // user + API token
//   const r = await admin.post('/api/v1/accounts', {name: 'x'});  // → {status, headers, json, text}
//   await srv.stop();                           // SIGTERM, waits for exit
//
// Every server and temp dir is also cleaned up when the test process exits.
//
// PostgreSQL: with RAPPORT_TEST_PG_URL=postgresql://USER@HOST:PORT/DB (a cluster from
// tests/pg/start_pg.sh) every data dir gets a fresh database of its own on that cluster, and
// every server and CLI command run with `--data DIR` also gets `--database URL/that-db`. Tests
// that only make sense on SQLite use `test(name, { skip: sqliteOnly('why') }, fn)`.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';

const execFileP = promisify(execFile);

export const PG_URL = process.env.RAPPORT_TEST_PG_URL || '';
export const BACKEND = PG_URL ? 'postgresql' : 'sqlite';

/** For node:test's `skip` option: false on SQLite, else the reason the test is skipped. */
export function sqliteOnly(reason) {
  return PG_URL ? `SQLite only: ${reason}` : false;
}

export const BIN = resolve(process.env.RAPPORT_BIN || new URL('../../build/rapport', import.meta.url).pathname);
if (!existsSync(BIN)) throw new Error(`rapport binary not found at ${BIN} (set RAPPORT_BIN)`);

const tempDirs = new Set();
const live = new Set();

// Data dir → name of its PostgreSQL database (PG_URL only). Names carry the pid: node --test runs
// each file in a process of its own, all on one cluster.
const pgDatabases = new Map();
let pgCounter = 0;

/** URL of the server's maintenance database with the last path segment replaced by `db`. */
export function pgDatabaseUrl(db) {
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

function psql(sqls) {
  return execFileP('psql', [PG_URL, '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...sqls.flatMap((q) => ['-c', q])], { timeout: 60_000 });
}

/**
 * The `--database` URL of a data dir (creating its database on first use), or undefined on
 * SQLite.
 */
export async function databaseFor(dataDir) {
  if (!PG_URL) return undefined;
  const key = resolve(dataDir);
  let entry = pgDatabases.get(key);
  if (!entry) {
    const name = `rt_${process.pid}_${++pgCounter}`;
    entry = { name, created: psql([`CREATE DATABASE ${name}`]) };
    pgDatabases.set(key, entry);
  }
  await entry.created;
  return pgDatabaseUrl(entry.name);
}

// `--data DIR` plus, on PostgreSQL, `--database URL` of DIR's database.
async function withDatabase(args) {
  if (!PG_URL || args.includes('--database')) return args;
  const i = args.indexOf('--data');
  if (i < 0 || i + 1 >= args.length) return args;
  return [...args, '--database', await databaseFor(args[i + 1])];
}

process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
  if (PG_URL && pgDatabases.size) {
    const drops = [...pgDatabases.values()].flatMap((e) => ['-c', `DROP DATABASE IF EXISTS ${e.name} WITH (FORCE)`]);
    try { execFileSync('psql', [PG_URL, '-X', '-q', ...drops], { stdio: 'ignore', timeout: 30_000 }); } catch { /* the cluster is thrown away anyway */ }
  }
  for (const d of tempDirs) {
    try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

/** A new empty temp directory, removed when the process exits (or by cleanup()). */
export function tempDir(prefix = 'rapport-test-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

export function cleanup() {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** Runs a rapport CLI command; resolves to stdout, rejects with stderr on a non-zero exit. */
export async function cli(...args) {
  args = await withDatabase(args);
  try {
    const { stdout } = await execFileP(BIN, args, { timeout: 60_000 });
    return stdout;
  } catch (e) {
    throw new Error(`rapport ${args.join(' ')} failed (${e.code}): ${e.stderr || e.message}`);
  }
}

export async function addUser(dataDir, name, { password = 'secret-password-1', role = 'Sales', team } = {}) {
  const args = ['user', 'add', name, '--password', password, '--role', role, '--data', dataDir];
  if (team) args.push('--team', team);
  const out = await cli(...args);
  const m = /\(id (\d+)\)/.exec(out);
  return { name, password, role, team, id: m ? m[1] : undefined };
}

export async function createToken(dataDir, name) {
  const out = await cli('token', 'create', name, '--data', dataDir);
  const token = out.trim().split('\n').pop().trim();
  assert.match(token, /^\S{16,}$/, `token create printed ${JSON.stringify(out)}`);
  return token;
}

/**
 * HTTP helper. opts: {body (object → JSON, string → as is, Buffer), headers, token, session
 * ({cookie, csrf}), csrf (false to leave the header out), raw (don't parse)}.
 * Resolves to {status, headers (Headers), json, text, body}.
 */
export async function request(base, method, path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.session) {
    headers.cookie = opts.session.cookie;
    if (opts.csrf !== false && method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = opts.session.csrf;
  }
  let body = opts.body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
    body = JSON.stringify(body);
  }
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body, redirect: 'manual' });
  const buf = Buffer.from(await res.arrayBuffer());
  const text = buf.toString('utf8');
  let json;
  const ct = res.headers.get('content-type') || '';
  if (!opts.raw && /json/.test(ct) && text.length) {
    try { json = JSON.parse(text); } catch { json = undefined; }
  }
  return { status: res.status, headers: res.headers, json, text, body: buf };
}

/** A client bound to one server and one credential (token or session). */
export class Client {
  constructor(base, auth = {}) {
    this.base = base;
    this.auth = auth; // {token} or {session}
  }
  req(method, path, opts = {}) { return request(this.base, method, path, { ...this.auth, ...opts }); }
  get(path, opts) { return this.req('GET', path, opts); }
  post(path, body, opts = {}) { return this.req('POST', path, { ...opts, body }); }
  patch(path, body, opts = {}) { return this.req('PATCH', path, { ...opts, body }); }
  put(path, body, opts = {}) { return this.req('PUT', path, { ...opts, body }); }
  del(path, opts) { return this.req('DELETE', path, opts); }

  /** POST that must answer 201; returns the record. */
  async create(plural, body) {
    const r = await this.post(`/api/v1/${plural}`, body);
    assert.equal(r.status, 201, `create ${plural} ${JSON.stringify(body)} → ${r.status} ${r.text}`);
    return r.json;
  }

  /** GET a list that must answer 200; returns {items, next_cursor}. */
  async list(plural, params = {}) {
    const r = await this.get(`/api/v1/${plural}?${qs(params)}`);
    assert.equal(r.status, 200, `list ${plural} ${qs(params)} → ${r.status} ${r.text}`);
    return r.json;
  }
}

/** URL query string from an object; objects/arrays (filters) are JSON-encoded. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    u.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return u.toString();
}

/** Logs in; returns {cookie, csrf, user, response}. Asserts 200. */
export async function login(base, username, password) {
  const r = await request(base, 'POST', '/api/v1/auth/login', { body: { username, password } });
  assert.equal(r.status, 200, `login ${username} → ${r.status} ${r.text}`);
  const setCookie = r.headers.get('set-cookie') || '';
  const m = /rapport_session=([^;]*)/.exec(setCookie);
  assert.ok(m && m[1], `no session cookie in ${setCookie}`);
  return { cookie: `rapport_session=${m[1]}`, csrf: r.json.csrf_token, user: r.json.user, response: r };
}

/** Asserts an RFC 9457 problem with the given status, code and (optionally) field. */
export function assertProblem(r, status, code, field) {
  const where = `${r.status} ${r.text.slice(0, 400)}`;
  assert.equal(r.status, status, `expected ${status} ${code}${field ? ' ' + field : ''}, got ${where}`);
  assert.match(r.headers.get('content-type') || '', /application\/problem\+json/, where);
  assert.ok(r.json, `problem body is not JSON: ${where}`);
  assert.equal(r.json.code, code, `expected code ${code}, got ${where}`);
  assert.equal(r.json.status, status, where);
  assert.equal(r.json.type, `https://rapport.dev/problems/${code}`, where);
  assert.equal(typeof r.json.title, 'string', where);
  if (field !== undefined) assert.equal(r.json.field, field, `expected field ${field}, got ${where}`);
}

// Server.cast: the standing users of the API tests and what they are.
const CAST = {
  admin: { role: 'Administrator' },
  north1: { role: 'Sales', team: 'North' },
  north2: { role: 'Sales', team: 'North' },
  south1: { role: 'Sales', team: 'South' },
  manager: { role: 'Sales manager', team: 'North' },
};

export class Server {
  constructor(dataDir, extraArgs = []) {
    this.dataDir = dataDir;
    this.extraArgs = extraArgs;
    this.proc = null;
    this.url = null;
    this.output = '';
    this.exited = null;
  }

  async start() {
    const args = await withDatabase(['serve', '--data', this.dataDir, '--port', '0', '--log-level', 'warn',
      '--static', join(this.dataDir, 'no-static'),
      // The scheduled duplicate scan would race tests that count what a scan adds: off unless
      // a test asks for it.
      ...(this.extraArgs.includes('--scan-every') ? [] : ['--scan-every', '0']), ...this.extraArgs]);
    const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    live.add(proc);
    this.exited = new Promise((res) => proc.on('exit', (code, signal) => { live.delete(proc); res({ code, signal }); }));
    const keep = (chunk) => {
      this.output += chunk.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    proc.stderr.on('data', keep);
    this.url = await new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`server did not start in 20 s:\n${this.output}`)), 20_000);
      proc.stdout.on('data', (chunk) => {
        keep(chunk);
        const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(this.output);
        if (m) { clearTimeout(timer); res(m[1]); }
      });
      proc.on('exit', (code) => { clearTimeout(timer); rej(new Error(`server exited (${code}) before listening:\n${this.output}`)); });
      proc.on('error', (e) => { clearTimeout(timer); live.delete(proc); rej(Object.assign(new Error(`cannot run ${BIN}: ${e.message}`), { spawnError: true })); });
    });
    return this;
  }

  client(auth = {}) { return new Client(this.url, auth); }
  request(method, path, opts) { return request(this.url, method, path, opts); }
  login(username, password) { return login(this.url, username, password); }
  addUser(name, opts) { return addUser(this.dataDir, name, opts); }
  token(name) { return createToken(this.dataDir, name); }

  /** Adds a user, makes an API token for it, returns a Client with .user and .token. */
  async userClient(name, opts = {}) {
    const user = await this.addUser(name, opts);
    const token = await this.token(name);
    const c = this.client({ token });
    c.user = user;
    c.token = token;
    return c;
  }

  /**
   * The tests' standing cast, one userClient each, in the order named: admin (Administrator),
   * north1 and north2 (Sales, team North), south1 (Sales, team South), manager (Sales manager,
   * team North). `const [admin, north, south] = await srv.cast('admin', 'north1', 'south1')`.
   */
  cast(...names) {
    return Promise.all(names.map((n) => {
      const opts = CAST[n];
      if (!opts) throw new Error(`cast: no standing user ${n} (${Object.keys(CAST).join(', ')})`);
      return this.userClient(n, opts);
    }));
  }

  /** Graceful stop: SIGTERM, wait for exit; returns {code, signal}. */
  async stop(timeoutMs = 15_000) {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  /** kill -9 and wait for the process to be gone. */
  async kill() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    return this.exited;
  }
}

/** Starts a server on a fresh (or the given) data dir. */
export async function startServer({ dataDir, args = [] } = {}) {
  const dir = dataDir || tempDir();
  for (let attempt = 1; ; attempt++) {
    try {
      return await new Server(dir, args).start();
    } catch (e) {
      // A binary being relinked at this moment (ETXTBSY, ENOEXEC) is worth a second try.
      if (!e.spawnError || attempt >= 3) throw e;
      await sleep(1000);
    }
  }
}

/**
 * Starts several servers at once (e.g. two on one PostgreSQL database). If any fails to start,
 * the others are stopped before the error is thrown: a server left running would keep the test
 * process alive, and the suite would hang instead of failing.
 */
export async function startServers(...optionsList) {
  const settled = await Promise.allSettled(optionsList.map((o) => startServer(o)));
  const failed = settled.find((r) => r.status === 'rejected');
  if (!failed) return settled.map((r) => r.value);
  await Promise.all(settled.filter((r) => r.status === 'fulfilled').map((r) => r.value.stop()));
  throw failed.reason;
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Walks every page of a list; returns all items. */
export async function listAll(client, plural, params = {}) {
  const all = [];
  let cursor;
  for (let i = 0; i < 10_000; i++) {
    const page = await client.list(plural, { ...params, cursor });
    all.push(...page.items);
    if (!page.next_cursor) return all;
    cursor = page.next_cursor;
  }
  throw new Error('paging did not end');
}
