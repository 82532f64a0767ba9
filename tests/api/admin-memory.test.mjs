// GET /api/v1/admin/memory: the server's resident set and its store's cache memory against the
// bound (what the soak test reads to tell caches filling from a leak), the search answer cache
// (serve --search-cache-mib) and the list page cache (--page-cache-mib) with their hits, the
// record text cache (--list-cache-mib) with the list pages it served, and its heap allocator.
// Administrators only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { startServer, assertProblem, cli, tempDir, BACKEND, BIN } from './harness.mjs';

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
  assert.deepEqual(Object.keys(r.json).sort(), ['allocator', 'list_pages_copied', 'list_pages_read_whole',
    'page_cache_bound_bytes', 'page_cache_bytes', 'page_cache_hits', 'record_cache_bound_bytes', 'record_cache_bytes',
    'record_cache_hits', 'record_cache_list_bytes', 'record_cache_misses', 'rss_bytes',
    'search_cache_bound_bytes', 'search_cache_bytes', 'search_cache_hits', 'store_cache_bound_bytes',
    'store_cache_bytes', 'store_map_bound_bytes']);
  assert.ok(r.json.rss_bytes > 1_000_000, r.text);
  if (BACKEND === 'sqlite') {
    assert.equal(r.json.store_cache_bound_bytes, (64 + 10 * 16) * 1048576,
      'the writer\'s 64 MiB and 16 MiB for each of 10 readers: one per worker (8) and I/O thread (2)');
    assert.ok(r.json.store_cache_bytes > 0 && r.json.store_cache_bytes < r.json.rss_bytes, r.text);
    assert.equal(r.json.store_map_bound_bytes, 10 * 256 * 1048576, 'a new data set fits in the readers\' 256 MiB maps');
  } else {
    assert.deepEqual([r.json.store_cache_bytes, r.json.store_cache_bound_bytes, r.json.store_map_bound_bytes], [0, 0, 0],
      'PostgreSQL caches live in the database server');
  }
});

// serve --read-map-mib: the SQLite readers memory-map the database file only when all of it fits
// in that many MiB (a data set larger than the bound, such as 14 GB at 1M accounts, is read with
// pread: a mapped part of it held few of the pages read and added to the RSS once per reader).
test('serve --read-map-mib bounds the file the readers map: 0 maps none, a bound below the file size none', async () => {
  // 300 demo accounts: a database of about 4 MiB.
  const dir = tempDir();
  await cli('demo', '--data', dir, '--accounts', '300');
  let n = 0;
  const mapped = async (mib, threads = []) => {
    const s = await startServer({ dataDir: dir, args: ['--read-map-mib', String(mib), ...threads] });
    try {
      const root = await s.userClient(`root${++n}`, { role: 'Administrator' });
      assert.equal((await root.get('/api/v1/accounts')).status, 200);
      const m = await root.get('/api/v1/admin/memory');
      assert.equal(m.status, 200, m.text);
      return m.json.store_map_bound_bytes;
    } finally {
      await s.stop();
    }
  };
  assert.equal(await mapped(0), 0);
  assert.equal(await mapped(1), 0, 'the file is larger than 1 MiB: read with pread');
  // One reader per worker and I/O thread: 5 + 1.
  assert.equal(await mapped(64, ['--workers', '5', '--io-threads', '1']), BACKEND === 'sqlite' ? 6 * 64 * 1048576 : 0);
});

test('FailingOption: serve --read-map-mib takes 0 to 65536 MiB', async () => {
  await assert.rejects(cli('serve', '--data', tempDir(), '--port', '0', '--read-map-mib', '-1'),
    /--read-map-mib: Value -1 not in range 0 to 65536/);
});

// The answer caches (both kept under the change stamp of the read transaction that computed the
// answer; SQLite only): four equal requests by an administrator (who may read every record) after
// a write. A reader connection's first transaction after another connection's commit has no stamp
// (Tx::change_stamp), so the first request or two are computed and the later ones are the kept
// answer. PostgreSQL keeps none. `ask` makes one request and checks its answer.
const answerCaches = [
  {
    cache: 'search', option: '--search-cache-mib', maxBytes: 65536,
    ask: async (client) => {
      const r = await client.get('/api/v1/search?q=Kestrel%20Mill%20Ltd&limit=5');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.items[0]?.title, 'Kestrel Mill Ltd', r.text);
    },
  },
  {
    cache: 'page', option: '--page-cache-mib', maxBytes: 1048576,
    ask: async (client) => {
      const r = await client.get('/api/v1/accounts?sort=-created_at&limit=5');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.items[0]?.name, 'Kestrel Mill Ltd', r.text);
    },
  },
];

