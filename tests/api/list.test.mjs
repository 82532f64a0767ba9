// Lists: filter operators and combinators, sort with NULLs and ties, keyset paging, fields, limit, q.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, listAll, qs } from './harness.mjs';

let srv;
let admin;
let accounts = []; // every account in this server, as created
const N = 36;
const CITIES = ['北京', '上海', '广州', '深圳'];
const KINDS = ['北京联合公司', 'Shanghai Trading', 'Guangzhou Works'];

function spec(i) {
  return {
    name: `L${String(i).padStart(2, '0')} ${KINDS[i % 3]}`,
    city: i % 5 === 0 ? null : CITIES[i % 4],
    industry: i % 7 === 0 ? null : `ind-${i % 4}`,
    employees: i % 4 === 0 ? null : i * 10,
    tier: ['A', 'B', 'C'][i % 3],
    key_account: i % 2 === 0,
    account_manager_id: i % 2 === 0 ? admin.user.id : null, // a key account names its manager
    credit_limit: { amount: (i % 6) * 1000, currency: 'CNY' },
    tags: i % 4 === 1 ? ['vip', 'online'] : i % 4 === 2 ? ['government'] : null,
  };
}

before(async () => {
  srv = await startServer();
  admin = await srv.userClient('admin', { role: 'Administrator' });
  // Created in parallel batches; ids still grow with creation order per batch, which the
  // tests do not rely on (they compare against the ids the server returned).
  for (let b = 0; b < N; b += 6) {
    const batch = await Promise.all(Array.from({ length: Math.min(6, N - b) }, (_, k) => admin.create('accounts', spec(b + k))));
    accounts.push(...batch);
  }
  assert.equal(accounts.length, N);
});
after(async () => { await srv?.stop(); });

const ids = (items) => items.map((x) => x.id).sort();
const expectIds = (pred) => accounts.filter(pred).map((x) => x.id).sort();

async function filtered(filter, extra = {}) {
  return ids(await listAll(admin, 'accounts', { filter, limit: 500, ...extra }));
}

test('filter: = != < <= > >= on text, integer, money and boolean fields', async () => {
  assert.deepEqual(await filtered({ field: 'city', op: '=', value: '北京' }), expectIds((a) => a.city === '北京'));
  assert.deepEqual(await filtered({ field: 'city', op: '!=', value: '北京' }), expectIds((a) => a.city !== '北京'),
    '!= keeps empty values');
  assert.deepEqual(await filtered({ field: 'employees', op: '<', value: 100 }), expectIds((a) => a.employees !== null && a.employees < 100));
  assert.deepEqual(await filtered({ field: 'employees', op: '<=', value: 100 }), expectIds((a) => a.employees !== null && a.employees <= 100));
  assert.deepEqual(await filtered({ field: 'employees', op: '>', value: 200 }), expectIds((a) => a.employees !== null && a.employees > 200));
  assert.deepEqual(await filtered({ field: 'employees', op: '>=', value: 200 }), expectIds((a) => a.employees !== null && a.employees >= 200));
  assert.deepEqual(await filtered({ field: 'credit_limit', op: '>=', value: 3000 }), expectIds((a) => a.credit_limit.amount >= 3000));
  assert.deepEqual(await filtered({ field: 'key_account', op: '=', value: true }), expectIds((a) => a.key_account === true));
  assert.deepEqual(await filtered({ field: 'tier', op: '=', value: 'B' }), expectIds((a) => a.tier === 'B'));
  assert.deepEqual(await filtered({ field: 'id', op: '=', value: accounts[3].id }), [accounts[3].id]);
});

test('filter: in, not_in, between, contains, starts_with, is_null', async () => {
  assert.deepEqual(await filtered({ field: 'tier', op: 'in', value: ['A', 'C'] }), expectIds((a) => a.tier !== 'B'));
  assert.deepEqual(await filtered({ field: 'city', op: 'not_in', value: ['北京', '上海'] }),
    expectIds((a) => a.city !== '北京' && a.city !== '上海'), 'not_in keeps empty values');
  assert.deepEqual(await filtered({ field: 'employees', op: 'between', value: [50, 150] }),
    expectIds((a) => a.employees !== null && a.employees >= 50 && a.employees <= 150));
  assert.deepEqual(await filtered({ field: 'name', op: 'contains', value: '联合' }), expectIds((a) => a.name.includes('联合')));
  assert.deepEqual(await filtered({ field: 'name', op: 'contains', value: 'trading' }), expectIds((a) => a.name.includes('Trading')),
    'contains ignores ASCII case');
  assert.deepEqual(await filtered({ field: 'name', op: 'contains', value: '%' }), [], 'LIKE wildcards are literal');
  assert.deepEqual(await filtered({ field: 'name', op: 'contains', value: '_' }), []);
  assert.deepEqual(await filtered({ field: 'name', op: 'starts_with', value: 'L1' }), expectIds((a) => a.name.startsWith('L1')));
  assert.deepEqual(await filtered({ field: 'city', op: 'is_null', value: true }), expectIds((a) => a.city === null));
  assert.deepEqual(await filtered({ field: 'city', op: 'is_null', value: false }), expectIds((a) => a.city !== null));
  assert.deepEqual(await filtered({ field: 'tags', op: 'contains', value: 'vip' }), expectIds((a) => a.tags?.includes('vip')));
  assert.deepEqual(await filtered({ field: 'tags', op: 'is_null', value: true }), expectIds((a) => a.tags === null));
});

