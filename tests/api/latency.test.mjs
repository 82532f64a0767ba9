// GET/DELETE /api/v1/admin/latency: the server's own latency per route (handler time and server
// time from the request's first byte, worker-pool wait included), for administrators only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, request, BACKEND } from './harness.mjs';

let srv, admin, sales;
before(async () => {
  srv = await startServer();
  [admin, sales] = await Promise.all([
    srv.userClient('admin', { role: 'Administrator' }),
    srv.userClient('sales', { role: 'Sales' }),
  ]);
});
after(async () => { await srv?.stop(); });

const route = (json, method, pattern) => json.routes.find((r) => r.method === method && r.route === pattern);

test('reset, then every answered route with its count and ordered percentiles', async () => {
  assert.equal((await admin.del('/api/v1/admin/latency')).status, 204);
  const acc = await admin.create('accounts', { name: 'Latency Ltd', phones: ['+8613812345678'] });
  for (let i = 0; i < 3; i++) assert.equal((await admin.get(`/api/v1/accounts/${acc.id}`)).status, 200);
  assert.equal((await admin.get('/api/v1/lookup/phone?number=13812345678')).status, 200);
  assert.equal((await admin.get('/api/v1/accounts/999999/360')).status, 404);

  const r = await admin.get('/api/v1/admin/latency');
  assert.equal(r.status, 200, r.text);
  const read = route(r.json, 'GET', '/api/v1/{entity}/{id}');
  assert.ok(read, r.text);
  assert.equal(read.count, 3);
  for (const kind of ['handler', 'server']) {
    const h = read[kind];
    assert.ok(h.p50_ms > 0 && h.p50_ms <= h.p90_ms && h.p90_ms <= h.p99_ms && h.p99_ms <= h.max_ms, `${kind}: ${JSON.stringify(h)}`);
    assert.ok(h.mean_ms > 0 && h.mean_ms <= h.max_ms, `${kind}: ${JSON.stringify(h)}`);
  }
  assert.ok(read.server.max_ms >= read.handler.max_ms, 'the server time includes the handler time');
  // A record by id is tried in place on the I/O thread too: on SQLite its pages were in memory
  // (just written), so no read went to a worker; on PostgreSQL each one did.
  assert.equal(read.deferred, BACKEND === 'postgresql' ? 3 : 0);
  assert.equal(route(r.json, 'POST', '/api/v1/{entity}').count, 1);
  assert.equal(route(r.json, 'GET', '/api/v1/lookup/phone').count, 1);
  // The lookup is tried in place on the I/O thread; alone, it had no reason to defer to a worker
  // on SQLite. On PostgreSQL every statement is a round trip, so it always goes to a worker.
  assert.equal(route(r.json, 'GET', '/api/v1/lookup/phone').deferred, BACKEND === 'postgresql' ? 1 : 0);
  for (const x of r.json.routes) assert.equal(typeof x.deferred, 'number', JSON.stringify(x));
  assert.equal(route(r.json, 'GET', '/api/v1/accounts/{id}/360').count, 1, 'a 404 answer is counted too');
  assert.equal(route(r.json, 'GET', '/api/v1/{entity}'), undefined, 'routes without requests are left out');
  assert.equal(route(r.json, 'DELETE', '/api/v1/admin/latency').count, 1);

  assert.equal((await admin.del('/api/v1/admin/latency')).status, 204);
  const again = await admin.get('/api/v1/admin/latency');
  assert.deepEqual(again.json.routes.map((x) => `${x.method} ${x.route}`), ['DELETE /api/v1/admin/latency']);
});

test('a non-administrator may neither read nor reset the figures', async () => {
  assertProblem(await sales.get('/api/v1/admin/latency'), 403, 'forbidden');
  assertProblem(await sales.del('/api/v1/admin/latency'), 403, 'forbidden');
  const r = await admin.get('/api/v1/admin/latency');
  assert.ok(route(r.json, 'GET', '/api/v1/admin/latency').count >= 1, 'the refused reset changed nothing');
});

test('without credentials: 401', async () => {
  assertProblem(await request(srv.url, 'GET', '/api/v1/admin/latency'), 401, 'unauthenticated');
  assertProblem(await request(srv.url, 'DELETE', '/api/v1/admin/latency'), 401, 'unauthenticated');
});
