// GET /api/v1/admin/memory: the server's resident set and its store's cache memory against the
// bound (what the soak test reads to tell caches filling from a leak), and its heap allocator.
// Administrators only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { startServer, assertProblem, BACKEND, BIN } from './harness.mjs';

let srv, admin, sales;
before(async () => {
  srv = await startServer();
  admin = await srv.userClient('root', { role: 'Administrator' });
  sales = await srv.userClient('sam', { role: 'Sales' });
});
after(async () => { await srv?.stop(); });

test('an administrator reads the RSS and the store cache figures', async () => {
  await admin.get('/api/v1/accounts');
  const r = await admin.get('/api/v1/admin/memory');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json).sort(), ['allocator', 'rss_bytes', 'store_cache_bound_bytes', 'store_cache_bytes']);
  assert.ok(r.json.rss_bytes > 1_000_000, r.text);
  if (BACKEND === 'sqlite') {
    assert.equal(r.json.store_cache_bound_bytes, (64 + 4 * 16) * 1048576, 'the writer\'s 64 MiB and 4 readers\' 16 MiB');
    assert.ok(r.json.store_cache_bytes > 0 && r.json.store_cache_bytes < r.json.rss_bytes, r.text);
  } else {
    assert.deepEqual([r.json.store_cache_bytes, r.json.store_cache_bound_bytes], [0, 0], 'PostgreSQL caches live in the database server');
  }
});

test('the server runs on tcmalloc (linked for the durable create path), except a sanitizer build', async () => {
  const r = await admin.get('/api/v1/admin/memory');
  assert.equal(r.status, 200, r.text);
  const sanitized = realpathSync(BIN).includes('/asan/');
  assert.equal(r.json.allocator, sanitized ? 'glibc' : 'tcmalloc', `${realpathSync(BIN)}: ${r.text}`);
});

test('FailingAccess: the memory figures are for administrators only', async () => {
  assertProblem(await sales.get('/api/v1/admin/memory'), 403, 'forbidden');
  assertProblem(await srv.request('GET', '/api/v1/admin/memory'), 401, 'unauthenticated');
});
