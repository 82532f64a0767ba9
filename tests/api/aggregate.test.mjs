// GET /api/v1/{plural}/aggregate: counts grouped by one or two fields (date/datetime values by
// day, month or year), within the caller's scope and filter; hidden, unknown and ungroupable
// fields and bad parameters are problems naming the parameter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, qs } from './harness.mjs';

let srv, admin, north, south;
const agg = (client, plural, params) => client.get(`/api/v1/${plural}/aggregate?${qs(params)}`);
const asMap = (groups) => Object.fromEntries(groups.map((g) => [g.values.map(String).join('|'), g.count]));

before(async () => {
  srv = await startServer();
  [admin, north, south] = await Promise.all([
    srv.userClient('admin', { role: 'Administrator' }),
    srv.userClient('north', { role: 'Sales', team: 'North' }),
    srv.userClient('south', { role: 'Sales', team: 'South' }),
  ]);
  const mk = (c, name, extra) => c.create('accounts', { name, ...extra });
  const a1 = await mk(north, 'Agg N1', { tier: 'A', key_account: true, account_manager_id: north.user.id, customer_type: 'customer' });
  await mk(north, 'Agg N2', { tier: 'A', customer_type: 'prospect' });
  await mk(north, 'Agg N3', { tier: 'B', key_account: false, customer_type: 'customer' });
  await mk(south, 'Agg S1', { tier: 'A', customer_type: 'customer' });
  await mk(south, 'Agg S2', { customer_type: 'partner' });
  const deleted = await mk(south, 'Agg S3', { tier: 'C' });
  assert.equal((await admin.del(`/api/v1/accounts/${deleted.id}`)).status, 204);
  const ia = (channel, at) => north.create('interactions', { subject: `${channel} ${at}`, account_id: a1.id, occurred_at: at, channel, direction: 'outbound' });
  await ia('phone', '2026-01-05T09:00:00+08:00');
  await ia('phone', '2026-01-20T10:00:00+08:00');
  await ia('visit', '2026-01-21T10:00:00+08:00');
  await ia('phone', '2026-02-02T10:00:00+08:00');
  await ia('email', '2026-03-01T07:30:00+08:00'); // 2026-02-28T23:30Z: February in UTC
});
after(async () => { await srv?.stop(); });

