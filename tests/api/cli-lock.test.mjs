// CLI writes beside a running server (SQLite: one database file, one writer at a time): a CLI
// command that writes waits for the write lock, up to its busy timeout (30 s), rather than
// failing with "database is locked" (seen once as a flake of access.test.mjs: `rapport user
// add` while the server was writing).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startServer, tempDir, addUser, createToken, request, cli, sqliteOnly } from './harness.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

test('user add while the server is under a flood of creates succeeds, and so does every create', async () => {
  const dir = tempDir();
  await addUser(dir, 'flood', { role: 'Administrator' });
  const token = await createToken(dir, 'flood');
  const srv = await startServer({ dataDir: dir });
  servers.push(srv);
  let stop = false;
  let created = 0;
  const failures = [];
  // 16 writers back to back keep the server's writer (and so the database's write lock) busy;
  // they stop when the CLI commands are done (or after 60 s at most).
  const deadline = Date.now() + 60_000;
  const loops = Array.from({ length: 16 }, (_, w) => (async () => {
    for (let i = 0; !stop && Date.now() < deadline; i++) {
      const r = await request(srv.url, 'POST', '/api/v1/accounts', { token, body: { name: `lock flood ${w}-${i}` } });
      if (r.status === 201) created++;
      else failures.push(`${r.status} ${r.text}`);
    }
  })());
  try {
    while (created < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (let k = 0; k < 3; k++) {
      const user = await addUser(dir, `during-load-${k}`);
      assert.ok(user.id, `user add printed no id for during-load-${k}`);
    }
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  assert.deepEqual(failures, []);
  assert.ok(created >= 50, `only ${created} creates`);
  const users = await srv.client({ token }).get('/api/v1/users?limit=100');
  const names = users.json.items.map((u) => u.username);
  for (let k = 0; k < 3; k++) assert.ok(names.includes(`during-load-${k}`), `user during-load-${k} missing: ${names}`);
});

test('user add waits while another process holds the write lock longer than 5 s, then succeeds', { skip: sqliteOnly('SQLite file lock') }, async () => {
  const dir = tempDir();
  await addUser(dir, 'first');
  // Another connection takes the write lock (BEGIN IMMEDIATE) and holds it for 6 s: longer
  // than the 5 s the CLI used to wait.
  const holder = spawn('sqlite3', [join(dir, 'rapport.db')], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  holder.stdout.on('data', (c) => { out += c; });
  holder.stderr.on('data', (c) => { out += c; });
  const exited = new Promise((res) => holder.on('exit', res));
  holder.stdin.write('.timeout 30000\nBEGIN IMMEDIATE;\nSELECT \'locked\';\n.system sleep 6\nCOMMIT;\n');
  holder.stdin.end();
  const started = Date.now();
  while (!out.includes('locked')) {
    assert.ok(Date.now() - started < 30_000, `sqlite3 did not take the lock: ${out}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const waitedFrom = Date.now();
  const user = await addUser(dir, 'second');
  assert.ok(user.id, 'user add printed no id');
  assert.ok(Date.now() - waitedFrom >= 4_000, 'user add returned while the lock was held');
  assert.equal(await exited, 0, out);
  const list = await cli('user', 'list', '--data', dir);
  assert.match(list, /second/);
});
