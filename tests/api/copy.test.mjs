// `rapport copy --from sqlite:PATH --to postgresql://…` (issue 6): an installation seeded with
// demo data, a custom field and a session moves to PostgreSQL; the server on PostgreSQL answers
// the same records, search, history, token and password; a second copy into the now non-empty
// target is refused. PostgreSQL only (RAPPORT_TEST_PG_URL).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, tempDir, cli, databaseFor, listAll, PG_URL } from './harness.mjs';

const skip = PG_URL ? false : 'needs PostgreSQL: set RAPPORT_TEST_PG_URL (make test does)';
const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

const WECHAT = { name: 'wechat_id', type: 'text', label: { en: 'WeChat', 'zh-CN': '微信号' }, indexed: true, searchable: true, max_length: 40 };

test('copy a SQLite installation (demo --accounts 100, a custom field) to PostgreSQL: same counts and records', { skip }, async () => {
  const dir = tempDir();
  const sqlite = `sqlite:${join(dir, 'rapport.db')}`;
  const onSqlite = ['--data', dir, '--database', sqlite];
  await cli('demo', '--accounts', '100', ...onSqlite);
  await cli('user', 'add', 'mover', '--password', 'mover-password-1', '--role', 'Administrator', ...onSqlite);
  const token = (await cli('token', 'create', 'mover', ...onSqlite)).trim().split('\n').pop();

  const src = await startServer({ dataDir: dir, args: ['--database', sqlite] });
  servers.push(src);
  const a = src.client({ token });
  assert.equal((await a.post('/api/v1/metadata/account/fields', WECHAT)).status, 201);
  const special = await a.create('accounts', { name: '迁移测试有限公司', city: '天津', wechat_id: 'move_me', credit_limit: { amount: 12345, currency: 'CNY' } });
  assert.equal((await a.patch(`/api/v1/accounts/${special.id}`, { city: '大连' })).status, 200);
  const before = {
    accounts: await listAll(a, 'accounts', { limit: 500, sort: 'id' }),
    contacts: await listAll(a, 'contacts', { limit: 500, sort: 'id' }),
    special: (await a.get(`/api/v1/accounts/${special.id}`)).json,
    history: (await a.get(`/api/v1/accounts/${special.id}/history`)).json,
  };
  assert.equal(before.accounts.length, 101);
  await src.stop();

  const target = await databaseFor(tempDir());
  const out = await cli('copy', '--from', sqlite, '--to', target);
  assert.match(out, /^account\s+101\s+101$/m, out);
  assert.match(out, /^account_terms_of\s+101\s+101$/m, out);  // the search index: term lists
  assert.match(out, /^account_terms\s+([1-9]\d*)\s+\1$/m, out);   // …and terms
  assert.match(out, /^audit_log\s+(\d+)\s+\1$/m, out);
  assert.match(out, /copy verified/);
  assert.doesNotMatch(out, /MISMATCH/);

  const pg = await startServer({ dataDir: tempDir(), args: ['--database', target] });
  servers.push(pg);
  const b = pg.client({ token });  // the API token came along
  assert.deepEqual(await listAll(b, 'accounts', { limit: 500, sort: 'id' }), before.accounts);
  assert.deepEqual(await listAll(b, 'contacts', { limit: 500, sort: 'id' }), before.contacts);
  assert.deepEqual((await b.get(`/api/v1/accounts/${special.id}`)).json, before.special);
  assert.deepEqual((await b.get(`/api/v1/accounts/${special.id}/history`)).json, before.history);
  const s = await b.get(`/api/v1/search?q=${encodeURIComponent('迁移测试')}`);
  assert.ok(s.json.items.some((x) => x.id === special.id), 'full-text bodies came along');
  const byCustom = await b.list('accounts', { filter: { field: 'wechat_id', op: '=', value: 'move_me' } });
  assert.deepEqual(byCustom.items.map((x) => x.id), [special.id], 'the custom field column came along');
  await pg.login('mover', 'mover-password-1');  // password hashes too
  // The copy is a working installation: new writes get new ids.
  const next = await b.create('accounts', { name: 'After the move', wechat_id: 'new_one' });
  assert.ok(BigInt(next.id) > BigInt(special.id));

  // A second copy into the same (now non-empty) database is refused and changes nothing.
  await assert.rejects(cli('copy', '--from', sqlite, '--to', target), /not empty: table \w+ has \d+ rows/);
  assert.equal((await listAll(b, 'accounts', { limit: 500 })).length, 102);
});

test('FailingCopy: a missing source file or a source that is not SQLite is refused', { skip }, async () => {
  const target = await databaseFor(tempDir());
  await assert.rejects(cli('copy', '--from', `sqlite:${join(tempDir(), 'missing.db')}`, '--to', target), /no SQLite database/);
  await assert.rejects(cli('copy', '--from', target, '--to', target), /must name a SQLite file/);
});
