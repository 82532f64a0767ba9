// HTTP surface: health, unknown routes, wrong methods, security headers, gzip, request ids.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { startServer, assertProblem } from './harness.mjs';

let srv;
let admin;

before(async () => {
  srv = await startServer();
  admin = await srv.userClient('admin', { role: 'Administrator' });
  const batch = Array.from({ length: 60 }, (_, i) => ({ name: `Gzip account ${i} 广州市天河区示例贸易有限公司`, city: '广州', description: 'x'.repeat(100) }));
  for (let i = 0; i < batch.length; i += 20) await Promise.all(batch.slice(i, i + 20).map((b) => admin.create('accounts', b)));
});
after(async () => { await srv?.stop(); });

/** Raw GET with node:http, so the body is seen exactly as sent (no automatic decompression). */
function rawGet(path, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(srv.url + path, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

test('/healthz answers 200 {"status":"ok"} without authentication; HEAD too; POST → 405', async () => {
  const r = await srv.request('GET', '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ok' });
  assert.equal((await srv.request('HEAD', '/healthz')).status, 200);
  const p = await srv.request('POST', '/healthz', { body: {} });
  assertProblem(p, 405, 'method_not_allowed');
  assert.match(p.headers.get('allow'), /GET/);
});

test('FailingRoute: unknown routes → 404 not_found problem', async () => {
  for (const path of ['/api/v1/nope', '/api/v2/accounts', '/api/v1/accounts/1/2/3', '/api/v1/accounts/1/history/x']) {
    assertProblem(await admin.get(path), 404, 'not_found');
  }
});

test('FailingRoute: wrong method → 405 method_not_allowed with Allow, status in the body matching', async () => {
  let r = await admin.put('/api/v1/accounts', { name: 'x' });
  assertProblem(r, 405, 'method_not_allowed');
  assert.match(r.headers.get('allow'), /GET/);
  assert.match(r.headers.get('allow'), /POST/);
  r = await admin.del('/api/v1/accounts');
  assertProblem(r, 405, 'method_not_allowed');
  r = await admin.put('/api/v1/accounts/123', { name: 'x' });
  assertProblem(r, 405, 'method_not_allowed');
  assert.match(r.headers.get('allow'), /PATCH/);
  // POST /api/v1/metadata matches the generic POST /api/v1/{plural} route: no such collection.
  assertProblem(await admin.post('/api/v1/metadata', {}), 404, 'not_found');
});

test('security headers on JSON, problem and health responses; every response has a request id', async () => {
  const responses = [
    await admin.get('/api/v1/accounts?limit=1'),
    await admin.get('/api/v1/accounts/1'),
    await srv.request('GET', '/api/v1/accounts'),
    await srv.request('GET', '/healthz'),
    await admin.get('/api/v1/accounts/export.csv'),
  ];
  for (const r of responses) {
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', `${r.status}`);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.match(r.headers.get('content-security-policy') || '', /default-src 'self'/);
    assert.match(r.headers.get('content-security-policy') || '', /frame-ancestors 'none'/);
    assert.ok(r.headers.get('referrer-policy'));
    assert.match(r.headers.get('x-request-id') || '', /^[0-9a-zA-Z-]{8,}$/);
  }
  const ids = new Set(responses.map((r) => r.headers.get('x-request-id')));
  assert.equal(ids.size, responses.length, 'request ids differ');
  // A caller's own request id is echoed (for tracing through a proxy).
  const mine = await admin.get('/api/v1/auth/me', { headers: { 'x-request-id': 'trace-abc-12345' } });
  assert.equal(mine.headers.get('x-request-id'), 'trace-abc-12345');
});

test('gzip: a large list is compressed when the client accepts gzip, and not otherwise', async () => {
  const auth = { authorization: `Bearer ${admin.token}` };
  const gz = await rawGet('/api/v1/accounts?limit=60', { ...auth, 'accept-encoding': 'gzip' });
  assert.equal(gz.status, 200);
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.match(gz.headers.vary || '', /Accept-Encoding/i);
  const json = JSON.parse(gunzipSync(gz.body).toString('utf8'));
  assert.equal(json.items.length, 60);
  assert.ok(gz.body.length < gunzipSync(gz.body).length / 3, 'actually smaller');

  const plain = await rawGet('/api/v1/accounts?limit=60', auth);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.deepEqual(JSON.parse(plain.body.toString('utf8')), json);
  const refused = await rawGet('/api/v1/accounts?limit=60', { ...auth, 'accept-encoding': 'gzip;q=0, identity' });
  assert.equal(refused.headers['content-encoding'], undefined);
  // Tiny bodies are not worth compressing.
  const small = await rawGet('/healthz', { 'accept-encoding': 'gzip' });
  assert.equal(small.headers['content-encoding'], undefined);
  // fetch decompresses transparently: the normal client path still reads JSON.
  const viaFetch = await admin.get('/api/v1/accounts?limit=60', { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(viaFetch.json.items.length, 60);
});

test('FailingRequest: oversized headers and malformed targets get 4xx, never 5xx, and the server stays up', async () => {
  const big = await rawGet('/api/v1/accounts', { authorization: `Bearer ${admin.token}`, 'x-padding': 'p'.repeat(20 * 1024) });
  assert.equal(big.status, 431);
  const bad = await rawGet('/api/v1/accounts/%zz', { authorization: `Bearer ${admin.token}` });
  assert.ok(bad.status >= 400 && bad.status < 500, `${bad.status}`);
  const nul = await rawGet('/api/v1/accounts?q=%00', { authorization: `Bearer ${admin.token}` });
  assert.ok(nul.status >= 400 && nul.status < 500, `${nul.status}`);
  assert.equal((await srv.request('GET', '/healthz')).status, 200);
});