async function askRepeatedly(client, ask) {
  assert.equal((await client.post('/api/v1/accounts', { name: 'Kestrel Mill Ltd' })).status, 201);
  for (let i = 0; i < 4; i++) await ask(client);
  const m = await client.get('/api/v1/admin/memory');
  assert.equal(m.status, 200, m.text);
  return m.json;
}

for (const { cache, option, maxBytes, ask } of answerCaches) {
  test(`the ${cache} answer cache holds the answers it served again, within its 32 MiB default`, async () => {
    const m = await askRepeatedly(admin, ask);
    const [bytes, bound, hits] = [m[`${cache}_cache_bytes`], m[`${cache}_cache_bound_bytes`], m[`${cache}_cache_hits`]];
    assert.equal(bound, 32 * 1048576);
    if (BACKEND === 'sqlite') {
      assert.ok(hits >= 1 && hits <= 3, JSON.stringify(m));
      assert.ok(bytes > 0 && bytes < maxBytes, JSON.stringify(m));
    } else {
      assert.deepEqual([hits, bytes], [0, 0], JSON.stringify(m));
    }
  });

  test(`serve ${option} 0 keeps no ${cache} answers`, async () => {
    const off = await startServer({ args: [option, '0'] });
    try {
      const root = await off.userClient('root', { role: 'Administrator' });
      const m = await askRepeatedly(root, ask);
      assert.deepEqual([m[`${cache}_cache_bound_bytes`], m[`${cache}_cache_hits`], m[`${cache}_cache_bytes`]],
        [0, 0, 0], JSON.stringify(m));
    } finally {
      await off.stop();
    }
  });
}

// The record text cache (serve --list-cache-mib): list pages read their rows' ids and versions and
// copy the records' text from it (list_pages_copied), and a read by id of a listed record copies
// it too; the list pages' records are counted apart (record_cache_list_bytes: reads by id over a
// large table never push them out, see RowJsonCache). Without the page cache, so that every list
// is worked out.
test('list pages and reads by id copy records from the record text cache, list pages counted', async () => {
  const srv2 = await startServer({ args: ['--page-cache-mib', '0', '--list-cache-mib', '4'] });
  try {
    const root = await srv2.userClient('root', { role: 'Administrator' });
    for (const name of ['Larch Row Ltd', 'Aspen Way Ltd', 'Birch Lane Ltd'])
      assert.equal((await root.post('/api/v1/accounts', { name })).status, 201);
    const list = async () => {
      const r = await root.get('/api/v1/accounts?sort=name&limit=3');
      assert.equal(r.status, 200, r.text);
      return r.json.items;
    };
    const before = (await root.get('/api/v1/admin/memory')).json;
    const items = await list();
    assert.deepEqual(items.map((a) => a.name), ['Aspen Way Ltd', 'Birch Lane Ltd', 'Larch Row Ltd']);
    await list();
    const one = await root.get(`/api/v1/accounts/${items[0].id}`);
    assert.equal(one.status, 200, one.text);
    const m = (await root.get('/api/v1/admin/memory')).json;
    assert.equal(m.record_cache_bound_bytes, 4 * 1048576);
    assert.equal(m.list_pages_copied - before.list_pages_copied, 2, JSON.stringify(m));
    assert.equal(m.list_pages_read_whole, 0, JSON.stringify(m));
    assert.equal(m.record_cache_misses - before.record_cache_misses, 3, JSON.stringify(m));
    assert.equal(m.record_cache_hits - before.record_cache_hits, 4, JSON.stringify(m));
    assert.ok(m.record_cache_list_bytes > 0 && m.record_cache_list_bytes <= m.record_cache_bytes, JSON.stringify(m));
  } finally {
    await srv2.stop();
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
