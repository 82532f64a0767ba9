// Access: record scopes per role (own/team/all), field-level hiding of account.bank_account,
// and administrator-only operations. Every permission decision is checked through the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, listAll } from './harness.mjs';

let srv;
let admin, n1, n2, s1, mgr;
let accN1, accN2, accS1, contactS1;
const BANK = '6222 0210 0123 4567';

before(async () => {
  srv = await startServer();
  [admin, n1, n2, s1, mgr] = await srv.cast('admin', 'north1', 'north2', 'south1', 'manager');
  accN1 = await n1.create('accounts', { name: 'North One Co', city: '北京' });
  accN2 = await n2.create('accounts', { name: 'North Two Co', city: '天津' });
  accS1 = await s1.create('accounts', { name: 'South One Co', city: '广州' });
  contactS1 = await s1.create('contacts', { full_name: '南方联系人', account_id: accS1.id });
  for (const a of [accN1, accS1]) {
    const r = await admin.patch(`/api/v1/accounts/${a.id}`, { bank_account: BANK });
    assert.equal(r.status, 200, r.text);
  }
});
after(async () => { await srv?.stop(); });

const idsOf = (items) => items.map((x) => x.id).sort();

test('records carry owner and team of their creator', async () => {
  assert.equal(accN1.owner_id, n1.user.id);
  assert.ok(accN1.team_id, 'team set from the creator');
  assert.equal(accN1.team_id, accN2.team_id, 'same team');
  assert.notEqual(accN1.team_id, accS1.team_id);
});

test('Sales lists only own + team records; Sales manager and admin list all', async () => {
  assert.deepEqual(idsOf(await listAll(n1, 'accounts')), [accN1.id, accN2.id].sort());
  assert.deepEqual(idsOf(await listAll(n2, 'accounts')), [accN1.id, accN2.id].sort());
  assert.deepEqual(idsOf(await listAll(s1, 'accounts')), [accS1.id]);
  assert.deepEqual(idsOf(await listAll(mgr, 'accounts')), [accN1.id, accN2.id, accS1.id].sort());
  assert.deepEqual(idsOf(await listAll(admin, 'accounts')), [accN1.id, accN2.id, accS1.id].sort());
  assert.deepEqual(await listAll(n1, 'contacts'), [], 'contacts of another team are not listed');
  // A filter cannot widen the scope.
  const r = await n1.list('accounts', { filter: { field: 'id', op: '=', value: accS1.id } });
  assert.deepEqual(r.items, []);
});

test('FailingAccess: Sales gets 403 forbidden on another team\'s record by id (get, history, patch, delete, restore)', async () => {
  assertProblem(await n1.get(`/api/v1/accounts/${accS1.id}`), 403, 'forbidden');
  assertProblem(await n1.get(`/api/v1/accounts/${accS1.id}/history`), 403, 'forbidden');
  assertProblem(await n1.patch(`/api/v1/accounts/${accS1.id}`, { city: 'hijack' }), 403, 'forbidden');
  assertProblem(await n1.del(`/api/v1/accounts/${accS1.id}`), 403, 'forbidden');
  assertProblem(await n1.get(`/api/v1/contacts/${contactS1.id}`), 403, 'forbidden');
  const g = await admin.get(`/api/v1/accounts/${accS1.id}`);
  assert.equal(g.json.city, '广州', 'nothing changed');
  assert.equal(g.json.version, 2);
  // Restore of another team's deleted record is refused too.
  const tmp = await s1.create('accounts', { name: 'South Temp' });
  assert.equal((await s1.del(`/api/v1/accounts/${tmp.id}`)).status, 204);
  assertProblem(await n1.post(`/api/v1/accounts/${tmp.id}/restore`), 403, 'forbidden');
  assert.deepEqual((await n1.list('accounts', { deleted: 'true' })).items, [], 'recycle bin is scoped too');
  assert.equal((await s1.post(`/api/v1/accounts/${tmp.id}/restore`)).status, 200);
  assert.equal((await admin.del(`/api/v1/accounts/${tmp.id}`)).status, 204);
});

