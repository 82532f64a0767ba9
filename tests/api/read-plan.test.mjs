// A read by id and a phone lookup find their entity's read plan and shown fields in a memo per
// I/O thread (RecordService::read_plan). A custom field added or a role changed must be seen by
// the next read on every I/O thread: each step below reads over many fresh connections at once
// (the server's two I/O threads both answer), after each thread has memoised the old plan.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from './harness.mjs';

let srv;
let admin, sales;

before(async () => {
  srv = await startServer({ args: ['--io-threads', '2'] });
  [admin, sales] = await Promise.all([
    srv.userClient('admin', { role: 'Administrator' }),
    srv.userClient('planreader', { role: 'Sales', team: 'East' }),
  ]);
});
after(async () => { await srv?.stop(); });

// One GET on a connection of its own (no keep-alive pool), as `client`.
function fresh(client, path) {
  const url = new URL(client.base + path);
  const headers = { connection: 'close' };
  if (client.auth.token) headers.authorization = `Bearer ${client.auth.token}`;
  if (client.auth.session) headers.cookie = client.auth.session.cookie;
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path: url.pathname + url.search, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.status ?? res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
  });
}

// `n` reads of `path` at once, each on its own connection; every answer 200, parsed.
async function many(client, path, n = 48) {
  const rs = await Promise.all(Array.from({ length: n }, () => fresh(client, path)));
  for (const r of rs) assert.equal(r.status, 200, `${path} → ${r.status} ${r.text}`);
  return rs.map((r) => JSON.parse(r.text));
}

test('a custom field added, then hidden from a role, is seen by the next reads and lookups on every I/O thread', async () => {
  const phone = '+8613900139123';
  const acc = await sales.create('accounts', { name: 'Plan Memo Shop', phones: [phone], credit_class: 'B' });
  const one = `/api/v1/accounts/${acc.id}`;
  const lookup = `/api/v1/lookup/phone?number=${encodeURIComponent(phone)}`;
  // Every thread memoises the plans of the entity as it is now.
  for (const path of [one, `${one}?fields=name,plan_probe`, lookup]) await many(sales, path);
  for (const r of await many(sales, one)) assert.ok(!('plan_probe' in r), JSON.stringify(r));

  const add = await admin.post('/api/v1/metadata/account/fields', { name: 'plan_probe', type: 'text', label: { en: 'Probe', 'zh-CN': '探针' } });
  assert.equal(add.status, 201, add.text);
  // Unchanged record: its version is the same, only the entity snapshot is new.
  for (const r of await many(sales, one)) assert.equal(r.plan_probe, null, JSON.stringify(r));
  for (const r of await many(sales, `${one}?fields=name,plan_probe`)) assert.deepEqual(r, { id: acc.id, version: acc.version, name: 'Plan Memo Shop', plan_probe: null });
  const p = await sales.patch(one, { plan_probe: 'seen' });
  assert.equal(p.status, 200, p.text);
  for (const r of await many(sales, one)) assert.equal(r.plan_probe, 'seen', JSON.stringify(r));
  for (const r of await many(sales, lookup)) assert.equal(r.matches.find((x) => x.id === acc.id)?.credit_class, 'B', JSON.stringify(r));

  const roles = (await admin.list('roles')).items;
  const salesRole = roles.find((r) => r.name === 'Sales');
  const perms = structuredClone(salesRole.permissions);
  perms.fields = { ...(perms.fields || {}), 'account.plan_probe': 'hidden', 'account.credit_class': 'hidden' };
  const ch = await admin.patch(`/api/v1/roles/${salesRole.id}`, { permissions: perms });
  assert.equal(ch.status, 200, ch.text);
  try {
    for (const r of await many(sales, one)) {
      assert.ok(!('plan_probe' in r), JSON.stringify(r));
      assert.equal(r.name, 'Plan Memo Shop');
    }
    for (const r of await many(sales, `${one}?fields=name,plan_probe`)) assert.deepEqual(r, { id: acc.id, version: p.json.version, name: 'Plan Memo Shop' });
    for (const r of await many(sales, lookup)) {
      const m = r.matches.find((x) => x.id === acc.id);
      assert.ok(m, JSON.stringify(r));
      assert.equal(m.credit_class, null, JSON.stringify(m));
      assert.equal(m.account_title, 'Plan Memo Shop');
    }
    // The administrator's role did not change: still shown to it.
    for (const r of await many(admin, one, 8)) assert.equal(r.plan_probe, 'seen');
    for (const r of await many(admin, lookup, 8)) assert.equal(r.matches.find((x) => x.id === acc.id)?.credit_class, 'B');
  } finally {
    const back = await admin.patch(`/api/v1/roles/${salesRole.id}`, { permissions: salesRole.permissions });
    assert.equal(back.status, 200, back.text);
  }
  for (const r of await many(sales, one)) assert.equal(r.plan_probe, 'seen', JSON.stringify(r));
  for (const r of await many(sales, lookup)) assert.equal(r.matches.find((x) => x.id === acc.id)?.credit_class, 'B', JSON.stringify(r));
});
