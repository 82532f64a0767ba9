// A declarative conditional requirement (schema "required_when", docs/API.md "Metadata"): a key
// account must name its account manager (R-CUS-5, audit row 4.19). Checked on the record as it
// will be stored — create, PATCH, import (bulk insert, upsert, dry run) and merge — 422 naming
// account_manager_id; both backends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, assertProblem, databaseFor, listAll, qs, PG_URL } from './harness.mjs';

let srv;
let admin, seller;
let managerId; // a user the key accounts name

const RULE = 'account_manager_id is required when key_account is true';

before(async () => {
  srv = await startServer();
  admin = await srv.userClient('admin', { role: 'Administrator' });
  seller = await srv.userClient('seller', { role: 'Sales', team: 'North' });
  managerId = seller.user.id;
  assert.ok(managerId, 'user add printed the id');
});
after(async () => { await srv?.stop(); });

function assertRule(r) {
  assertProblem(r, 422, 'validation_failed', 'account_manager_id');
  assert.equal(r.json.detail, RULE, r.text);
}

// Stores `sql` directly (a record as it was before the rule existed), with the server stopped,
// then starts it again on the same data; the clients follow it to its new port.
async function storeDirectly(sql) {
  await srv.stop();
  if (PG_URL) {
    execFileSync('psql', [await databaseFor(srv.dataDir), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  } else {
    execFileSync('sqlite3', [join(srv.dataDir, 'rapport.db'), sql]);
  }
  srv = await startServer({ dataDir: srv.dataDir });
  const rebind = (c) => Object.assign(srv.client({ token: c.token }), { user: c.user, token: c.token });
  admin = rebind(admin);
  seller = rebind(seller);
}

test('metadata: account_manager_id declares its rule; key_account and other fields none', async () => {
  const r = await admin.get('/api/v1/metadata');
  assert.equal(r.status, 200, r.text);
  const account = r.json.entities.find((e) => e.name === 'account');
  const field = (n) => account.fields.find((f) => f.name === n);
  assert.deepEqual(field('account_manager_id').required_when, { field: 'key_account', equals: true });
  assert.equal(field('account_manager_id').required, false);
  assert.equal(field('key_account').required_when, undefined);
  assert.equal(field('name').required_when, undefined);
});

test('FailingCreate: a key account without its manager → 422 naming account_manager_id', async () => {
  assertRule(await admin.post('/api/v1/accounts', { name: 'Key No Manager', key_account: true }));
  assertRule(await admin.post('/api/v1/accounts', { name: 'Key Null Manager', key_account: true, account_manager_id: null }));
  // as Sales too (the bulk-less grouped create path is the same for every caller)
  assertRule(await seller.post('/api/v1/accounts', { name: 'Key Seller', key_account: true }));
  assert.equal((await listAll(admin, 'accounts', { filter: { field: 'name', op: 'starts_with', value: 'Key ' } })).length, 0);
  // the rule holds only while key_account is true
  const ok = await admin.create('accounts', { name: 'Managed Key', key_account: true, account_manager_id: managerId });
  assert.equal(ok.account_manager_id, managerId);
  await admin.create('accounts', { name: 'Plain Account', key_account: false });
  await admin.create('accounts', { name: 'Unflagged Account' });
});

test('FailingPatch: turning key_account on without a manager, or clearing the manager of a key account → 422', async () => {
  const plain = await admin.create('accounts', { name: 'Patch Plain' });
  assertRule(await admin.patch(`/api/v1/accounts/${plain.id}`, { key_account: true }));
  assertRule(await admin.patch(`/api/v1/accounts/${plain.id}`, { key_account: true, account_manager_id: null }));
  const unchanged = await admin.get(`/api/v1/accounts/${plain.id}`);
  assert.equal(unchanged.json.version, plain.version, 'nothing written');
  assert.equal(unchanged.json.key_account, null);
  // both at once is fine
  const on = await admin.patch(`/api/v1/accounts/${plain.id}`, { key_account: true, account_manager_id: managerId });
  assert.equal(on.status, 200, on.text);
  // the manager cannot be cleared while the flag stays on …
  assertRule(await admin.patch(`/api/v1/accounts/${plain.id}`, { account_manager_id: null }));
  // … a PATCH of another field of the valid record is fine …
  const other = await admin.patch(`/api/v1/accounts/${plain.id}`, { city: '杭州' });
  assert.equal(other.status, 200, other.text);
  // … and turning the flag off lets the manager go
  const off = await admin.patch(`/api/v1/accounts/${plain.id}`, { key_account: false, account_manager_id: null });
  assert.equal(off.status, 200, off.text);
  assert.equal(off.json.account_manager_id, null);
});

test('FailingImport: a key-account row without a manager is a row error; the other rows are imported', async () => {
  const csv = 'name,customer_code,key_account,account_manager_id\r\n' +
    'Import Key Bare,RW-1,true,\r\n' +
    `Import Key Managed,RW-2,true,${managerId}\r\n` +
    'Import Plain,RW-3,false,\r\n';
  const post = (mode) => admin.post(`/api/v1/accounts/import?${qs({ mode })}`, csv, { headers: { 'content-type': 'text/csv' } });
  for (const mode of ['dry_run', 'commit']) {
    const r = await post(mode);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.rows, 3, r.text);
    assert.equal(r.json.valid, 2, r.text);
    assert.deepEqual(r.json.skipped_rows, [2], r.text);
    assert.deepEqual(r.json.errors, [{ row: 2, field: 'account_manager_id', code: 'validation_failed', message: RULE }]);
  }
  const got = await listAll(admin, 'accounts', { filter: { field: 'customer_code', op: 'starts_with', value: 'RW-' } });
  assert.deepEqual(got.map((a) => a.customer_code).sort(), ['RW-2', 'RW-3']);
  assert.equal(got.find((a) => a.customer_code === 'RW-2').account_manager_id, managerId);

  // upsert (the bulk update): a row that turns an existing record into a key account without a
  // manager fails; rows updating a key account that has one (empty cells leave fields as they
  // are) and a plain one are written
  await admin.create('accounts', { name: 'Upsert Third', customer_code: 'RW-3X' });
  const upsert = 'customer_code,key_account,account_manager_id,city\r\n' +
    'RW-3,true,,南京\r\n' +
    'RW-2,true,,南京\r\n' +
    'RW-3X,false,,南京\r\n';
  const u = await admin.post(`/api/v1/accounts/import?${qs({ mode: 'commit', upsert: 'customer_code' })}`, upsert,
    { headers: { 'content-type': 'text/csv' } });
  assert.equal(u.status, 200, u.text);
  assert.deepEqual(u.json.errors, [{ row: 2, field: 'account_manager_id', code: 'validation_failed', message: RULE }]);
  assert.equal(u.json.updated, 2, u.text);
  const after = await listAll(admin, 'accounts', { filter: { field: 'customer_code', op: 'starts_with', value: 'RW-' } });
  const by = Object.fromEntries(after.map((a) => [a.customer_code, a]));
  assert.deepEqual([by['RW-3'].key_account, by['RW-3'].city], [false, null], 'the failed row wrote nothing');
  assert.deepEqual([by['RW-2'].account_manager_id, by['RW-2'].city], [managerId, '南京']);
  assert.equal(by['RW-3X'].city, '南京');
});

test('FailingPatch: a record stored before the rule refuses any PATCH that leaves it broken; naming the manager fixes it', async () => {
  const legacy = await admin.create('accounts', { name: 'Legacy Key', customer_code: 'LEG-1', key_account: true, account_manager_id: managerId });
  await storeDirectly(`UPDATE account SET account_manager_id = NULL WHERE id = ${legacy.id}`);
  const read = await admin.get(`/api/v1/accounts/${legacy.id}`);
  assert.equal(read.status, 200, read.text);
  assert.deepEqual([read.json.key_account, read.json.account_manager_id], [true, null]);
  // a PATCH of another field: the record as it would be still breaks the rule
  assertRule(await admin.patch(`/api/v1/accounts/${legacy.id}`, { city: '苏州' }));
  assertRule(await admin.patch(`/api/v1/accounts/${legacy.id}`, { owner_id: managerId }));
  // so does an import row that updates another field of it (upsert on its customer code)
  const u = await admin.post(`/api/v1/accounts/import?${qs({ mode: 'commit', upsert: 'customer_code' })}`,
    'customer_code,city\r\nLEG-1,苏州\r\n', { headers: { 'content-type': 'text/csv' } });
  assert.equal(u.status, 200, u.text);
  assert.deepEqual(u.json.errors, [{ row: 2, field: 'account_manager_id', code: 'validation_failed', message: RULE }]);
  assert.equal((await admin.get(`/api/v1/accounts/${legacy.id}`)).json.city, null);
  // merging it with a record that has no manager either keeps the survivor broken: refused
  const twin = await admin.create('accounts', { name: 'Legacy Key Twin' });
  assertRule(await admin.post(`/api/v1/accounts/${legacy.id}/merge`, { others: [twin.id] }));
  assert.equal((await admin.get(`/api/v1/accounts/${twin.id}`)).status, 200, 'nothing merged');
  // naming the manager (or turning the flag off) is accepted
  const fixed = await admin.patch(`/api/v1/accounts/${legacy.id}`, { city: '苏州', account_manager_id: managerId });
  assert.equal(fixed.status, 200, fixed.text);
  assert.equal(fixed.json.city, '苏州');
});

test('merge: a key account merged with a record without a manager keeps its manager', async () => {
  const key = await admin.create('accounts', { name: 'Merge Key', key_account: true, account_manager_id: managerId });
  const other = await admin.create('accounts', { name: 'Merge Other', key_account: false });
  const r = await admin.post(`/api/v1/accounts/${other.id}/merge`, { others: [key.id] });
  assert.equal(r.status, 200, r.text);
  const survivor = await admin.get(`/api/v1/accounts/${other.id}`);
  // the survivor's own (non-empty) flag wins: not a key account, the manager filled in from the other
  assert.deepEqual([survivor.json.key_account, survivor.json.account_manager_id], [false, managerId]);
});
