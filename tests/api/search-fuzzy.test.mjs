// "Did you mean": when a search finds nothing, PostgreSQL answers records whose title is similar
// to the query (pg_trgm), marked `"fuzzy": true`, within the caller's record scope. SQLite has no
// such fallback: the same search answers an empty list with `"fuzzy": false`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, PG_URL, sqliteOnly } from './harness.mjs';

const pgOnly = PG_URL ? false : 'PostgreSQL only: SQLite has no fuzzy fallback';

let srv;
let admin;
let north; // Sales, team North
let south; // Sales, team South
const rec = {};

before(async () => {
  srv = await startServer();
  [admin, north, south] = await srv.cast('admin', 'north1', 'south1');
  rec.north = await north.create('accounts', { name: 'Zenith Textiles' });
  rec.south = await south.create('accounts', { name: 'Zenith Textiles South' });
  rec.other = await north.create('accounts', { name: 'Harbour Logistics' });
});
after(async () => { await srv?.stop(); });

async function search(client, q, extra = '') {
  const r = await client.get(`/api/v1/search?q=${encodeURIComponent(q)}${extra}`);
  assert.equal(r.status, 200, `search ${q}: ${r.status} ${r.text}`);
  assert.equal(typeof r.json.fuzzy, 'boolean', r.text);
  return r.json;
}
const ids = (answer) => answer.items.map((i) => i.id);

test('a misspelt name finds the similar record, marked fuzzy (PostgreSQL)', { skip: pgOnly }, async () => {
  const r = await search(north, 'Zenitth Textils');
  assert.equal(r.fuzzy, true, JSON.stringify(r));
  assert.deepEqual(ids(r), [rec.north.id]);
  assert.equal(r.items[0].title, 'Zenith Textiles');
  assert.equal(r.items[0].entity, 'account');
  const one = await search(north, 'Zenitth Textils', '&entity=account&limit=1');
  assert.equal(one.fuzzy, true);
  assert.deepEqual(ids(one), [rec.north.id]);
});

test('the fuzzy fallback never lists a record the caller may not read', { skip: pgOnly }, async () => {
  // The administrator sees both similar accounts, the most similar first…
  const all = await search(admin, 'Zenitth Textils');
  assert.equal(all.fuzzy, true);
  assert.deepEqual(ids(all), [rec.north.id, rec.south.id]);
  // …each team only its own.
  assert.deepEqual(ids(await search(north, 'Zenitth Textils')), [rec.north.id]);
  assert.deepEqual(ids(await search(south, 'Zenitth Textils')), [rec.south.id]);
  // A deleted record is not suggested either.
  const del = await admin.del(`/api/v1/accounts/${rec.south.id}`);
  assert.equal(del.status, 204, del.text);
  try {
    assert.deepEqual(ids(await search(south, 'Zenitth Textils')), []);
  } finally {
    const r = await admin.post(`/api/v1/accounts/${rec.south.id}/restore`, {});
    assert.equal(r.status, 200, r.text);
  }
});

test('a title the caller may not see is not compared with the query', { skip: pgOnly }, async () => {
  const sales = (await admin.list('roles')).items.find((r) => r.name === 'Sales');
  const perms = structuredClone(sales.permissions);
  perms.entities.account = { ...perms.entities.account, read: 'all' };
  perms.fields = { ...(perms.fields || {}), 'account.name': 'hidden' };
  const role = await admin.post('/api/v1/roles', { name: 'NoAccountNames', permissions: perms });
  assert.equal(role.status, 201, role.text);
  const masked = await srv.userClient('masked1', { role: 'NoAccountNames' });
  assert.deepEqual(await search(masked, 'Zenitth Textils', '&entity=account'), { items: [], fuzzy: false });
});

test('a search that matches is not fuzzy and lists only matches', async () => {
  const r = await search(north, 'Zenith Text');
  assert.equal(r.fuzzy, false);
  assert.deepEqual(ids(r), [rec.north.id]);
});

test('a nonsense query answers an empty list, not fuzzy', async () => {
  for (const q of ['qxjzvw kpfh', 'zz']) {
    const r = await search(admin, q);
    assert.deepEqual(r, { items: [], fuzzy: false }, q);
  }
});

test('SQLite has no fuzzy fallback: a misspelt name finds nothing', { skip: sqliteOnly('PostgreSQL answers similar titles') }, async () => {
  assert.deepEqual(await search(north, 'Zenitth Textils'), { items: [], fuzzy: false });
});
