// Record CRUD for accounts, contacts and interactions; ETag/If-Match; Idempotency-Key; audit history.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, listAll, qs } from './harness.mjs';

let srv;
let admin; // Administrator with an API token (channel "api")
let session; // admin's session (channel "ui")

before(async () => {
  srv = await startServer();
  admin = await srv.userClient('admin', { password: 'admin-password-1', role: 'Administrator' });
  const s = await srv.login('admin', 'admin-password-1');
  session = srv.client({ session: s });
});
after(async () => { await srv?.stop(); });

const isId = (v) => typeof v === 'string' && /^[1-9]\d*$/.test(v);

test('account: create 201 with Location and ETag, get, patch bumps version, delete 204, then 404', async () => {
  const r = await admin.post('/api/v1/accounts', {
    name: '北京示例科技有限公司', city: '北京', phones: ['010-6543-2100'], emails: ['info@example.cn'],
    credit_limit: { amount: 5000000, currency: 'CNY' }, employees: 120, key_account: true, account_manager_id: admin.user.id, tags: ['vip'],
    address: { street: '中关村大街1号', city: '北京', country: 'CN' },
  });
  assert.equal(r.status, 201, r.text);
  const a = r.json;
  assert.ok(isId(a.id), `id is a string of digits: ${a.id}`);
  assert.equal(r.headers.get('location'), `/api/v1/accounts/${a.id}`);
  assert.equal(r.headers.get('etag'), '"1"');
  assert.equal(a.version, 1);
  assert.equal(a.kind, 'company', 'default applied');
  assert.equal(a.currency, 'CNY', 'default applied');
  assert.deepEqual(a.credit_limit, { amount: 5000000, currency: 'CNY' });
  assert.deepEqual(a.tags, ['vip']);
  assert.equal(a.key_account, true);
  assert.equal(a.employees, 120);
  assert.equal(a.address.street, '中关村大街1号');
  for (const f of ['created_at', 'updated_at']) assert.match(a[f], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.equal(a.owner_id, admin.user.id, 'the creator owns the record');
  assert.equal(a.created_by, admin.user.id);

  const g = await admin.get(r.headers.get('location'));
  assert.equal(g.status, 200);
  assert.equal(g.headers.get('etag'), '"1"');
  assert.deepEqual(g.json, a);

  const p = await admin.patch(`/api/v1/accounts/${a.id}`, { city: '上海', employees: 130 });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.version, 2);
  assert.equal(p.headers.get('etag'), '"2"');
  assert.equal(p.json.city, '上海');
  assert.equal(p.json.employees, 130);
  assert.equal(p.json.name, a.name, 'untouched fields stay');
  assert.equal(p.json.created_at, a.created_at);

  // A PATCH that changes nothing does not bump the version.
  const same = await admin.patch(`/api/v1/accounts/${a.id}`, { city: '上海' });
  assert.equal(same.status, 200);
  assert.equal(same.json.version, 2);

  const d = await admin.del(`/api/v1/accounts/${a.id}`);
  assert.equal(d.status, 204);
  assert.equal(d.text, '');
  assertProblem(await admin.get(`/api/v1/accounts/${a.id}`), 404, 'not_found');
  assertProblem(await admin.patch(`/api/v1/accounts/${a.id}`, { city: 'x' }), 404, 'not_found');
  assertProblem(await admin.del(`/api/v1/accounts/${a.id}`), 404, 'not_found');
});