test('filter: and / or / not combine, nested', async () => {
  assert.deepEqual(await filtered({ and: [{ field: 'tier', op: '=', value: 'A' }, { field: 'key_account', op: '=', value: true }] }),
    expectIds((a) => a.tier === 'A' && a.key_account));
  assert.deepEqual(await filtered({ or: [{ field: 'city', op: '=', value: '深圳' }, { field: 'city', op: 'is_null', value: true }] }),
    expectIds((a) => a.city === '深圳' || a.city === null));
  assert.deepEqual(await filtered({ not: { field: 'tier', op: '=', value: 'A' } }), expectIds((a) => a.tier !== 'A'));
  assert.deepEqual(await filtered({
    and: [
      { or: [{ field: 'tier', op: '=', value: 'A' }, { field: 'tier', op: '=', value: 'B' }] },
      { not: { or: [{ field: 'city', op: 'is_null', value: true }, { field: 'city', op: '=', value: '上海' }] } },
      { field: 'credit_limit', op: 'between', value: [1000, 4000] },
    ],
  }), expectIds((a) => (a.tier === 'A' || a.tier === 'B') && !(a.city === null || a.city === '上海') &&
    a.credit_limit.amount >= 1000 && a.credit_limit.amount <= 4000));
});

test('filter: datetime values with offsets are compared in UTC', async () => {
  const mk = (occurred_at) => admin.create('interactions', { subject: `dt ${occurred_at}`, occurred_at, channel: 'email' });
  const a = await mk('2024-05-01T07:00:00+08:00'); // 2024-04-30T23:00Z
  const b = await mk('2024-05-01T09:00:00+08:00'); // 2024-05-01T01:00Z
  const c = await mk('2024-05-02T00:00:00Z');
  const got = async (filter) => ids(await listAll(admin, 'interactions', { filter }));
  assert.deepEqual(await got({ field: 'occurred_at', op: '>=', value: '2024-05-01T00:00:00Z' }), [b.id, c.id].sort());
  assert.deepEqual(await got({ field: 'occurred_at', op: '<', value: '2024-05-01T08:00:00+08:00' }), [a.id]);
  assert.deepEqual(await got({ field: 'occurred_at', op: 'between', value: ['2024-04-30T23:00:00Z', '2024-05-01T01:00:00Z'] }), [a.id, b.id].sort());
  for (const x of [a, b, c]) assert.equal((await admin.del(`/api/v1/interactions/${x.id}`)).status, 204);
});

test('FailingFilter: bad JSON, unknown field, bad op, bad values → 400 bad_filter naming the field', async () => {
  const bad = async (filter, field) => {
    const r = await admin.get(`/api/v1/accounts?filter=${encodeURIComponent(typeof filter === 'string' ? filter : JSON.stringify(filter))}`);
    assertProblem(r, 400, 'bad_filter', field);
  };
  await bad('{"field":"name",', 'filter');
  await bad('not json', 'filter');
  await bad({ field: 'nickname', op: '=', value: 'x' }, 'nickname');
  await bad({ field: 'name', op: 'like', value: 'x' }, 'name');
  await bad({ field: 'name', op: '==', value: 'x' }, 'name');
  await bad({ field: 'tier', op: 'in', value: 'A' }, 'tier');
  await bad({ field: 'tier', op: 'in', value: [] }, 'tier');
  await bad({ field: 'employees', op: 'between', value: [1] }, 'employees');
  await bad({ field: 'employees', op: '>', value: 'ten' }, 'employees');
  await bad({ field: 'key_account', op: '=', value: 'yes' }, 'key_account');
  await bad({ field: 'city', op: 'is_null', value: 'yes' }, 'city');
  await bad({ field: 'city', op: 'contains', value: '' }, 'city');
  await bad({ field: 'city', op: '=' }, 'city');
  await bad({ field: 'phones', op: '=', value: '1' }, 'phones');
  await bad({ field: 'owner_id', op: '=', value: 'abc' }, 'owner_id');
  await bad({ field: 'created_at', op: '>', value: 'last week' }, 'created_at');
  // Structural problems have no field to name but are still bad_filter.
  for (const f of [[], 42, { and: [] }, { or: 'x' }, { not: { field: 'name', op: '=', value: 'x' }, extra: 1 },
    { field: 'name' }, { field: 'name', op: '=', value: 'x', colour: 1 }]) {
    const r = await admin.get(`/api/v1/accounts?${qs({ filter: f })}`);
    assertProblem(r, 400, 'bad_filter');
  }
  let deep = { field: 'name', op: '=', value: 'x' };
  for (let i = 0; i < 20; i++) deep = { not: deep };
  assertProblem(await admin.get(`/api/v1/accounts?${qs({ filter: deep })}`), 400, 'bad_filter');
});

