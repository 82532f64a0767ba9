// GET /api/v1/admin/memory: the server's resident set and its store's cache memory against the
// bound (what the soak test reads to tell caches filling from a leak), the search answer cache
// (serve --search-cache-mib) with its hits, and its heap allocator. Administrators only.
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
  assert.deepEqual(Object.keys(r.json).sort(), ['allocator', 'rss_bytes', 'search_cache_bound_bytes', 'search_cache_bytes', 'search_cache_hits',
    'store_cache_bound_bytes', 'store_cache_bytes']);
  assert.ok(r.json.rss_bytes > 1_000_000, r.text);
  if (BACKEND === 'sqlite') {
    assert.equal(r.json.store_cache_bound_bytes, (64 + 4 * 16) * 1048576, 'the writer\'s 64 MiB and 4 readers\' 16 MiB');
    assert.ok(r.json.store_cache_bytes > 0 && r.json.store_cache_bytes < r.json.rss_bytes, r.text);
  } else {
    assert.deepEqual([r.json.store_cache_bytes, r.json.store_cache_bound_bytes], [0, 0], 'PostgreSQL caches live in the database server');
  }
});

// Four equal searches by an administrator (who may read every record) after a write. On SQLite
// an answer is kept under the change stamp of its read transaction, and a reader connection's
// first transaction after another connection's commit has no stamp (Tx::change_stamp), so the
// first search or two are computed and the later ones are the kept answer. PostgreSQL keeps no
// search answers.
async function searchRepeatedly(client, name) {
  assert.equal((await client.post('/api/v1/accounts', { name })).status, 201);
  for (let i = 0; i < 4; i++) {
    const r = await client.get(`/api/v1/search?q=${encodeURIComponent(name)}&limit=5`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.items[0]?.title, name, r.text);
  }
  const m = await client.get('/api/v1/admin/memory');
  assert.equal(m.status, 200, m.text);
  return m.json;
}

test('the search answer cache holds the answers it served again, within its 32 MiB default', async () => {
  const m = await searchRepeatedly(admin, 'Kestrel Mill Ltd');
  assert.equal(m.search_cache_bound_bytes, 32 * 1048576);
  if (BACKEND === 'sqlite') {
    assert.ok(m.search_cache_hits >= 1 && m.search_cache_hits <= 3, JSON.stringify(m));
    assert.ok(m.search_cache_bytes > 0 && m.search_cache_bytes < 65536, JSON.stringify(m));
  } else {
    assert.deepEqual([m.search_cache_hits, m.search_cache_bytes], [0, 0], JSON.stringify(m));
  }
});

test('serve --search-cache-mib 0 keeps no search answers', async () => {
  const off = await startServer({ args: ['--search-cache-mib', '0'] });
  try {
    const root = await off.userClient('root', { role: 'Administrator' });
    const m = await searchRepeatedly(root, 'Kestrel Mill Ltd');
    assert.deepEqual([m.search_cache_bound_bytes, m.search_cache_hits, m.search_cache_bytes], [0, 0, 0],
      JSON.stringify(m));
  } finally {
    await off.stop();
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