test('soft delete: recycle bin lists it (?deleted=true), restore brings it back, restore twice → 409', async () => {
  const a = await admin.create('accounts', { name: 'Recycle Me Ltd' });
  assert.equal((await admin.del(`/api/v1/accounts/${a.id}`)).status, 204);
  const live = await admin.list('accounts', { limit: 500 });
  assert.ok(!live.items.some((x) => x.id === a.id), 'deleted record is not in the normal list');
  const bin = await admin.list('accounts', { deleted: 'true', limit: 500 });
  const inBin = bin.items.find((x) => x.id === a.id);
  assert.ok(inBin, 'deleted record is in the recycle bin');
  assert.match(inBin.deleted_at, /Z$/);
  const r = await admin.post(`/api/v1/accounts/${a.id}/restore`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.id, a.id);
  assert.equal(r.json.deleted_at, undefined);
  assert.equal(r.json.version, 3, 'delete and restore each bump the version');
  assert.equal(r.headers.get('etag'), '"3"');
  assert.equal((await admin.get(`/api/v1/accounts/${a.id}`)).status, 200);
  assertProblem(await admin.post(`/api/v1/accounts/${a.id}/restore`), 409, 'conflict');
  assertProblem(await admin.post('/api/v1/accounts/999999/restore'), 404, 'not_found');
});

test('FailingGet: unknown ids, malformed ids and unknown collections → 404 not_found', async () => {
  assertProblem(await admin.get('/api/v1/accounts/12345'), 404, 'not_found');
  assertProblem(await admin.get('/api/v1/accounts/abc'), 404, 'not_found');
  assertProblem(await admin.get('/api/v1/accounts/-1'), 404, 'not_found');
  assertProblem(await admin.get('/api/v1/accounts/99999999999999999999999'), 404, 'not_found');
  assertProblem(await admin.get('/api/v1/widgets'), 404, 'not_found');
  assertProblem(await admin.post('/api/v1/widgets', { name: 'x' }), 404, 'not_found');
  assertProblem(await admin.get('/api/v1/widgets/1'), 404, 'not_found');
});

test('contact: references an account by id string; a missing account → 422 validation_failed account_id', async () => {
  const acc = await admin.create('accounts', { name: 'Contact Holder Inc' });
  const r = await admin.post('/api/v1/contacts', {
    full_name: '张三', account_id: acc.id, emails: ['zhangsan@example.cn'], phones: ['13800138000'],
    preferred_channel: 'wechat', birthday: '1980-02-29',
  });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.account_id, acc.id);
  assert.equal(r.json.consent, 'unknown', 'default');
  assert.equal(r.json.birthday, '1980-02-29');
  assert.equal(r.headers.get('location'), `/api/v1/contacts/${r.json.id}`);

  const bad = await admin.post('/api/v1/contacts', { full_name: '李四', account_id: '424242424242' });
  assertProblem(bad, 422, 'validation_failed', 'account_id');
  // A deleted account cannot be referenced either.
  const gone = await admin.create('accounts', { name: 'Gone Co' });
  await admin.del(`/api/v1/accounts/${gone.id}`);
  assertProblem(await admin.post('/api/v1/contacts', { full_name: '王五', account_id: gone.id }), 422, 'validation_failed', 'account_id');
  assertProblem(await admin.patch(`/api/v1/contacts/${r.json.id}`, { account_id: gone.id }), 422, 'validation_failed', 'account_id');
  // Not an id at all.
  const notId = await admin.post('/api/v1/contacts', { full_name: '赵六', account_id: 'abc' });
  assert.equal(notId.status, 422, notId.text);
  assert.equal(notId.json.field, 'account_id');
  // Unlinking is allowed.
  const u = await admin.patch(`/api/v1/contacts/${r.json.id}`, { account_id: null });
  assert.equal(u.status, 200, u.text);
  assert.equal(u.json.account_id, null);
  const del = await admin.del(`/api/v1/contacts/${r.json.id}`);
  assert.equal(del.status, 204);
  assertProblem(await admin.get(`/api/v1/contacts/${r.json.id}`), 404, 'not_found');
});

