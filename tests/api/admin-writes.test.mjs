// GET /api/v1/admin/writes: the store's durable write path since the server started (SQLite: its
// group commits, the writes they made durable, the writer's busy time, its WAL syncs and their
// time; what bench/run.sh reads around a scenario for creates per COMMIT and a batch's cost).
// Administrators only; PostgreSQL keeps no such figures (all zero).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, BACKEND } from './harness.mjs';

let srv, admin, sales;
before(async () => {
  srv = await startServer();
  admin = await srv.userClient('root', { role: 'Administrator' });
  sales = await srv.userClient('sam', { role: 'Sales' });
});
after(async () => { await srv?.stop(); });

const keys = ['backend', 'batches', 'busy_cpu_ns', 'busy_ns', 'commit_ns', 'committed', 'sync_wait_ns', 'wal_sync_ns', 'wal_syncs'];

test('an administrator reads the group commits, the writer\'s busy time and its WAL syncs', async () => {
  const first = await admin.get('/api/v1/admin/writes');
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(Object.keys(first.json).sort(), keys);
  const created = await Promise.all([1, 2, 3, 4, 5, 6].map((i) =>
    admin.post('/api/v1/accounts', { name: `Writes Figures ${i}` })));
  for (const r of created) assert.equal(r.status, 201, r.text);
  const r = await admin.get('/api/v1/admin/writes');
  assert.equal(r.status, 200, r.text);
  const d = (k) => r.json[k] - first.json[k];
  if (BACKEND === 'sqlite') {
    assert.equal(r.json.backend, 'sqlite');
    assert.ok(d('committed') >= 6, `six creates made durable: ${r.text}`);
    assert.ok(d('batches') >= 1 && d('batches') <= d('committed'), r.text);
    assert.ok(d('wal_syncs') >= 1, `each COMMIT's WAL sync is counted: ${r.text}`);
    assert.ok(d('wal_sync_ns') > 0 && d('busy_ns') > 0 && d('busy_cpu_ns') > 0 && d('commit_ns') > 0, r.text);
    assert.ok(r.json.commit_ns <= r.json.busy_ns, 'the COMMITs are part of the writer\'s busy time');
    assert.ok(d('sync_wait_ns') >= 0, r.text);
  } else {
    assert.equal(r.json.backend, 'postgresql');
    for (const k of keys.slice(1)) assert.equal(r.json[k], 0, `${k}: PostgreSQL keeps none`);
  }
});

test('FailingAuth: only administrators read the write figures', async () => {
  assertProblem(await sales.get('/api/v1/admin/writes'), 403, 'forbidden');
  assertProblem(await srv.request('GET', '/api/v1/admin/writes'), 401, 'unauthenticated');
});