// Expected order: keys [{field, desc}] then id in the first key's direction, NULLs first
// ascending and last descending (as docs and the server define). One field other than
// created_at is followed by created_at in its direction (its index is (field, created_at)).
function expectedOrder(keys) {
  const idDesc = keys.length ? keys[0].desc : true;
  if (keys.length === 1 && keys[0].field !== 'created_at') keys = [...keys, { field: 'created_at', desc: keys[0].desc }];
  const val = (a, f) => (f === 'credit_limit' ? a.credit_limit.amount : a[f]);
  return [...accounts].sort((x, y) => {
    for (const { field, desc } of keys) {
      const a = val(x, field), b = val(y, field);
      if (a === b) continue;
      if (a === null) return desc ? 1 : -1;
      if (b === null) return desc ? -1 : 1;
      const c = a < b ? -1 : 1;
      return desc ? -c : c;
    }
    const c = BigInt(x.id) < BigInt(y.id) ? -1 : 1;
    return idDesc ? -c : c;
  }).map((a) => a.id);
}

const SORTS = {
  // The default order is newest created first (ties by id, newest first too). Ids and created_at
  // usually agree, but not always: concurrent creates may take their id and their time in
  // different orders, so the expectation sorts on created_at as the server does.
  '': [{ field: 'created_at', desc: true }],
  name: [{ field: 'name', desc: false }],
  '-name': [{ field: 'name', desc: true }],
  city: [{ field: 'city', desc: false }],
  '-city': [{ field: 'city', desc: true }],
  industry: [{ field: 'industry', desc: false }],
  'credit_limit': [{ field: 'credit_limit', desc: false }],
  '-credit_limit': [{ field: 'credit_limit', desc: true }],
  'tier,-industry': [{ field: 'tier', desc: false }, { field: 'industry', desc: true }],
  '-key_account,city,credit_limit': [{ field: 'key_account', desc: true }, { field: 'city', desc: false }, { field: 'credit_limit', desc: false }],
  id: [],
};

test('sort: asc/desc on indexed fields, NULLs first ascending / last descending, ties broken by created_at (one field) and id', async () => {
  for (const [sort, keys] of Object.entries(SORTS)) {
    const page = await admin.list('accounts', { sort: sort || undefined, limit: 500 });
    let want = expectedOrder(keys);
    if (sort === 'id') want = [...want].reverse();
    assert.deepEqual(page.items.map((a) => a.id), want, `sort=${sort}`);
    assert.equal(page.next_cursor, null);
  }
});

test('paging: walking with a small limit returns every record once, in the one-big-page order', async () => {
  for (const sort of Object.keys(SORTS)) {
    const big = (await admin.list('accounts', { sort: sort || undefined, limit: 500 })).items.map((a) => a.id);
    for (const limit of [1, 7]) {
      const walked = [];
      let cursor;
      let pages = 0;
      do {
        const page = await admin.list('accounts', { sort: sort || undefined, limit, cursor });
        assert.ok(page.items.length <= limit);
        walked.push(...page.items.map((a) => a.id));
        cursor = page.next_cursor;
        pages++;
        assert.ok(pages <= N + 1, 'paging ends');
      } while (cursor);
      assert.equal(new Set(walked).size, walked.length, `no duplicates (sort=${sort}, limit=${limit})`);
      assert.deepEqual(walked, big, `same order (sort=${sort}, limit=${limit})`);
    }
  }
});

test('paging with a filter and a cursor keeps the filter', async () => {
  const filter = { field: 'tier', op: '!=', value: 'C' };
  const walked = await listAll(admin, 'accounts', { filter, sort: 'city', limit: 4 });
  assert.deepEqual(ids(walked), expectIds((a) => a.tier !== 'C'));
});