test('interaction: money cost, enum channel, datetime normalised to UTC', async () => {
  const acc = await admin.create('accounts', { name: 'Interaction Target' });
  const r = await admin.post('/api/v1/interactions', {
    subject: '季度回访', account_id: acc.id, occurred_at: '2024-05-01T10:30:00+08:00', channel: 'visit',
    direction: 'inbound', cost: { amount: 12550, currency: 'CNY' }, place: '客户办公室', outcome: 'positive',
  });
  assert.equal(r.status, 201, r.text);
  const i = r.json;
  assert.equal(i.occurred_at, '2024-05-01T02:30:00.000Z');
  assert.deepEqual(i.cost, { amount: 12550, currency: 'CNY' });
  assert.equal(i.channel, 'visit');
  assert.equal(i.direction, 'inbound');

  const r2 = await admin.post('/api/v1/interactions', { subject: 'call', occurred_at: '2024-05-01T00:00:00Z', channel: 'phone' });
  assert.equal(r2.status, 201, r2.text);
  assert.equal(r2.json.direction, 'outbound', 'default direction');

  assertProblem(await admin.post('/api/v1/interactions', { subject: 'x', occurred_at: '2024-05-01T00:00:00Z', channel: 'pigeon' }),
    422, 'validation_failed', 'channel');
  assertProblem(await admin.post('/api/v1/interactions', { subject: 'x', occurred_at: 'yesterday', channel: 'phone' }),
    422, 'validation_failed', 'occurred_at');
  assertProblem(await admin.post('/api/v1/interactions', { subject: 'x', occurred_at: '2024-05-01T00:00:00Z', channel: 'phone', cost: 12.5 }),
    422, 'validation_failed', 'cost');
  assertProblem(await admin.post('/api/v1/interactions', { subject: 'x', occurred_at: '2024-05-01T00:00:00Z', channel: 'phone', cost: { amount: 1.5, currency: 'CNY' } }),
    422, 'validation_failed', 'cost');
  assertProblem(await admin.post('/api/v1/interactions', { subject: 'x', channel: 'phone' }),
    422, 'validation_failed', 'occurred_at');

  const p = await admin.patch(`/api/v1/interactions/${i.id}`, { occurred_at: '2024-05-01T23:00:00-05:00' });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.occurred_at, '2024-05-02T04:00:00.000Z');
  assert.equal((await admin.del(`/api/v1/interactions/${i.id}`)).status, 204);
  assert.equal((await admin.post(`/api/v1/interactions/${i.id}/restore`)).status, 200);
});

