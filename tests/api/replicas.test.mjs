// Read replicas (issue 6): `serve --database-replica URL` sends the reads of GET requests to a
// streaming replica, while a user always reads their own writes (the commit position travels
// in the rapport_read_after cookie or the Rapport-Read-After header, and per user inside one
// server), and a replica that lags or is gone never fails a request. PostgreSQL only: the test
// builds a real streaming replica of the test cluster with tests/pg/start_replica.sh.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, tempDir, addUser, createToken, databaseFor, login, request, PG_URL, BIN } from './harness.mjs';

const skip = PG_URL ? false : 'needs PostgreSQL: set RAPPORT_TEST_PG_URL (make test does)';
const pgDir = fileURLToPath(new URL('../pg/', import.meta.url));

let dir, replicaDir, replicaUrl, dbUrl;
let a, b;
let token, salesToken;
const servers = [];

function psql(url, sql) {
  return execFileSync('psql', [url, '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], { timeout: 30_000 }).toString().trim();
}

/** `url` (primary database) with the replica's host and port. */
function onReplica(url) {
  const u = new URL(url);
  const r = new URL(replicaUrl);
  u.host = r.host;
  return u.toString();
}

async function poll(what, fn, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Session cookie plus the read-after cookie of `response`, as a browser would keep them. */
function keepCookies(session, response) {
  const m = /rapport_read_after=([0-9a-f]+)/.exec(response.headers.get('set-cookie') || '');
  assert.ok(m, `no rapport_read_after cookie after a write: ${response.headers.get('set-cookie')}`);
  return { ...session, cookie: `${session.cookie.split(';')[0]}; rapport_read_after=${m[1]}` };
}

before(async () => {
  if (skip) return;
  const out = execFileSync(`${pgDir}start_replica.sh`, [PG_URL], { timeout: 120_000 }).toString().trim().split('\n');
  [replicaUrl, replicaDir] = out;
  dir = tempDir();
  await addUser(dir, 'admin', { role: 'Administrator', password: 'admin-password-1' });
  await addUser(dir, 'sales', { role: 'Sales', password: 'sales-password-1' });
  token = await createToken(dir, 'admin');
  salesToken = await createToken(dir, 'sales');  // never writes through the servers
  dbUrl = await databaseFor(dir);
  // The replica has the test database once it has replayed its creation.
  await poll('the test database on the replica', () => {
    try { return psql(onReplica(dbUrl), 'SELECT count(*) FROM "user"') === '2'; } catch { return false; }
  });
  // Server A has its replica on the command line, server B in its configuration file.
  const config = join(tempDir(), 'rapport.toml');
  writeFileSync(config, `[serve]\ndatabase-replica = ["${onReplica(dbUrl)}"]\npool-size = 4\n`);
  [a, b] = await Promise.all([
    startServer({ dataDir: dir, args: ['--database-replica', onReplica(dbUrl)] }),
    startServer({ dataDir: dir, args: ['--config', config] }),
  ]);
  servers.push(a, b);
});
after(async () => {
  for (const s of servers) await s.kill();
  if (replicaDir) {
    try { psql(replicaUrl, 'SELECT pg_wal_replay_resume()'); } catch { /* stopped by the last test */ }
    execFileSync(`${pgDir}stop_pg.sh`, [replicaDir]);
  }
});

test('GET requests are served by the replica (header and the replica\'s pg_stat_activity)', { skip }, async () => {
  const session = await login(a.url, 'sales', 'sales-password-1');
  const r = await poll('a list served by the replica', async () => {
    const res = await request(a.url, 'GET', '/api/v1/accounts', { session });
    assert.equal(res.status, 200, res.text);
    return res.headers.get('rapport-read-from') === 'replica' && res;
  });
  // B's replica comes from its configuration file.
  const sessionB = await login(b.url, 'sales', 'sales-password-1');
  await poll('a list served by B\'s replica (from the config file)', async () => {
    const res = await request(b.url, 'GET', '/api/v1/accounts', { session: sessionB });
    assert.equal(res.status, 200, res.text);
    return res.headers.get('rapport-read-from') === 'replica';
  });
  assert.ok(Array.isArray(r.json.items));
  const dbName = new URL(dbUrl).pathname.slice(1);
  const conns = psql(replicaUrl, `SELECT count(*) FROM pg_stat_activity WHERE datname = '${dbName}' AND application_name = 'rapport'`);
  assert.ok(Number(conns) >= 1, `rapport connections on the replica: ${conns}`);
  // Writes and authentication stay on the primary: a POST carries no Rapport-Read-From.
  const created = await request(a.url, 'POST', '/api/v1/accounts', { session, body: { name: '副本路由测试' } });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.headers.get('rapport-read-from'), null);
  assert.match(created.headers.get('rapport-read-after') || '', /^[0-9a-f]+$/);
});

test('with replay paused, a user reads and lists their own new record at once, on either server', { skip }, async () => {
  psql(replicaUrl, 'SELECT pg_wal_replay_pause()');
  try {
    await poll('replay paused', () => psql(replicaUrl, 'SELECT pg_get_wal_replay_pause_state()') === 'paused');
    let session = await login(a.url, 'sales', 'sales-password-1');
    const created = await request(a.url, 'POST', '/api/v1/accounts', { session, body: { name: '暂停回放有限公司', city: '苏州' } });
    assert.equal(created.status, 201, created.text);
    session = keepCookies(session, created);
    const id = created.json.id;
    // The replica has not replayed the insert; it is not visible there.
    assert.equal(psql(onReplica(dbUrl), `SELECT count(*) FROM account WHERE id = ${id}`), '0');
    for (const srv of [a, b]) {
      const got = await request(srv.url, 'GET', `/api/v1/accounts/${id}`, { session });
      assert.equal(got.status, 200, `${srv.url}: ${got.text}`);
      assert.equal(got.json.name, '暂停回放有限公司');
      assert.equal(got.headers.get('rapport-read-from'), 'primary');
      const list = await request(srv.url, 'GET', '/api/v1/accounts?limit=200', { session });
      assert.equal(list.status, 200, list.text);
      assert.ok(list.json.items.some((x) => x.id === id), `list through ${srv.url} shows the new record`);
      const search = await request(srv.url, 'GET', `/api/v1/search?q=${encodeURIComponent('暂停回放')}`, { session });
      assert.ok(search.json.items.some((x) => x.id === id), `search through ${srv.url} finds it`);
    }
    // An API client: the same server remembers its user's last write; another server is told
    // by the Rapport-Read-After header.
    const made = await request(a.url, 'POST', '/api/v1/contacts', { token, body: { full_name: '回放暂停联系人' } });
    assert.equal(made.status, 201, made.text);
    const got = await request(a.url, 'GET', `/api/v1/contacts/${made.json.id}`, { token });
    assert.equal(got.status, 200, got.text);
    const viaB = await request(b.url, 'GET', `/api/v1/contacts/${made.json.id}`, {
      token, headers: { 'rapport-read-after': made.headers.get('rapport-read-after') },
    });
    assert.equal(viaB.status, 200, viaB.text);
    assert.equal(viaB.headers.get('rapport-read-from'), 'primary');
    // A new column the paused replica lacks: a GET whose reads the replica fails is answered
    // from the primary (the first attempt on the replica, or the lag floor, sends it there).
    const field = await request(a.url, 'POST', '/api/v1/metadata/account/fields', { token, body: { name: 'replica_probe', type: 'text' } });
    assert.equal(field.status, 201, field.text);
    for (const srv of [a, b]) {
      let r;
      for (let i = 0; i < 200; i++) {  // B learns of the field through NOTIFY
        r = await request(srv.url, 'GET', '/api/v1/accounts?limit=5&fields=id,replica_probe', { token: salesToken });
        if (r.status !== 400) break;
        await new Promise((res) => setTimeout(res, 25));
      }
      assert.equal(r.status, 200, `${srv.url}: ${r.text}`);
      assert.equal(r.headers.get('rapport-read-from'), 'primary');
    }
  } finally {
    psql(replicaUrl, 'SELECT pg_wal_replay_resume()');
  }
  // Once replayed, the same session's reads go back to the replica.
  const session = await login(b.url, 'sales', 'sales-password-1');
  await poll('reads back on the replica', async () =>
    (await request(b.url, 'GET', '/api/v1/accounts', { session })).headers.get('rapport-read-from') === 'replica');
});

test('with the replica stopped, every request still succeeds (from the primary)', { skip }, async () => {
  const session = await login(a.url, 'sales', 'sales-password-1');
  execFileSync(`${pgDir}stop_pg.sh`, [replicaDir]);
  replicaDir = undefined;
  for (const srv of [a, b]) {
    for (const path of ['/api/v1/accounts', '/api/v1/contacts?limit=5', `/api/v1/search?q=${encodeURIComponent('有限公司')}`,
      '/api/v1/accounts/export.csv', '/api/v1/auth/me', '/api/v1/metadata']) {
      const r = await request(srv.url, 'GET', path, { session });
      assert.equal(r.status, 200, `${srv.url}${path}: ${r.status} ${r.text.slice(0, 300)}`);
      if (path !== '/api/v1/auth/me' && path !== '/api/v1/metadata') assert.equal(r.headers.get('rapport-read-from'), 'primary');
    }
    const created = await request(srv.url, 'POST', '/api/v1/accounts', { session, body: { name: `无副本 ${srv.url}` } });
    assert.equal(created.status, 201, created.text);
    const got = await request(srv.url, 'GET', `/api/v1/accounts/${created.json.id}`, { session });
    assert.equal(got.status, 200, got.text);
  }
});

test('on SQLite, serve --database-replica is refused with the option named', { skip: PG_URL ? 'SQLite only' : false }, async () => {
  const d = tempDir();
  let err;
  try {
    execFileSync(BIN, ['serve', '--data', d, '--port', '0', '--database-replica', 'postgresql://x@127.0.0.1:1/x'], { timeout: 20_000, stdio: 'pipe' });
  } catch (e) { err = e; }
  assert.ok(err, 'serve must refuse');
  assert.equal(err.status, 1);
  assert.match(err.stderr.toString(), /error: read replicas need a PostgreSQL database \(database-replica\)/);
});

test('--pool-size 1: concurrent requests share one PostgreSQL connection and all succeed', { skip }, async () => {
  const d = tempDir();
  await addUser(d, 'admin', { role: 'Administrator', password: 'admin-password-1' });
  const t = await createToken(d, 'admin');
  const srv = await startServer({ dataDir: d, args: ['--pool-size', '1'] });
  servers.push(srv);
  const c = srv.client({ token: t });
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 3 === 0
    ? c.post('/api/v1/accounts', { name: `连接池 ${i}` })
    : c.get('/api/v1/accounts?limit=5'))));
  for (const r of results) assert.ok(r.status === 200 || r.status === 201, `${r.status} ${r.text}`);
  const dbName = new URL(await databaseFor(d)).pathname.slice(1);
  // The pool's connection plus the one holding the id node lock (the LISTEN connection is
  // named rapport-notify).
  const n = Number(psql(PG_URL, `SELECT count(*) FROM pg_stat_activity WHERE datname = '${dbName}' AND application_name = 'rapport'`));
  assert.ok(n >= 1 && n <= 2, `rapport connections: ${n}`);
});

test('--pool-size 0 is refused', async () => {
  let err;
  try {
    execFileSync(BIN, ['serve', '--data', tempDir(), '--port', '0', '--pool-size', '0'], { timeout: 20_000, stdio: 'pipe' });
  } catch (e) { err = e; }
  assert.ok(err, 'serve must refuse');
  assert.notEqual(err.status, 0);
  assert.match(err.stderr.toString(), /--pool-size: Value 0 not in range 1 to 1000/);
});
