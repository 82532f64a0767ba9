// Hostile input (issue 5): oversized bodies, header floods, slow clients, idle connection
// floods, malformed request lines, JSON bombs — each cut off by a limit with a 4xx, never a 5xx,
// and without affecting other clients. Plus the security headers on every kind of response.
// The server runs with --read-timeout 2 so the slow-client test is quick.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, tempDir, request, sleep } from '../api/harness.mjs';
import { raw, header, openSocket } from './raw.mjs';

const READ_TIMEOUT_S = 2;
let srv;
let admin;

before(async () => {
  const dir = tempDir();
  // The harness serves static files from DIR/no-static: give it a web app to serve.
  mkdirSync(join(dir, 'no-static'));
  writeFileSync(join(dir, 'no-static', 'index.html'), '<!doctype html><title>Rapport</title>');
  writeFileSync(join(dir, 'no-static', 'app.js'), 'console.log(1)');
  srv = await startServer({ dataDir: dir, args: ['--read-timeout', String(READ_TIMEOUT_S)] });
  admin = await srv.userClient('hostile-admin', { role: 'Administrator' });
});
after(async () => { await srv?.stop(); });

/** The server still answers a normal request quickly. */
async function stillServing() {
  const t0 = Date.now();
  const r = await admin.get('/api/v1/accounts?limit=1');
  assert.equal(r.status, 200, `normal request after the attack → ${r.status}`);
  const h = await request(srv.url, 'GET', '/healthz');
  assert.equal(h.status, 200);
  return Date.now() - t0;
}

const host = () => new URL(srv.url).host;
const auth = () => `Authorization: Bearer ${admin.token}\r\n`;

test('oversized body: Content-Length 11 MiB → 413 at once, others keep being served', async () => {
  const head = `POST /api/v1/accounts HTTP/1.1\r\nHost: ${host()}\r\n${auth()}Content-Type: application/json\r\nContent-Length: ${11 * 1024 * 1024}\r\n\r\n`;
  const r = await raw(srv.url, head + '{"name":"', { timeoutMs: 5000 });
  assert.equal(r.status, 413, r.text.slice(0, 300));
  assert.match(header(r.head, 'content-type'), /problem\+json/);
  assert.ok(r.ms < 2000, `413 took ${r.ms} ms`);
  // And a body that really is larger than declared-limit, sent by fetch (chunked, no length).
  const big = Buffer.alloc(11 * 1024 * 1024, 'a');
  let status;
  try {
    status = (await admin.post('/api/v1/accounts', big)).status;
  } catch { status = 'reset'; } // the server may close while the client is still sending
  assert.ok(status === 413 || status === 'reset', `chunked 11 MiB → ${status}`);
  await stillServing();
});