test('FailingAccess: Sales reads a teammate\'s record but may not update or delete it (update scope own)', async () => {
  const g = await n1.get(`/api/v1/accounts/${accN2.id}`);
  assert.equal(g.status, 200);
  assert.equal((await n1.get(`/api/v1/accounts/${accN2.id}/history`)).status, 200);
  assertProblem(await n1.patch(`/api/v1/accounts/${accN2.id}`, { city: '石家庄' }), 403, 'forbidden');
  assertProblem(await n1.del(`/api/v1/accounts/${accN2.id}`), 403, 'forbidden');
  assert.equal((await n2.get(`/api/v1/accounts/${accN2.id}`)).json.city, '天津');
  const own = await n1.patch(`/api/v1/accounts/${accN1.id}`, { industry: 'Software' });
  assert.equal(own.status, 200, own.text);
});

test('Sales manager reads all, updates all, deletes only within the team', async () => {
  assert.equal((await mgr.get(`/api/v1/accounts/${accS1.id}`)).status, 200);
  const p = await mgr.patch(`/api/v1/accounts/${accS1.id}`, { industry: 'Retail' });
  assert.equal(p.status, 200, p.text);
  assertProblem(await mgr.del(`/api/v1/accounts/${accS1.id}`), 403, 'forbidden');
  const mine = await n2.create('accounts', { name: 'Team deletable' });
  assert.equal((await mgr.del(`/api/v1/accounts/${mine.id}`)).status, 204);
});

test('bank_account is hidden from Sales in get, list, fields=, search, export, history and metadata', async () => {
  const g = await n1.get(`/api/v1/accounts/${accN1.id}`);
  assert.equal(g.status, 200);
  assert.ok(!('bank_account' in g.json), 'get');
  assert.ok(!g.text.includes(BANK));
  const l = await n1.get('/api/v1/accounts?limit=500');
  assert.ok(!l.text.includes('bank_account') && !l.text.includes(BANK), 'list');
  const f = await n1.get('/api/v1/accounts?fields=name,bank_account');
  assert.ok(!f.text.includes(BANK), 'fields=');
  for (const item of f.json.items) assert.ok(!('bank_account' in item));
  const one = await n1.get(`/api/v1/accounts/${accN1.id}?fields=bank_account`);
  assert.ok(!one.text.includes(BANK));
  const s = await n1.get(`/api/v1/search?q=${encodeURIComponent('6222 0210')}`);
  assert.deepEqual(s.json.items, [], 'search');
  const csv = await n1.get('/api/v1/accounts/export.csv');
  assert.equal(csv.status, 200);
  assert.ok(!csv.text.includes('bank_account') && !csv.text.includes(BANK), 'export');
  const csv2 = await n1.get('/api/v1/accounts/export.csv?fields=name,bank_account');
  assert.ok(!csv2.text.includes(BANK), 'export with fields=');
  const h = await n1.get(`/api/v1/accounts/${accN1.id}/history`);
  assert.equal(h.status, 200);
  assert.ok(!h.text.includes('bank_account') && !h.text.includes(BANK), 'history');
  assert.ok(h.json.items.some((i) => i.action === 'update'), 'the update entry itself is still listed');
  const m = await n1.get('/api/v1/metadata');
  const account = m.json.entities.find((e) => e.name === 'account');
  assert.ok(!account.fields.some((x) => x.name === 'bank_account'), 'metadata');
  assert.ok(account.fields.some((x) => x.name === 'tax_id'));
  const oa = await n1.get('/api/v1/openapi.json');
  assert.equal(oa.status, 200);
});

test('FailingAccess: Sales filtering or sorting on bank_account is refused like an unknown field', async () => {
  assertProblem(await n1.get(`/api/v1/accounts?filter=${encodeURIComponent(JSON.stringify({ field: 'bank_account', op: '=', value: BANK }))}`),
    400, 'bad_filter', 'bank_account');
  assertProblem(await n1.get(`/api/v1/accounts?filter=${encodeURIComponent(JSON.stringify({ field: 'bank_account', op: 'is_null', value: false }))}`),
    400, 'bad_filter', 'bank_account');
  const hidden = await n1.get('/api/v1/accounts?sort=bank_account');
  const unknown = await n1.get('/api/v1/accounts?sort=no_such_field');
  assertProblem(hidden, 400, unknown.json.code, 'sort');
  assert.equal(hidden.json.detail.replace('bank_account', 'X'), unknown.json.detail.replace('no_such_field', 'X'),
    'a hidden field is indistinguishable from an unknown one');
  // The manager may filter on it.
  const r = await mgr.list('accounts', { filter: { field: 'bank_account', op: '=', value: BANK } });
  assert.deepEqual(idsOf(r.items), [accN1.id, accS1.id].sort());
});