test('ETag / If-Match: stale → 409 conflict and nothing written; current → 200; If-None-Match → 304', async () => {
  const a = await admin.create('accounts', { name: 'Etag Co' });
  const p1 = await admin.patch(`/api/v1/accounts/${a.id}`, { city: 'A' }, { headers: { 'if-match': '"1"' } });
  assert.equal(p1.status, 200, p1.text);
  assert.equal(p1.headers.get('etag'), '"2"');
  const stale = await admin.patch(`/api/v1/accounts/${a.id}`, { city: 'B' }, { headers: { 'if-match': '"1"' } });
  assertProblem(stale, 409, 'conflict');
  const g = await admin.get(`/api/v1/accounts/${a.id}`);
  assert.equal(g.json.city, 'A', 'stale write changed nothing');
  assert.equal(g.json.version, 2);
  const ok = await admin.patch(`/api/v1/accounts/${a.id}`, { city: 'C' }, { headers: { 'if-match': g.headers.get('etag') } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.version, 3);
  const star = await admin.patch(`/api/v1/accounts/${a.id}`, { city: 'D' }, { headers: { 'if-match': '*' } });
  assert.equal(star.status, 200);

  const nm = await admin.get(`/api/v1/accounts/${a.id}`, { headers: { 'if-none-match': '"4"' } });
  assert.equal(nm.status, 304);
  assert.equal(nm.headers.get('etag'), '"4"');
  assert.equal(nm.text, '');
  const changed = await admin.get(`/api/v1/accounts/${a.id}`, { headers: { 'if-none-match': '"3"' } });
  assert.equal(changed.status, 200);
  assertProblem(await admin.patch(`/api/v1/accounts/${a.id}`, { city: 'E' }, { headers: { 'if-match': 'garbage' } }), 400, 'bad_request', 'If-Match');
});

// A PATCH rewrites the search, phone and match index entries only where what they are made of
// changed (RecordService::derive_changed): each is checked both ways here, after a PATCH of a
// plain field (they stay) and after one of the name, the numbers, the tax id and the sort field.
test('PATCH: search, phone lookup, duplicates and sorted lists follow the new values and not the old; a plain field leaves them as they were', async () => {
  const a = await admin.create('accounts', { name: 'Quillon Barrel Works', customer_code: 'PX-1',
    phones: ['+86 138 0072 0001'], tax_id: '91110108PXOLD01', city: 'Aachen', payment_terms: 'net 30' });
  const b = await admin.create('accounts', { name: 'Rostock Sieve Guild', customer_code: 'PX-2',
    phones: ['+86 138 0072 0002'], city: 'Bremen' });
  const search = async (q) => (await admin.get(`/api/v1/search?${qs({ q, entity: 'account' })}`)).json.items.map((x) => x.id);
  const phone = async (number) => (await admin.get(`/api/v1/lookup/phone?${qs({ number })}`)).json.matches.map((m) => m.id);
  const dup = async (tax_id) => (await admin.post('/api/v1/accounts/duplicates/check', { name: 'Someone Else', tax_id })).json.candidates.map((x) => x.id);
  const byCity = async (sort) => (await listAll(admin, 'accounts',
    { filter: { field: 'customer_code', op: 'starts_with', value: 'PX-' }, sort, limit: 1 })).map((x) => x.id);

  const plain = await admin.patch(`/api/v1/accounts/${a.id}`, { payment_terms: 'net 60' }, { headers: { 'if-match': '"1"' } });
  assert.equal(plain.status, 200, plain.text);
  assert.equal(plain.headers.get('etag'), '"2"');
  assert.equal(plain.json.payment_terms, 'net 60');
  assertProblem(await admin.patch(`/api/v1/accounts/${a.id}`, { payment_terms: 'net 90' }, { headers: { 'if-match': '"1"' } }), 409, 'conflict');
  assert.deepEqual(await search('Quillon Barrel'), [a.id]);
  assert.deepEqual(await phone('+8613800720001'), [a.id]);
  assert.deepEqual(await dup('91110108PXOLD01'), [a.id]);
  assert.deepEqual(await byCity('city'), [a.id, b.id]);

  const moved = await admin.patch(`/api/v1/accounts/${a.id}`, { name: 'Stralsund Ladle Works',
    phones: ['+86 138 0072 0011'], tax_id: '91110108PXNEW01', city: 'Cottbus' }, { headers: { 'if-match': '"2"' } });
  assert.equal(moved.status, 200, moved.text);
  assert.equal(moved.json.version, 3);
  assert.equal(moved.json.payment_terms, 'net 60', 'untouched fields stay');
  assert.deepEqual(await search('Stralsund Ladle'), [a.id]);
  assert.deepEqual(await search('Quillon Barrel'), []);
  assert.deepEqual(await search('Rostock Sieve'), [b.id]);
  assert.deepEqual(await search('13800720011'), [a.id], 'the new number by its digits');
  assert.deepEqual(await search('13800720001'), []);
  assert.deepEqual(await phone('+8613800720011'), [a.id]);
  assert.deepEqual(await phone('+8613800720001'), []);
  assert.deepEqual(await phone('+8613800720002'), [b.id]);
  assert.deepEqual(await dup('91110108PXNEW01'), [a.id]);
  assert.deepEqual(await dup('91110108PXOLD01'), []);
  assert.deepEqual(await byCity('city'), [b.id, a.id], 'Bremen, Cottbus');
  assert.equal((await admin.patch(`/api/v1/accounts/${b.id}`, { city: 'Dresden' })).status, 200);
  assert.deepEqual(await byCity('city'), [a.id, b.id], 'Cottbus, Dresden');
  assert.deepEqual(await byCity('-city'), [b.id, a.id]);

  const h = (await admin.get(`/api/v1/accounts/${a.id}/history`)).json.items;
  assert.deepEqual(h.map((x) => x.action), ['update', 'update', 'create']);
  assert.deepEqual(h[1].changes, [{ field: 'payment_terms', from: 'net 30', to: 'net 60' }]);
  assert.deepEqual(h[0].changes.map((x) => x.field).sort(), ['city', 'name', 'phones', 'tax_id']);
});

test('Idempotency-Key: same key + same body → same record once; different body → 409 conflict', async () => {
  const body = { name: 'Idempotent Ltd', city: '深圳' };
  const before = (await admin.list('accounts', { filter: { field: 'name', op: '=', value: body.name } })).items.length;
  assert.equal(before, 0);
  const h = { headers: { 'idempotency-key': 'key-001' } };
  const r1 = await admin.post('/api/v1/accounts', body, h);
  const r2 = await admin.post('/api/v1/accounts', body, h);
  assert.equal(r1.status, 201, r1.text);
  assert.equal(r2.status, 201, r2.text);
  assert.equal(r2.json.id, r1.json.id);
  assert.equal(r2.headers.get('location'), r1.headers.get('location'));
  const after1 = await admin.list('accounts', { filter: { field: 'name', op: '=', value: body.name } });
  assert.equal(after1.items.length, 1, 'only one record created');
  const r3 = await admin.post('/api/v1/accounts', { ...body, city: '广州' }, h);
  assertProblem(r3, 409, 'conflict', 'Idempotency-Key');
  assert.equal((await admin.list('accounts', { filter: { field: 'name', op: '=', value: body.name } })).items.length, 1);
  // A different key creates a new record; keys are per user.
  const r4 = await admin.post('/api/v1/accounts', body, { headers: { 'idempotency-key': 'key-002' } });
  assert.equal(r4.status, 201);
  assert.notEqual(r4.json.id, r1.json.id);
  // Concurrent retries with one key still create one record.
  const key = { headers: { 'idempotency-key': 'key-concurrent' } };
  const rs = await Promise.all([1, 2, 3, 4].map(() => admin.post('/api/v1/accounts', { name: 'Concurrent Idem' }, key)));
  for (const r of rs) assert.equal(r.status, 201, r.text);
  assert.equal(new Set(rs.map((r) => r.json.id)).size, 1);
  assert.equal((await admin.list('accounts', { filter: { field: 'name', op: '=', value: 'Concurrent Idem' } })).items.length, 1);
  assertProblem(await admin.post('/api/v1/accounts', body, { headers: { 'idempotency-key': 'k'.repeat(300) } }), 400, 'bad_request', 'Idempotency-Key');
});

test('audit: history shows who, channel (api for token, ui for session), action and field from → to', async () => {
  const a = await admin.create('accounts', { name: 'Audited Co', city: '杭州' });
  let r = await session.patch(`/api/v1/accounts/${a.id}`, { city: '苏州', employees: 7 });
  assert.equal(r.status, 200, r.text);
  r = await admin.del(`/api/v1/accounts/${a.id}`);
  assert.equal(r.status, 204);
  r = await admin.post(`/api/v1/accounts/${a.id}/restore`);
  assert.equal(r.status, 200);
  const h = await admin.get(`/api/v1/accounts/${a.id}/history`);
  assert.equal(h.status, 200, h.text);
  const items = h.json.items;
  assert.deepEqual(items.map((x) => x.action), ['restore', 'delete', 'update', 'create'], 'newest first');
  const [restore, del, upd, create] = items;
  assert.equal(create.channel, 'api');
  assert.equal(create.user_name, 'admin');
  assert.equal(create.user_id, admin.user.id);
  assert.ok(create.changes.some((c) => c.field === 'name' && c.from === null && c.to === 'Audited Co'));
  assert.equal(upd.channel, 'ui');
  assert.equal(upd.user_name, 'admin');
  assert.match(upd.at, /Z$/);
  const byField = Object.fromEntries(upd.changes.map((c) => [c.field, c]));
  assert.deepEqual(byField.city, { field: 'city', from: '杭州', to: '苏州' });
  assert.deepEqual(byField.employees, { field: 'employees', from: null, to: 7 });
  assert.equal(upd.changes.length, 2, 'only changed fields are recorded');
  assert.equal(del.channel, 'api');
  assert.equal(restore.channel, 'api');
  assertProblem(await admin.get('/api/v1/accounts/31337/history'), 404, 'not_found');
});

test('system fields: created_at and id in a body are ignored, not stored', async () => {
  const r = await admin.post('/api/v1/accounts', { name: 'Readonly Echo', id: '5', version: 99, created_at: '2000-01-01T00:00:00Z' });
  assert.equal(r.status, 201, r.text);
  assert.notEqual(r.json.id, '5');
  assert.equal(r.json.version, 1);
  assert.notEqual(r.json.created_at, '2000-01-01T00:00:00.000Z');
  // PATCH echoing a fetched record back works and keeps id/created_at.
  const back = { ...r.json, city: 'Echo City' };
  delete back.updated_at;
  const p = await admin.patch(`/api/v1/accounts/${r.json.id}`, back);
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.id, r.json.id);
  assert.equal(p.json.created_at, r.json.created_at);
  assert.equal(p.json.city, 'Echo City');
  assert.equal(p.json.version, 2);
});