test('accounts by tier: counts of live records, largest first, null as a group', async () => {
  const r = await agg(admin, 'accounts', { group_by: 'tier' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.entity, 'account');
  assert.deepEqual(r.json.group_by, ['tier']);
  assert.equal(r.json.bucket, null);
  assert.deepEqual(r.json.groups, [
    { values: ['A'], count: 3 },
    { values: [null], count: 1 },
    { values: ['B'], count: 1 },
  ]);
  assert.equal(r.json.total, 5, 'the deleted account is not counted');
  assert.equal(r.json.truncated, false);
});

test('two fields, booleans as booleans, and a filter', async () => {
  const r = await agg(admin, 'accounts', { group_by: 'customer_type,key_account', filter: { field: 'name', op: 'starts_with', value: 'Agg N' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(asMap(r.json.groups), { 'customer|true': 1, 'customer|false': 1, 'prospect|null': 1 });
  assert.ok(r.json.groups.some((g) => g.values[1] === true));
});

test('q narrows the counts like the list search', async () => {
  const r = await agg(admin, 'accounts', { group_by: 'tier', q: 'Agg N' });
  assert.equal(r.status, 200, r.text);
  const list = await admin.get(`/api/v1/accounts?${qs({ q: 'Agg N', limit: 500 })}`);
  assert.equal(r.json.total, list.json.items.length);
  assert.deepEqual(asMap(r.json.groups), { A: 2, B: 1 });
});

test('interactions per channel per month (UTC buckets); day and year buckets; references as id strings', async () => {
  const r = await agg(admin, 'interactions', { group_by: 'channel,occurred_at', bucket: 'month' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.bucket, 'month');
  assert.deepEqual(asMap(r.json.groups), { 'phone|2026-01': 2, 'visit|2026-01': 1, 'phone|2026-02': 1, 'email|2026-02': 1 });
  const y = await agg(admin, 'interactions', { group_by: 'occurred_at', bucket: 'year' });
  assert.deepEqual(y.json.groups, [{ values: ['2026'], count: 5 }]);
  const d = await agg(admin, 'interactions', { group_by: 'occurred_at' });
  assert.equal(d.json.groups.length, 5, 'a datetime without bucket is grouped by day');
  assert.ok(d.json.groups.every((g) => /^\d{4}-\d{2}-\d{2}$/.test(g.values[0])));
  const ref = await agg(admin, 'interactions', { group_by: 'account_id' });
  assert.equal(ref.json.groups.length, 1);
  assert.equal(typeof ref.json.groups[0].values[0], 'string');
  assert.equal(ref.json.groups[0].count, 5);
});

test('record scope: each Sales team counts its own accounts only', async () => {
  const n = await agg(north, 'accounts', { group_by: 'tier' });
  assert.equal(n.status, 200, n.text);
  assert.deepEqual(asMap(n.json.groups), { A: 2, B: 1 });
  const s = await agg(south, 'accounts', { group_by: 'tier' });
  assert.deepEqual(asMap(s.json.groups), { A: 1, null: 1 });
  const si = await agg(south, 'interactions', { group_by: 'channel' });
  assert.deepEqual(si.json.groups, [], 'no interactions in the South team');
});

test('problems: hidden, unknown and ungroupable fields, bad bucket, bad parameters; no read right', async () => {
  // Sales may not see bank_account: it is unknown to them, while the administrator may group by it
  assertProblem(await agg(north, 'accounts', { group_by: 'bank_account' }), 400, 'unknown_field', 'group_by');
  assert.equal((await agg(admin, 'accounts', { group_by: 'bank_account' })).status, 200);
  const unk = await agg(admin, 'accounts', { group_by: 'colour' });
  assertProblem(unk, 400, 'unknown_field', 'group_by');
  assert.match(unk.json.detail, /colour/);
  assertProblem(await agg(admin, 'accounts', { group_by: 'phones' }), 400, 'bad_request', 'group_by');
  assertProblem(await agg(admin, 'accounts', { group_by: 'credit_limit' }), 400, 'bad_request', 'group_by');
  assertProblem(await agg(admin, 'accounts', {}), 400, 'bad_request', 'group_by');
  assertProblem(await agg(admin, 'accounts', { group_by: 'tier,,city' }), 400, 'bad_request', 'group_by');
  assertProblem(await agg(admin, 'accounts', { group_by: 'tier,tier' }), 400, 'bad_request', 'group_by');
  assertProblem(await agg(admin, 'accounts', { group_by: 'tier,city,kind' }), 400, 'bad_request', 'group_by');
  assertProblem(await agg(admin, 'interactions', { group_by: 'occurred_at', bucket: 'week' }), 400, 'bad_request', 'bucket');
  assertProblem(await agg(admin, 'accounts', { group_by: 'tier', bucket: 'month' }), 400, 'bad_request', 'bucket');
  assertProblem(await agg(admin, 'accounts', { group_by: 'tier', colour: 'red' }), 400, 'bad_request', 'colour');
  assertProblem(await agg(admin, 'accounts', { group_by: 'tier', filter: '{nope' }), 400, 'bad_filter', 'filter');
  assertProblem(await agg(north, 'accounts', { group_by: 'tier', filter: { field: 'bank_account', op: '=', value: 'x' } }), 400, 'bad_filter', 'bank_account');
  assertProblem(await agg(north, 'duplicate_candidates', { group_by: 'status' }), 403, 'forbidden');
  assertProblem(await agg(admin, 'nothings', { group_by: 'x' }), 404, 'not_found');
  assertProblem(await srv.request('GET', '/api/v1/accounts/aggregate?group_by=tier'), 401, 'unauthenticated');
});

test('q counts only matches on fields the caller may see: a hidden value is not counted, by one word or several', async () => {
  const sales = (await admin.list('roles')).items.find((r) => r.name === 'Sales');
  const perms = structuredClone(sales.permissions);
  perms.entities.contact = { ...perms.entities.contact, read: 'all' };
  perms.fields = { ...(perms.fields || {}), 'contact.full_name': 'hidden' };
  const role = await admin.post('/api/v1/roles', { name: 'AggMasked', permissions: perms });
  assert.equal(role.status, 201, role.text);
  const masked = await srv.userClient('aggmasked1', { role: 'AggMasked' });
  // One contact Masked may find by its e-mail; three only through the hidden name.
  await admin.create('contacts', { full_name: 'Plain Person', emails: ['zorvane@seen.example'] });
  for (let i = 0; i < 3; i++) await admin.create('contacts', { full_name: `Zorvane Hidden${i}` });
  const total = async (client, q) => {
    const r = await agg(client, 'contacts', { group_by: 'created_at', bucket: 'year', q });
    assert.equal(r.status, 200, r.text);
    return r.json.total;
  };
  assert.equal(await total(admin, 'zorvane'), 4);
  assert.equal(await total(masked, 'zorvane'), 1, 'only the match on the visible e-mail');
  assert.equal(await total(masked, 'zorvane hidden'), 0, 'several words, all in the hidden name');
  assert.equal(await total(admin, 'zorvane hidden'), 3);
  // The groups themselves carry the same counts.
  const r = await agg(masked, 'contacts', { group_by: 'created_at', bucket: 'year', q: 'zorvane' });
  assert.deepEqual(r.json.groups.map((g) => g.count), [1]);
  assert.equal(r.json.truncated, false);
});