test('header flood: a 20 KiB header → 431, 500 headers → 431, others unaffected', async () => {
  const one = await raw(srv.url, `GET /healthz HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
  assert.equal(one.status, 431, one.text.slice(0, 300));
  let many = `GET /healthz HTTP/1.1\r\nHost: ${host()}\r\n`;
  for (let i = 0; i < 500; i++) many += `X-Flood-${String(i).padStart(3, '0')}: ${'v'.repeat(30)}\r\n`;
  const r = await raw(srv.url, many + '\r\n');
  assert.ok([400, 431].includes(r.status), `500 headers → ${r.status}`);
  await stillServing();
});

test('slow client (one header byte per 100 ms) is cut off at the read timeout; others answer within 100 ms', async () => {
  const slowCount = 10;
  const payload = `GET /api/v1/accounts HTTP/1.1\r\nHost: ${host()}\r\nX-Slow: ${'s'.repeat(60)}\r\n\r\n`; // ≈ 10 s at 10 B/s
  const slow = await Promise.all(Array.from({ length: slowCount }, () => openSocket(srv.url)));
  const t0 = Date.now();
  const closedAt = slow.map((s) => new Promise((res) => {
    s.on('close', () => res(Date.now() - t0));
    s.on('error', () => {});
  }));
  let stop = false;
  const trickle = slow.map(async (s) => {
    for (let i = 0; i < payload.length && !stop && !s.destroyed; i++) {
      s.write(payload[i]);
      await sleep(100);
    }
  });
  // Meanwhile a second client keeps making requests.
  const latencies = [];
  const fast = (async () => {
    while (Date.now() - t0 < (READ_TIMEOUT_S + 1) * 1000) {
      const t = Date.now();
      const r = await admin.get('/api/v1/accounts?limit=5');
      assert.equal(r.status, 200);
      latencies.push(Date.now() - t);
      await sleep(20);
    }
  })();
  const bound = (READ_TIMEOUT_S + 3) * 1000;
  const closed = await Promise.race([Promise.all(closedAt), sleep(bound).then(() => null)]);
  stop = true;
  await fast;
  await Promise.all(trickle);
  for (const s of slow) s.destroy();
  assert.ok(closed, `slow connections still open after ${bound} ms`);
  for (const ms of closed) assert.ok(ms >= (READ_TIMEOUT_S - 1) * 1000 && ms < bound, `slow client closed after ${ms} ms`);
  latencies.sort((a, b) => a - b);
  assert.ok(latencies.length > 10, `only ${latencies.length} requests`);
  const p95 = latencies[Math.floor(latencies.length * 0.95)];
  assert.ok(p95 < 100, `other client's p95 ${p95} ms (max ${latencies.at(-1)} ms)`);
});

test('200 idle open connections do not block a normal request', async () => {
  const idle = [];
  try {
    for (let i = 0; i < 200; i++) {
      const s = await openSocket(srv.url);
      s.on('error', () => {});
      idle.push(s);
    }
    // Some of them half-way through a request line.
    for (const s of idle.slice(0, 50)) s.write('GET /api/v1/acc');
    const ms = await stillServing();
    assert.ok(ms < 1000, `normal request took ${ms} ms with 200 idle connections`);
  } finally {
    for (const s of idle) s.destroy();
  }
});

test('security headers on every kind of response: 200, 404, 413, problem+json, static files, healthz', async () => {
  const check = (what, get) => {
    const csp = get('content-security-policy');
    assert.ok(csp, `${what}: no Content-Security-Policy`);
    assert.match(csp, /frame-ancestors 'none'/, `${what}: ${csp}`);
    assert.equal(get('x-content-type-options'), 'nosniff', what);
  };
  const viaFetch = async (what, method, path, opts) => {
    const r = await admin.req(method, path, opts);
    check(`${what} (${r.status})`, (h) => r.headers.get(h));
    return r;
  };
  assert.equal((await viaFetch('api 200', 'GET', '/api/v1/accounts')).status, 200);
  assert.equal((await viaFetch('created 201', 'POST', '/api/v1/accounts', { body: { name: 'csp check' } })).status, 201);
  assert.equal((await viaFetch('api 404', 'GET', '/api/v1/accounts/123')).status, 404);
  assert.equal((await viaFetch('unknown route', 'GET', '/api/v1/nope')).status, 404);
  const bad = await viaFetch('problem 400', 'GET', '/api/v1/accounts?filter=%7B');
  assert.equal(bad.status, 400);
  assert.match(bad.headers.get('content-type'), /problem\+json/);
  const unauth = await request(srv.url, 'GET', '/api/v1/accounts');
  assert.equal(unauth.status, 401);
  check('401', (h) => unauth.headers.get(h));
  const idx = await viaFetch('static index', 'GET', '/');
  assert.equal(idx.status, 200);
  assert.match(idx.text, /Rapport/);
  assert.equal((await viaFetch('static js', 'GET', '/app.js')).status, 200);
  assert.equal((await viaFetch('healthz', 'GET', '/healthz')).status, 200);
  const big = await raw(srv.url, `POST /api/v1/accounts HTTP/1.1\r\nHost: ${host()}\r\nContent-Length: ${11 << 20}\r\n\r\n`);
  assert.equal(big.status, 413);
  check('raw 413', (h) => header(big.head, h));
  const garbage = await raw(srv.url, 'GARBAGE\r\n\r\n');
  assert.equal(garbage.status, 400);
  check('raw 400', (h) => header(garbage.head, h));
  const flood = await raw(srv.url, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 << 10)}\r\n\r\n`);
  check('raw 431', (h) => header(flood.head, h));
});

test('malformed request lines and percent-encoding → 400/404, never 5xx', async () => {
  const A = auth();
  const get = (target, extra = '') => `GET ${target} HTTP/1.1\r\nHost: x\r\n${A}${extra}Connection: close\r\n\r\n`;
  const cases = [
    ['GARBAGE\r\n\r\n', [400]],
    ['GET  HTTP/1.1\r\n\r\n', [400]],
    ['GET / HTTP/9.9\r\nHost: x\r\n\r\n', [400]],
    ['GET / HTTP/1.1\r\nNoColonHeader\r\n\r\n', [400]],
    ['GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
    ['GET * HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
    ['GET /\x01\x02 HTTP/1.1\r\nHost: x\r\n\r\n', [400]],
    ['POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', [400]],
    ['POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n', [400]],
    ['POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n', [400]],
    [get('/api/v1/accounts/%zz'), [400]],
    [get('/api/v1/accounts/%00'), [400]],
    [get('/api/v1/acc%ounts'), [400]],
    [get('/%00'), [400]],
    [get('/index.html%00.js'), [400]],
    [get('/../../etc/passwd'), [400, 404]],
    [get('/%2e%2e/%2e%2e/etc/passwd'), [400, 404]],
    [get('/..%2f..%2fetc%2fpasswd'), [400, 404]],
    [get('/api/v1/accounts?q=%E0%A4%A'), [400]],
    [get('/api/v1/accounts?q=%ff%fe'), [200, 400]],
    [get('/api/v1/accounts?filter=%7B%7D%zz'), [400]],
    [get('/api/v1/accounts?filter=%ff'), [400]],
    [get('/api/v1/accounts?sort=%ff'), [400]],
    [get('/api/v1/accounts?cursor=%ff%ff'), [400]],
    [get('/api/v1/accounts?%zz=1'), [400]],
    [get('/api/v1/accounts?limit=99999999999999999999'), [400]],
    [get('/api/v1/accounts?limit=-1'), [400]],
    [get('/api/v1/search?q=%ff%00'), [200, 400]],
    [get('/api/v1/accounts/%ff'), [400, 404]],
    [get('/api/v1/accounts/99999999999999999999999999'), [400, 404]],
    [get('/api/v1/accounts/-1'), [400, 404]],
    [get('/api/v1/accounts/1e5'), [400, 404]],
  ];
  const wrong = [];
  for (const [req, allowed] of cases) {
    const r = await raw(srv.url, req, { timeoutMs: 3000 });
    if (!allowed.includes(r.status)) wrong.push(`${JSON.stringify(req.slice(0, 70))} → ${r.status}`);
  }
  assert.deepEqual(wrong, []);
  await stillServing();
});

test('JSON bombs: deep nesting and huge arrays → 400/413/422 fast', async () => {
  const timed = async (what, body, allowed) => {
    const t0 = Date.now();
    let status;
    try {
      status = (await admin.post('/api/v1/accounts', body)).status;
    } catch { status = 'reset'; }
    const ms = Date.now() - t0;
    assert.ok(allowed.includes(status), `${what} → ${status}`);
    assert.ok(ms < 3000, `${what} took ${ms} ms`);
  };
  const depth = 100_000;
  await timed('array nesting', '['.repeat(depth) + ']'.repeat(depth), [400]);
  await timed('object nesting', '{"a":'.repeat(depth) + '1' + '}'.repeat(depth), [400]);
  await timed('nesting in a field', `{"name":"x","tags":${'['.repeat(depth)}${']'.repeat(depth)}}`, [400]);
  await timed('unclosed nesting', '['.repeat(5_000_000), [400]);
  // Just under the 10 MiB limit: a huge array and a huge string (valid JSON: 422 from validation).
  const n = Math.floor((10 * 1024 * 1024 - 100) / 2);
  await timed('huge array', `{"name":"x","tags":[${'1,'.repeat(n - 1)}1]}`, [400, 413, 422]);
  await timed('huge string', `{"name":"${'a'.repeat(10 * 1024 * 1024 - 100)}"}`, [400, 413, 422]);
  await timed('over the limit', `{"name":"x","tags":[${'1,'.repeat(6 << 20)}1]}`, [413, 'reset']);
  // Deep nesting in the filter query parameter.
  const f = encodeURIComponent('{"not":'.repeat(2000) + '{"field":"name","op":"=","value":"x"}' + '}'.repeat(2000));
  const r = await admin.get(`/api/v1/accounts?filter=${f}`);
  assert.ok([400, 414, 431].includes(r.status), `deep filter → ${r.status}`);
  const g = encodeURIComponent('{"and":['.repeat(1500) + ']}'.repeat(1500));
  assert.ok([400, 414, 431].includes((await admin.get(`/api/v1/accounts?filter=${g}`)).status));
  await stillServing();
});