test('concurrent creates share commits: each answered 201 is stored as answered, searchable and in the phone lookup; a failing one (duplicate customer code) is absent and fails no other', async () => {
  const taken = await admin.create('accounts', { name: 'Group Commit Holder', customer_code: 'GCX-TAKEN' });
  const n = 24;
  const bodies = Array.from({ length: n }, (_, i) => ({
    name: `Batchmate gcq${String(i).padStart(2, '0')}zz`,
    customer_code: i % 4 === 3 ? 'GCX-TAKEN' : `GCX-${i}`,
    phones: [`021-7788-${String(1000 + i)}`],
  }));
  const answers = await Promise.all(bodies.map((b) => admin.post('/api/v1/accounts', b)));
  for (let i = 0; i < n; ++i) {
    const r = answers[i];
    if (i % 4 === 3) {
      assertProblem(r, 409, 'duplicate', 'customer_code');
      continue;
    }
    assert.equal(r.status, 201, r.text);
    const got = await admin.get(`/api/v1/accounts/${r.json.id}`);
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json, r.json, 'the answer is the record as stored');
  }
  const search = await admin.get(`/api/v1/search?q=${encodeURIComponent('gcq')}&limit=50`);
  assert.equal(search.status, 200, search.text);
  const found = search.json.items.map((it) => it.title).sort();
  const created = bodies.filter((_, i) => i % 4 !== 3).map((b) => b.name).sort();
  assert.deepEqual(found, created, 'full-text entries of the committed creates only');
  for (let i = 0; i < n; ++i) {
    const r = await admin.get(`/api/v1/lookup/phone?number=${encodeURIComponent(bodies[i].phones[0])}`);
    assert.equal(r.status, 200, r.text);
    const ids = r.json.matches.map((m) => m.id);
    if (i % 4 === 3) assert.deepEqual(ids, [], `failed create ${i} left no phone index row`);
    else assert.deepEqual(ids, [answers[i].json.id]);
  }
  const holder = await admin.get(`/api/v1/accounts/${taken.id}`);
  assert.equal(holder.json.customer_code, 'GCX-TAKEN');
});
