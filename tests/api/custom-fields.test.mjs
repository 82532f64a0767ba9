// Custom fields: administrators add real columns at run time; they are usable everywhere at once
// and survive a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, listAll } from './harness.mjs';

let srv;
let admin, sales;
const WECHAT = { name: 'wechat_id', type: 'text', label: { en: 'WeChat', 'zh-CN': '微信号' }, indexed: true, searchable: true, max_length: 40 };

before(async () => {
  srv = await startServer();
  [admin, sales] = await Promise.all([
    srv.userClient('admin', { role: 'Administrator' }),
    srv.userClient('sales1', { role: 'Sales', team: 'East' }),
  ]);
});
after(async () => { await srv?.stop(); });

const fieldsOf = async (client, entity) =>
  (await client.get('/api/v1/metadata')).json.entities.find((e) => e.name === entity).fields;

test('admin adds a custom text field: 201, in metadata with both labels, writable and readable', async () => {
  const r = await admin.post('/api/v1/metadata/account/fields', WECHAT);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.name, 'wechat_id');
  assert.equal(r.json.type, 'text');
  assert.equal(r.json.custom, true);
  assert.deepEqual(r.json.label, { en: 'WeChat', 'zh-CN': '微信号' });
  const f = (await fieldsOf(admin, 'account')).find((x) => x.name === 'wechat_id');
  assert.ok(f, 'in metadata');
  assert.equal(f.custom, true);
  assert.equal(f.indexed, true);
  assert.deepEqual(f.label, { en: 'WeChat', 'zh-CN': '微信号' });
  assert.ok((await fieldsOf(sales, 'account')).some((x) => x.name === 'wechat_id'), 'other users see it at once');

  const a = await sales.create('accounts', { name: 'WeChat Shop A', wechat_id: 'shop_b' });
  const b = await sales.create('accounts', { name: 'WeChat Shop B', wechat_id: 'shop_a' });
  const c = await sales.create('accounts', { name: 'WeChat Shop C' });
  assert.equal(a.wechat_id, 'shop_b');
  assert.equal(c.wechat_id, null);
  const p = await sales.patch(`/api/v1/accounts/${c.id}`, { wechat_id: 'shop_c' });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.wechat_id, 'shop_c');
  assertProblem(await sales.patch(`/api/v1/accounts/${c.id}`, { wechat_id: 'x'.repeat(41) }), 422, 'validation_failed', 'wechat_id');
  assertProblem(await sales.patch(`/api/v1/accounts/${c.id}`, { wechat_id: 7 }), 422, 'validation_failed', 'wechat_id');

  // Filter, sort (indexed), fields, search (searchable), export, history.
  const f1 = await sales.list('accounts', { filter: { field: 'wechat_id', op: 'starts_with', value: 'shop_' }, sort: 'wechat_id' });
  assert.deepEqual(f1.items.map((x) => x.name), ['WeChat Shop B', 'WeChat Shop A', 'WeChat Shop C']);
  const f2 = await sales.list('accounts', { filter: { field: 'wechat_id', op: '=', value: 'shop_a' }, fields: 'wechat_id' });
  assert.deepEqual(f2.items.map((x) => x.id), [b.id]);
  assert.deepEqual(Object.keys(f2.items[0]).sort(), ['id', 'version', 'wechat_id']);
  const s = await sales.get('/api/v1/search?q=shop_c');
  assert.ok(s.json.items.some((i) => i.id === c.id), JSON.stringify(s.json));
  const csv = await sales.get('/api/v1/accounts/export.csv');
  assert.ok(csv.text.split('\r\n')[0].split(',').includes('wechat_id'));
  assert.ok(csv.text.includes('shop_c'));
  const h = await sales.get(`/api/v1/accounts/${c.id}/history`);
  assert.deepEqual(h.json.items[0].changes, [{ field: 'wechat_id', from: null, to: 'shop_c' }]);
  // It is in the OpenAPI document too.
  const oa = await admin.get('/api/v1/openapi.json');
  assert.ok(oa.text.includes('wechat_id'));
});

test('custom fields of other types: money, enum, boolean, reference, and one on contacts', async () => {
  const add = (entity, body) => admin.post(`/api/v1/metadata/${entity}/fields`, body);
  for (const [entity, body] of [
    ['account', { name: 'deposit', type: 'money', label: { en: 'Deposit', 'zh-CN': '押金' }, indexed: true }],
    ['account', { name: 'region_code', type: 'enum', label: { en: 'Region', 'zh-CN': '大区' }, options: ['north', 'south'] }],
    ['account', { name: 'verified', type: 'boolean', label: { en: 'Verified', 'zh-CN': '已认证' } }],
    ['contact', { name: 'referrer_id', type: 'reference', reference: 'contact', label: { en: 'Referrer', 'zh-CN': '推荐人' } }],
  ]) {
    const r = await add(entity, body);
    assert.equal(r.status, 201, `${body.name}: ${r.text}`);
  }
  const a = await sales.create('accounts', { name: 'Typed Custom', deposit: { amount: 50000, currency: 'CNY' }, region_code: 'north', verified: true });
  assert.deepEqual(a.deposit, { amount: 50000, currency: 'CNY' });
  assert.equal(a.region_code, 'north');
  assert.equal(a.verified, true);
  assertProblem(await sales.post('/api/v1/accounts', { name: 'x', region_code: 'west' }), 422, 'validation_failed', 'region_code');
  assertProblem(await sales.post('/api/v1/accounts', { name: 'x', deposit: 5 }), 422, 'validation_failed', 'deposit');
  const rich = await sales.list('accounts', { filter: { field: 'deposit', op: '>', value: 1000 }, sort: '-deposit' });
  assert.deepEqual(rich.items.map((x) => x.id), [a.id]);
  const c1 = await sales.create('contacts', { full_name: '推荐人' });
  const c2 = await sales.create('contacts', { full_name: '被推荐人', referrer_id: c1.id });
  assert.equal(c2.referrer_id, c1.id);
  assertProblem(await sales.post('/api/v1/contacts', { full_name: 'x', referrer_id: '123' }), 422, 'validation_failed', 'referrer_id');
});

