// Several-word search of records another process wrote into the server's SQLite database while
// the server ran (`rapport demo` beside `rapport serve`, R-SEARCH, issue #4): the server's term
// codes in memory (storage/sqlite/term_codes.h) never noted them, and must not rule them out.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cli, sqliteOnly } from './harness.mjs';

let srv;
after(async () => { await srv?.stop(); });

test('a surname and a given name\'s character find a contact another process wrote beside the server',
  { skip: sqliteOnly('the term codes are the SQLite store\'s') }, async () => {
    srv = await startServer();
    const root = await srv.userClient('root', { role: 'Administrator' });
    // The server's own term write first: its codes are built and in use.
    const own = await root.create('contacts', { full_name: '何丽娟' });
    const mine = await root.get(`/api/v1/search?q=${encodeURIComponent('何 娟')}&entity=contact`);
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual(mine.json.items.map((i) => i.id), [own.id]);

    await cli('demo', '--data', srv.dataDir, '--accounts', '30');

    const list = await root.get('/api/v1/contacts?limit=200');
    assert.equal(list.status, 200, list.text);
    const names = list.json.items.filter((c) => /^[\u4e00-\u9fff]{3}$/.test(c.full_name ?? ''));
    assert.ok(names.length >= 5, `demo contacts with three-character Chinese names: ${names.length}`);
    for (const c of names.slice(0, 5)) {
      // "何 娟": the surname and the given name's last character, a term of its own.
      const q = `${c.full_name[0]} ${c.full_name[2]}`;
      const r = await root.get(`/api/v1/search?q=${encodeURIComponent(q)}&entity=contact&limit=100`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.items.some((i) => i.id === c.id),
        `${q} finds ${c.full_name} (${c.id}): ${JSON.stringify(r.json.items)}`);
    }
  });
