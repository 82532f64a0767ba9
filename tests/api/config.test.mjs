// The configuration file (issue 6): `--config FILE` (or $RAPPORT_CONFIG, or
// /etc/rapport/rapport.toml) sets any option in TOML; the command line overrides it; an unknown
// key or a bad value is refused naming the key; `rapport config example` prints every key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, PG_URL, tempDir, databaseFor, Server, login } from './harness.mjs';

const execFileP = promisify(execFile);

/** Runs the binary; resolves to {code, stdout, stderr} whatever the exit code. */
async function run(args, env = {}) {
  try {
    const { stdout, stderr } = await execFileP(BIN, args, { timeout: 30_000, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function configFile(text) {
  const f = join(tempDir(), 'rapport.toml');
  writeFileSync(f, text);
  return f;
}

/** The `data` (and on PostgreSQL `database`) lines of a config file for a fresh data dir. */
async function dataLines() {
  const dir = tempDir();
  const db = await databaseFor(dir);
  return { dir, text: `data = "${dir}"\n${db ? `database = "${db}"\n` : ''}` };
}

test('config example: every key it shows, uncommented, is accepted', async () => {
  const ex = await run(['config', 'example']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /^# database-replica = \[/m);
  assert.match(ex.stdout, /^\[serve\]$/m);
  const uncommented = ex.stdout.replace(/^# ([a-z-]+ = )/gm, '$1');
  assert.match(uncommented, /^database-replica = \[/m);
  const f = configFile(uncommented);
  // `config example` opens no database, so the example's made-up hosts do not matter.
  const r = await run(['--config', f, 'config', 'example']);
  assert.equal(r.code, 0, r.stderr);
});

test('a command\'s --help names the options every command takes', async () => {
  const r = await run(['serve', '--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Every command also takes --config FILE, --data DIR, --database URL/);
  // …and they are accepted after the command, as before.
  const dir = tempDir();
  const m = await run(['migrate', '--data', dir, '--log-level', 'warn', ...(PG_URL ? ['--database', await databaseFor(dir)] : [])]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stdout, /schema version \d+/);
});

test('an unknown key is refused with the key named, nothing is opened', async () => {
  const { dir, text } = await dataLines();
  const f = configFile(`${text}[serve]\nprot = 8080\n`);
  const r = await run(['migrate', '--config', f]);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim(), `error: config file ${f}: unknown key serve.prot (see \`rapport config example\`)`);
  assert.equal(existsSync(join(dir, 'rapport.db')), false);
  const top = await run(['migrate', '--config', configFile(`${text}databse = "x"\n`)]);
  assert.match(top.stderr, /unknown key databse /);
  // A serve option outside its section is unknown at the top.
  const misplaced = await run(['migrate', '--config', configFile(`${text}pool-size = 4\n`)]);
  assert.match(misplaced.stderr, /unknown key pool-size /);
});

test('a bad value in the file is refused with the option named', async () => {
  const { text } = await dataLines();
  const cases = [
    ['[serve]\npool-size = 0\n', /--pool-size: Value 0 not in range 1 to 1000/],
    ['[serve]\nport = "http"\n', /--port = http/],
    ['[serve]\nscan-every = "often"\n', /--scan-every: expects a duration .* not often/],
    ['log-level = "loud"\n', /--log-level: loud not in/],
  ];
  for (const [extra, re] of cases) {
    const r = await run(['serve', '--config', configFile(text + extra)]);
    assert.notEqual(r.code, 0, extra);
    assert.match(r.stderr, re, extra);
  }
});

test('a missing --config file or $RAPPORT_CONFIG file is refused', async () => {
  const r = await run(['migrate', '--config', '/nonexistent/rapport.toml']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /\/nonexistent\/rapport\.toml was not readable/);
  const e = await run(['migrate'], { RAPPORT_CONFIG: '/nonexistent/env.toml' });
  assert.notEqual(e.code, 0);
  assert.match(e.stderr, /RAPPORT_CONFIG names \/nonexistent\/env\.toml, which is not a readable file/);
});

test('serve takes its options from the file, and the command line overrides them', async () => {
  // A port that is taken: the file's port fails to bind, --port 0 on the command line wins.
  const blocker = createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = blocker.address().port;
  try {
    const { dir, text } = await dataLines();
    const f = configFile(`${text}log-level = "warn"\n[serve]\nport = ${taken}\nscan-every = "0"\n`);
    // user add reads data (and database) from $RAPPORT_CONFIG.
    const add = await run(['user', 'add', 'cfg', '--password', 'config-password-1', '--role', 'Administrator'], { RAPPORT_CONFIG: f });
    assert.equal(add.code, 0, add.stderr);
    const bound = await run(['serve', '--config', f]);
    assert.notEqual(bound.code, 0);
    assert.match(bound.stderr, new RegExp(`${taken}|in use`, 'i'));
    // Server passes --data DIR (the same dir) and --port 0 on the command line.
    const srv = await new Server(dir, ['--config', f]).start();
    try {
      assert.notEqual(new URL(srv.url).port, String(taken));
      const session = await login(srv.url, 'cfg', 'config-password-1');
      assert.ok(session.cookie);
    } finally {
      await srv.stop();
    }
  } finally {
    blocker.close();
  }
});

test('on SQLite, database-replica from the file is refused like the option', { skip: PG_URL ? 'SQLite only' : false }, async () => {
  const { text } = await dataLines();
  const f = configFile(`${text}[serve]\ndatabase-replica = ["postgresql://x@127.0.0.1:1/x"]\n`);
  const r = await run(['serve', '--config', f, '--port', '0']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /error: read replicas need a PostgreSQL database \(database-replica\)/);
});