test('a sensitive custom field is hidden from Sales and visible to the admin', async () => {
  const r = await admin.post('/api/v1/metadata/account/fields', { name: 'internal_rating', type: 'integer', sensitive: true, label: { en: 'Internal rating', 'zh-CN': '内部评级' } });
  assert.equal(r.status, 201, r.text);
  const a = await sales.create('accounts', { name: 'Rated Co' });
  assert.equal((await admin.patch(`/api/v1/accounts/${a.id}`, { internal_rating: 9 })).status, 200);
  const g = await sales.get(`/api/v1/accounts/${a.id}`);
  assert.ok(!('internal_rating' in g.json));
  assert.ok(!(await fieldsOf(sales, 'account')).some((x) => x.name === 'internal_rating'));
  assertProblem(await sales.patch(`/api/v1/accounts/${a.id}`, { internal_rating: 1 }), 400, 'unknown_field', 'internal_rating');
  assert.equal((await admin.get(`/api/v1/accounts/${a.id}`)).json.internal_rating, 9);
});

test('FailingCustomField: duplicate or clashing name → 409 conflict; bad name → 422 name; bad type → 422 type', async () => {
  const add = (body, entity = 'account') => admin.post(`/api/v1/metadata/${entity}/fields`, body);
  const label = { en: 'X', 'zh-CN': '某' };
  assertProblem(await add(WECHAT), 409, 'conflict', 'name');
  assertProblem(await add({ name: 'city', type: 'text', label }), 409, 'conflict', 'name');
  assertProblem(await add({ name: 'owner_id', type: 'text', label }), 409, 'conflict', 'name');
  assertProblem(await add({ name: 'deleted_at', type: 'text', label }), 409, 'conflict', 'name');
  for (const name of ['1abc', 'WeChat', 'we-chat', 'we chat', '', '_x', 'x'.repeat(64), '微信']) {
    assertProblem(await add({ name, type: 'text', label }), 422, 'validation_failed', 'name');
  }
  assertProblem(await add({ name: 'colour', type: 'colour', label }), 422, 'validation_failed', 'type');
  assertProblem(await add({ name: 'colour', label }), 422, 'validation_failed', 'type');
  assertProblem(await add({ name: 'colour', type: 'enum', label }), 422, 'validation_failed', 'options');
  assertProblem(await add({ name: 'colour', type: 'text', label, max_length: 0 }), 422, 'validation_failed', 'max_length');
  assertProblem(await add({ name: 'colour', type: 'text', label, pattern: '([a-z' }), 422, 'validation_failed', 'pattern');
  assertProblem(await add({ name: 'colour', type: 'reference', reference: 'widget', label }), 422, 'validation_failed', 'reference');
  assertProblem(await add({ name: 'colour', type: 'text', label, required: true, unique: true }), 422, 'validation_failed', 'required');
  assertProblem(await add({ name: 'colour', type: 'text', label, colour: 'red' }), 400, 'unknown_field', 'colour');
  assertProblem(await add('{"name":'), 400, 'bad_request');
  assertProblem(await add('[]'), 400, 'bad_request');
  assertProblem(await add({ name: 'colour', type: 'text', label }, 'widget'), 404, 'not_found');
  assertProblem(await add({ name: 'colour', type: 'text', label }, 'accounts'), 404, 'not_found');
  assert.ok(!(await fieldsOf(admin, 'account')).some((x) => x.name === 'colour'), 'no failed attempt left a field behind');
});

test('custom fields and their values survive a restart', async () => {
  const before = await listAll(admin, 'accounts', { filter: { field: 'wechat_id', op: 'is_null', value: false }, sort: 'wechat_id' });
  assert.equal(before.length, 3);
  await srv.stop();
  srv = await startServer({ dataDir: srv.dataDir });
  admin = srv.client({ token: admin.token });
  const f = (await fieldsOf(admin, 'account')).find((x) => x.name === 'wechat_id');
  assert.ok(f, 'field still declared');
  assert.deepEqual(f.label, { en: 'WeChat', 'zh-CN': '微信号' });
  assert.ok((await fieldsOf(admin, 'contact')).some((x) => x.name === 'referrer_id'));
  const after = await listAll(admin, 'accounts', { filter: { field: 'wechat_id', op: 'is_null', value: false }, sort: 'wechat_id' });
  assert.deepEqual(after, before);
  const r = await admin.post('/api/v1/accounts', { name: 'After restart', wechat_id: 'restart_ok', deposit: { amount: 1, currency: 'USD' } });
  assert.equal(r.status, 201, r.text);
  assertProblem(await admin.post('/api/v1/metadata/account/fields', WECHAT), 409, 'conflict', 'name');
});
