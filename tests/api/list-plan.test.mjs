// The list plan through the binary (issue #5, list filtered and sorted): a filter on a common
// value (4,096 records or more: written unindexed so that the sort's index drives) and on a rare
// one (its own index drives) give the same pages, in the same order, as the records sorted here;
// cursor paging included, across groups of equal sort values (ties by created_at, then id).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, listAll, qs } from './harness.mjs';

let srv;
let admin;
let all = []; // every account, as the server lists them
const COMMON = 4200; // tier A: over the server's bound of 4,096 (kEqualityFirstMax)
const RARE = 7; // tier B

before(async () => {
  srv = await startServer();
  admin = await srv.userClient('admin', { role: 'Administrator' });
  // One import (one transaction, one created_at for every row); names repeat (groups of three)
  // and the key-account flag is set on every fifth row, so sorts meet ties (a key account names
  // its account manager).
  const key = (on) => `${on},${on ? admin.user.id : ''}`;
  let csv = 'name,tier,key_account,account_manager_id\r\n';
  for (let i = 0; i < COMMON; i++) csv += `P${String(i % 1400).padStart(4, '0')},A,${key(i % 5 === 0)}\r\n`;
  for (let i = 0; i < RARE; i++) csv += `P${String((i * 389) % 1400).padStart(4, '0')},B,${key(i % 2 === 0)}\r\n`;
  const r = await admin.post(`/api/v1/accounts/import?${qs({ mode: 'commit' })}`, csv,
    { headers: { 'content-type': 'text/csv' } });
  assert.equal(r.status, 200, r.text);
  // …and a few created one by one later, so that created_at differs within a group of names.
  for (const [name, tier] of [['P0001', 'A'], ['P0002', 'B'], ['P0001', 'B']]) {
    await admin.create('accounts', { name, tier, key_account: false });
  }
  all = await listAll(admin, 'accounts', { limit: 500 });
  assert.equal(all.length, COMMON + RARE + 3);
});
after(async () => { await srv?.stop(); });

// The records of `tier` in the order of `field` (ascending or `desc`), ties by created_at and
// then id in the same direction.
function expected(tier, field, desc) {
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  return all.filter((a) => a.tier === tier).sort((x, y) => {
    const c = cmp(x[field], y[field]) || cmp(x.created_at, y.created_at) ||
      cmp(BigInt(x.id), BigInt(y.id));
    return desc ? -c : c;
  }).map((a) => a.id);
}

for (const [tier, count] of [['A', COMMON + 1], ['B', RARE + 2]]) {
  for (const sort of ['name', '-name', '-key_account']) {
    test(`filter tier=${tier} (${count} records), sort=${sort}: every page in order`, async () => {
      const filter = { field: 'tier', op: '=', value: tier };
      const want = expected(tier, sort.replace('-', ''), sort.startsWith('-'));
      assert.equal(want.length, count);
      const first = await admin.list('accounts', { filter, sort, limit: 50 });
      assert.deepEqual(first.items.map((a) => a.id), want.slice(0, 50), 'the first page');
      assert.equal(first.next_cursor === null, count <= 50);
      const walked = await listAll(admin, 'accounts', { filter, sort, limit: tier === 'A' ? 97 : 2 });
      assert.deepEqual(walked.map((a) => a.id), want, 'every cursor page, in order');
    });
  }
}