test('FailingList: bad cursor, bad sort, limit out of range, unknown parameter → 400 naming it', async () => {
  assertProblem(await admin.get('/api/v1/accounts?cursor=zz'), 400, 'bad_request', 'cursor');
  assertProblem(await admin.get('/api/v1/accounts?cursor=not-hex!'), 400, 'bad_request', 'cursor');
  assertProblem(await admin.get(`/api/v1/accounts?cursor=${Buffer.from('{"a":1}').toString('hex')}`), 400, 'bad_request', 'cursor');
  // A cursor from one sort does not fit another.
  const page = await admin.list('accounts', { sort: 'tier,-industry', limit: 2 });
  assertProblem(await admin.get(`/api/v1/accounts?${qs({ cursor: page.next_cursor })}`), 400, 'bad_request', 'cursor');
  assertProblem(await admin.get('/api/v1/accounts?sort=nickname'), 400, 'bad_request', 'sort');
  assertProblem(await admin.get('/api/v1/accounts?sort=website'), 400, 'bad_request', 'sort'); // not indexed
  assertProblem(await admin.get('/api/v1/accounts?sort=a,b,c,d,e'), 400, 'bad_request', 'sort');
  for (const limit of ['0', '501', '-1', 'abc', '1.5', '']) {
    assertProblem(await admin.get(`/api/v1/accounts?limit=${limit}`), 400, 'bad_request', 'limit');
  }
  assert.equal((await admin.list('accounts', { limit: 500 })).items.length, N);
  assert.equal((await admin.list('accounts', { limit: 1 })).items.length, 1);
  assert.equal((await admin.list('accounts')).items.length, N, 'default limit 50 covers 36');
  assertProblem(await admin.get('/api/v1/accounts?colour=red'), 400, 'bad_request', 'colour');
});

test('fields: selection returns the named fields plus id and version; unknown → 400', async () => {
  const page = await admin.list('accounts', { fields: 'name,city', limit: 3 });
  for (const item of page.items) assert.deepEqual(Object.keys(item).sort(), ['city', 'id', 'name', 'version']);
  const one = await admin.get(`/api/v1/accounts/${accounts[0].id}?fields=tier`);
  assert.equal(one.status, 200);
  assert.deepEqual(Object.keys(one.json).sort(), ['id', 'tier', 'version']);
  assertProblem(await admin.get('/api/v1/accounts?fields=name,nickname'), 400, 'unknown_field', 'fields');
});

test('q narrows a list to records whose searchable fields contain the text; combines with filter', async () => {
  assert.deepEqual(ids(await listAll(admin, 'accounts', { q: 'Trading' })), expectIds((a) => a.name.includes('Trading')));
  assert.deepEqual(ids(await listAll(admin, 'accounts', { q: '联合公司' })), expectIds((a) => a.name.includes('联合公司')));
  assert.deepEqual(ids(await listAll(admin, 'accounts', { q: 'Trading', filter: { field: 'tier', op: '=', value: 'B' } })),
    expectIds((a) => a.name.includes('Trading') && a.tier === 'B'));
  assert.deepEqual((await admin.list('accounts', { q: 'no such thing anywhere' })).items, []);
});

// A page of a caller who sees every account is kept whole until the next committed write and
// served again as it was (the page answer cache); any write retires it, so the page shows an
// update, a delete and a restore at once, never the page before (R-SAL-3: always current).
test('a list page asked again is the same page, and shows an update, a delete and a restore at once', async () => {
  const path = `/api/v1/accounts?${qs({ filter: { field: 'city', op: '=', value: '深圳' }, sort: '-created_at', limit: 50 })}`;
  const page = async () => {
    const r = await admin.get(path);
    assert.equal(r.status, 200, r.text);
    return r;
  };
  const first = await page();
  for (let i = 0; i < 3; i++) assert.equal((await page()).text, first.text, 'the same page again');
  const target = first.json.items[0];
  const names = (r) => r.json.items.map((x) => x.name);

  const renamed = await admin.patch(`/api/v1/accounts/${target.id}`, { name: `${target.name} renamed` });
  assert.equal(renamed.status, 200, renamed.text);
  for (let i = 0; i < 3; i++) {
    const r = await page();
    assert.ok(names(r).includes(`${target.name} renamed`), `update shown (ask ${i})`);
    assert.ok(!names(r).includes(target.name), `never the page before the update (ask ${i})`);
    assert.equal(r.json.items.find((x) => x.id === target.id).version, target.version + 1);
  }
  assert.equal((await admin.del(`/api/v1/accounts/${target.id}`)).status, 204);
  for (let i = 0; i < 3; i++) assert.ok(!(await page()).json.items.some((x) => x.id === target.id), `delete shown (ask ${i})`);
  assert.equal((await admin.post(`/api/v1/accounts/${target.id}/restore`)).status, 200);
  const back = await admin.patch(`/api/v1/accounts/${target.id}`, { name: target.name });
  assert.equal(back.status, 200, back.text);
  for (let i = 0; i < 3; i++) {
    const r = await page();
    assert.deepEqual(r.json.items.map((x) => x.id), first.json.items.map((x) => x.id), `restore shown (ask ${i})`);
    assert.equal(r.json.items[0].version, target.version + 4);
  }
});