test('FailingAccess: Sales writing bank_account → 400 unknown_field; manager (read only) → 403 forbidden', async () => {
  assertProblem(await n1.patch(`/api/v1/accounts/${accN1.id}`, { bank_account: '1' }), 400, 'unknown_field', 'bank_account');
  assertProblem(await n1.post('/api/v1/accounts', { name: 'Sneaky', bank_account: '1' }), 400, 'unknown_field', 'bank_account');
  assertProblem(await mgr.patch(`/api/v1/accounts/${accN1.id}`, { bank_account: '1' }), 403, 'forbidden', 'bank_account');
  assert.equal((await admin.get(`/api/v1/accounts/${accN1.id}`)).json.bank_account, BANK);
});

test('Sales manager and admin read bank_account in get, list, export and metadata', async () => {
  for (const c of [mgr, admin]) {
    const g = await c.get(`/api/v1/accounts/${accS1.id}`);
    assert.equal(g.json.bank_account, BANK);
    const l = await c.list('accounts', { fields: 'bank_account' });
    assert.ok(l.items.some((i) => i.bank_account === BANK));
    const csv = await c.get('/api/v1/accounts/export.csv');
    assert.ok(csv.text.split('\r\n')[0].includes('bank_account'));
    assert.ok(csv.text.includes(BANK));
    const m = await c.get('/api/v1/metadata');
    const f = m.json.entities.find((e) => e.name === 'account').fields.find((x) => x.name === 'bank_account');
    assert.ok(f);
    assert.equal(f.permission, c === mgr ? 'read' : 'write');
  }
  const h = await mgr.get(`/api/v1/accounts/${accN1.id}/history`);
  const ch = h.json.items.flatMap((i) => i.changes).find((c) => c.field === 'bank_account');
  assert.deepEqual(ch, { field: 'bank_account', from: null, to: BANK });
});

test('FailingAccess: Sales cannot create users, add custom fields, or read roles; manager cannot add fields', async () => {
  const roles = await admin.list('roles');
  const salesRole = roles.items.find((r) => r.name === 'Sales');
  assertProblem(await n1.post('/api/v1/users', { username: 'mallory', display_name: 'M', role_id: salesRole.id, password: 'long-password-1' }),
    403, 'forbidden');
  assertProblem(await mgr.post('/api/v1/users', { username: 'mallory', display_name: 'M', role_id: salesRole.id, password: 'long-password-1' }),
    403, 'forbidden');
  assert.ok(!(await admin.list('users', { limit: 500 })).items.some((u) => u.username === 'mallory'));
  assertProblem(await n1.post('/api/v1/metadata/account/fields', { name: 'wechat_id', type: 'text', label: { en: 'WeChat', 'zh-CN': '微信号' } }),
    403, 'forbidden');
  assertProblem(await mgr.post('/api/v1/metadata/account/fields', { name: 'wechat_id', type: 'text', label: { en: 'WeChat', 'zh-CN': '微信号' } }),
    403, 'forbidden');
  assertProblem(await n1.get('/api/v1/roles'), 403, 'forbidden');
  assertProblem(await n1.patch(`/api/v1/roles/${salesRole.id}`, { is_admin: true }), 403, 'forbidden');
  assertProblem(await n1.patch(`/api/v1/users/${n1.user.id}`, { role_id: roles.items.find((r) => r.name === 'Administrator').id }), 403, 'forbidden');
  const me = await n1.get('/api/v1/auth/me');
  assert.equal(me.json.user.is_admin, false, 'still not an admin');
});

test('users are readable by Sales but never expose passwords or hashes', async () => {
  const r = await n1.get('/api/v1/users?limit=500');
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.items.length >= 5);
  assert.ok(!/password|argon2/i.test(r.text), r.text.slice(0, 300));
  const one = await admin.get(`/api/v1/users/${n1.user.id}`);
  assert.ok(!/password|argon2/i.test(one.text));
  const csv = await admin.get('/api/v1/users/export.csv');
  assert.ok(!/argon2/i.test(csv.text));
});

test('metadata reports the caller\'s permissions per entity', async () => {
  const m = await n1.get('/api/v1/metadata');
  const account = m.json.entities.find((e) => e.name === 'account');
  assert.deepEqual(account.permissions, { create: true, read: 'team', update: 'own', delete: 'own' });
  const ma = await admin.get('/api/v1/metadata');
  assert.deepEqual(ma.json.entities.find((e) => e.name === 'account').permissions, { create: true, read: 'all', update: 'all', delete: 'all' });
});

test('admin manages users over the API: password never echoed or audited, deactivation locks out at once', async () => {
  const roles = (await admin.list('roles')).items;
  const salesRole = roles.find((r) => r.name === 'Sales');
  const team = await admin.create('teams', { name: 'West' });
  const r = await admin.post('/api/v1/users', { username: 'newbie', display_name: '新人', role_id: salesRole.id, team_id: team.id, password: 'newbie-password-1' });
  assert.equal(r.status, 201, r.text);
  assert.ok(!/password|argon2/i.test(r.text));
  const s = await srv.login('newbie', 'newbie-password-1');
  assert.equal(s.user.role, 'Sales');
  assert.equal(s.user.team_id, team.id);
  const h = await admin.get(`/api/v1/users/${r.json.id}/history`);
  assert.ok(!/newbie-password|argon2|"password"/.test(h.text), `history must not hold the password: ${h.text.slice(0, 300)}`);
  assertProblem(await admin.post('/api/v1/users', { username: 'shorty', display_name: 'S', role_id: salesRole.id, password: 'short' }), 422, 'validation_failed', 'password');
  assertProblem(await admin.post('/api/v1/users', { username: 'newbie', display_name: 'N', role_id: salesRole.id, password: 'another-password-1' }), 409, 'duplicate', 'username');
  assertProblem(await admin.post('/api/v1/users', { username: 'Bad Name', display_name: 'N', role_id: salesRole.id, password: 'another-password-1' }), 422, 'validation_failed', 'username');
  assertProblem(await admin.del(`/api/v1/users/${admin.user.id}`), 422, 'rule_violation');

  const token = await srv.token('newbie');
  assert.equal((await srv.request('GET', '/api/v1/auth/me', { token })).status, 200);
  const d = await admin.patch(`/api/v1/users/${r.json.id}`, { active: false });
  assert.equal(d.status, 200, d.text);
  assertProblem(await srv.request('GET', '/api/v1/auth/me', { session: s }), 401, 'unauthenticated');
  // The credential and its user are read in one statement: a known token of a disabled user is
  // told from an unknown one.
  const byToken = await srv.request('GET', '/api/v1/auth/me', { token });
  assertProblem(byToken, 401, 'unauthenticated');
  assert.match(byToken.json.detail, /user is disabled or deleted/);
  const unknown = await srv.request('GET', '/api/v1/auth/me', { token: `${token}x` });
  assertProblem(unknown, 401, 'unauthenticated');
  assert.match(unknown.json.detail, /unknown API token/);
  assertProblem(await srv.request('POST', '/api/v1/auth/login', { body: { username: 'newbie', password: 'newbie-password-1' } }), 401, 'invalid_credentials');
});

test('role changes take effect immediately; invalid permission documents → 422 permissions', async () => {
  const roles = (await admin.list('roles')).items;
  const salesRole = roles.find((r) => r.name === 'Sales');
  assert.equal((await n1.get('/api/v1/contacts')).status, 200);
  const perms = structuredClone(salesRole.permissions);
  perms.entities.contact = { create: false, read: 'none', update: 'none', delete: 'none' };
  const p = await admin.patch(`/api/v1/roles/${salesRole.id}`, { permissions: perms });
  assert.equal(p.status, 200, p.text);
  try {
    assertProblem(await n1.get('/api/v1/contacts'), 403, 'forbidden');
    assertProblem(await n1.post('/api/v1/contacts', { full_name: 'x' }), 403, 'forbidden');
    const m = await n1.get('/api/v1/metadata');
    assert.deepEqual(m.json.entities.find((e) => e.name === 'contact').permissions, { create: false, read: 'none', update: 'none', delete: 'none' });
  } finally {
    const back = await admin.patch(`/api/v1/roles/${salesRole.id}`, { permissions: salesRole.permissions });
    assert.equal(back.status, 200, back.text);
  }
  assert.equal((await n1.get('/api/v1/contacts')).status, 200);
  assertProblem(await admin.post('/api/v1/roles', { name: 'Broken', permissions: { entities: { account: { read: 'everything' } } } }), 422, 'validation_failed', 'permissions');
  assertProblem(await admin.post('/api/v1/roles', { name: 'Broken', permissions: { fields: { 'account.bank_account': 'maybe' } } }), 422, 'validation_failed', 'permissions');
});
