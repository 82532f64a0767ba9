// Full-text search: word prefixes (one and two characters too), pinyin full and initials,
// Chinese substrings (1, 2 and 3+ characters), legal suffixes, phone digits, edits, deletions,
// merges and record scope.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem } from './harness.mjs';

let srv;
let admin;
let north; // Sales, team North
let south; // Sales, team South
const rec = {};

before(async () => {
  srv = await startServer();
  [admin, north, south] = await srv.cast('admin', 'north1', 'south1');
  rec.wudang = await north.create('accounts', { name: '张三丰武术学校', city: '十堰' });
  rec.acme = await north.create('accounts', { name: 'Acme Widgets International', phones: ['+86 138-1234-5678'] });
  rec.southOnly = await south.create('accounts', { name: '张三丰南方分校 Southern Branch' });
  const r = await admin.patch(`/api/v1/accounts/${rec.southOnly.id}`, { bank_account: '6222 0000 1111' });
  assert.equal(r.status, 200, r.text);
  rec.contact = await north.create('contacts', { full_name: '李小龙', account_id: rec.acme.id, emails: ['bruce@acme.example'] });
  rec.note = await north.create('interactions', {
    subject: 'Quarterly review', occurred_at: '2024-03-01T09:00:00Z', channel: 'visit', summary: '讨论了明年的采购计划和折扣',
  });
});
after(async () => { await srv?.stop(); });

async function search(client, q, extra = '') {
  const r = await client.get(`/api/v1/search?q=${encodeURIComponent(q)}${extra}`);
  assert.equal(r.status, 200, `search ${q}: ${r.status} ${r.text}`);
  return r.json.items;
}
const hit = (items, id) => items.some((i) => i.id === id);

test('search finds Chinese substrings of 3+ characters and returns entity, id, title', async () => {
  const items = await search(admin, '三丰武');
  const w = items.find((i) => i.id === rec.wudang.id);
  assert.ok(w, JSON.stringify(items));
  assert.equal(w.entity, 'account');
  assert.equal(w.title, '张三丰武术学校');
  assert.ok(hit(await search(admin, '采购计划'), rec.note.id), 'long_text summary of an interaction');
});

test('search finds 2-character Chinese substrings (张三 within 张三丰)', async () => {
  const items = await search(admin, '张三');
  assert.ok(hit(items, rec.wudang.id), JSON.stringify(items));
  assert.ok(hit(items, rec.southOnly.id));
  assert.ok(hit(await search(admin, '小龙'), rec.contact.id));
  assert.ok(hit(await search(admin, '武术'), rec.wudang.id));
});

test('search is case-insensitive for English word prefixes and finds e-mail parts', async () => {
  for (const q of ['acme', 'ACME', 'Widgets INTERNATIONAL', 'widg', 'wi inter']) {
    assert.ok(hit(await search(admin, q), rec.acme.id), q);
  }
  // Prefixes of words, not text inside a word.
  assert.ok(!hit(await search(admin, 'idget'), rec.acme.id), 'idget');
  assert.ok(hit(await search(admin, 'bruce@acme'), rec.contact.id));
  assert.ok(hit(await search(admin, 'quarterly'), rec.note.id));
});

test('search finds phone numbers by digits, whatever the punctuation', async () => {
  for (const q of ['13812345678', '138-1234-5678', '1234']) {
    assert.ok(hit(await search(admin, q), rec.acme.id), q);
  }
});

// R-SEARCH (session 13): a number is found by its start or by its end (its last 4 or 8 digits,
// a landline's local number without the area code), also beside a name, but not by a fragment
// from its middle; a record both of whose forms match is listed once.
test('search finds a number by its start or its end, not by its middle', async () => {
  const mobile = await admin.create('accounts', { name: '张三 Numerics', phones: ['13912348765'] });
  const land = await admin.create('accounts', { name: 'Landline Numerics', phones: ['021-6234-9753'] });
  const both = await admin.create('accounts', { name: 'Palin 42942 Numerics' });
  const found = async (q, id) => hit(await search(admin, q, '&entity=account&limit=100'), id);
  for (const q of ['139', '1391234', '13912348765', '8765', '12348765', '+86 13912348765', '张三 8765']) {
    assert.ok(await found(q, mobile.id), q);
  }
  for (const q of ['1234', '2348', '912348', '张三 1234']) assert.ok(!(await found(q, mobile.id)), `middle ${q}`);
  for (const q of ['62349753', '9753', '021', 'landline 62349753']) assert.ok(await found(q, land.id), q);
  assert.ok(await found('6234', land.id), 'a group of the number as written is a word of its own');
  assert.ok(!(await found('162349', land.id)), 'middle of the digits');
  const twice = (await search(admin, '42', '&entity=account&limit=100')).filter((i) => i.id === both.id);
  assert.equal(twice.length, 1, 'starts and ends with 42: listed once');
  assert.ok(await found('942', both.id));
  assert.ok(!(await found('294', both.id)));
  // A number typed in groups is its digits joined: found by its start or end however it is
  // broken up, on a phone list and in a text field (a name here) written in groups.
  for (const q of ['139 1234 8765', '139-1234-8765', '+86 139 1234 8765', '1234 8765', '139 1234']) {
    assert.ok(await found(q, mobile.id), `grouped ${q}`);
  }
  for (const q of ['(021) 6234 9753', '021-6234-9753', '6234 9753']) assert.ok(await found(q, land.id), `grouped ${q}`);
  const hotline = await admin.create('accounts', { name: 'Hotline 400 820 8820 Numerics' });
  for (const q of ['400 820', '400-820-8820', '820 8820', '4008208820', '8820', '400']) {
    assert.ok(await found(q, hotline.id), `grouped in a name ${q}`);
  }
  assert.ok(!(await found('1234 5678', mobile.id)), 'grouped, neither start nor end');
});

test('search narrows by entity and limit; empty and missing q → 400', async () => {
  const items = await search(admin, '张三', '&entity=contact');
  assert.deepEqual(items, []);
  assert.equal((await search(admin, '张三', '&limit=1')).length, 1);
  assertProblem(await admin.get('/api/v1/search?q='), 400, 'bad_request', 'q');
  assertProblem(await admin.get('/api/v1/search'), 400, 'bad_request', 'q');
  assertProblem(await admin.get('/api/v1/search?q=abc&limit=0'), 400, 'bad_request', 'limit');
  assertProblem(await admin.get('/api/v1/search?q=abc&entity=widget'), 400, 'bad_request', 'entity');
  assertProblem(await admin.get(`/api/v1/search?q=${'x'.repeat(300)}`), 400, 'bad_request', 'q');
  // FTS syntax in the query is text, not an error.
  for (const q of ['"', 'a OR b', 'NEAR(x y)', '*', 'col:val', "'; --"]) {
    const r = await admin.get(`/api/v1/search?q=${encodeURIComponent(q)}`);
    assert.equal(r.status, 200, `${q}: ${r.status} ${r.text}`);
  }
});

test('search follows updates and deletes', async () => {
  const a = await admin.create('accounts', { name: 'Ephemeral Zebra Holdings' });
  assert.ok(hit(await search(admin, 'zebra'), a.id));
  await admin.patch(`/api/v1/accounts/${a.id}`, { name: 'Ephemeral Giraffe Holdings' });
  assert.ok(!hit(await search(admin, 'zebra'), a.id), 'old name no longer found');
  assert.ok(hit(await search(admin, 'giraffe'), a.id));
  await admin.del(`/api/v1/accounts/${a.id}`);
  assert.ok(!hit(await search(admin, 'giraffe'), a.id), 'deleted records are not found');
  await admin.post(`/api/v1/accounts/${a.id}/restore`);
  assert.ok(hit(await search(admin, 'giraffe'), a.id), 'restored records are found again');
});

test('search respects scope: a Sales user does not find another team\'s account', async () => {
  const n = await search(north, '张三');
  assert.ok(hit(n, rec.wudang.id));
  assert.ok(!hit(n, rec.southOnly.id), 'North does not see the South account');
  const s = await search(south, '张三丰');
  assert.ok(hit(s, rec.southOnly.id));
  assert.ok(!hit(s, rec.wudang.id));
  assert.deepEqual(await search(south, 'acme'), []);
  assert.deepEqual(await search(south, '13812345678'), []);
  // Hidden fields are not searchable either (bank_account is not a searchable field at all).
  assert.deepEqual(await search(north, '6222 0000'), []);
  // The same goes for q on lists.
  const r = await north.get(`/api/v1/accounts?q=${encodeURIComponent('张三丰')}`);
  assert.deepEqual(r.json.items.map((i) => i.id), [rec.wudang.id]);
});

test('one- and two-character prefixes find records, the exact word first', async () => {
  const exact = await admin.create('accounts', { name: 'Qu Trading' });
  const longer = await admin.create('accounts', { name: 'Quxian Machinery' });
  const other = await admin.create('accounts', { name: 'Quokka Foods' });
  for (const q of ['q', 'Q', 'qu']) {
    const items = await search(admin, q, '&entity=account');
    for (const r of [exact, longer, other]) assert.ok(hit(items, r.id), `${q} finds ${r.id}`);
  }
  const items = await search(admin, 'qu', '&entity=account');
  assert.equal(items[0].id, exact.id, 'the record whose word is exactly "qu" comes first');
  assert.ok(hit(await search(admin, 'quo'), other.id));
  assert.ok(!hit(await search(admin, 'quo'), longer.id));
  // A one-character Chinese query finds the character anywhere in a name.
  assert.ok(hit(await search(admin, '丰'), rec.wudang.id));
  assert.ok(hit(await search(admin, '校'), rec.wudang.id));
});

test('pinyin full spelling, its prefixes and initials find Chinese names', async () => {
  const p = await admin.create('contacts', { full_name: '张三', account_id: rec.acme.id });
  for (const q of ['zhangsan', 'zhang', 'zh', 'z', 'zs', 'ZS', '张三', '张', '三']) {
    assert.ok(hit(await search(admin, q, '&entity=contact&limit=100'), p.id), q);
  }
  assert.ok(hit(await search(admin, 'zhangsanfeng'), rec.wudang.id), 'pinyin of a company name');
  assert.ok(hit(await search(admin, 'zsf'), rec.wudang.id), 'initials of a company name');
  assert.ok(hit(await search(admin, 'wushu'), rec.wudang.id), 'pinyin of a later part of a name');
  assert.ok(hit(await search(admin, 'sanfeng'), rec.wudang.id));
  assert.ok(!hit(await search(admin, 'lisi', '&entity=contact'), p.id));
});

test('company names match with or without their legal suffix', async () => {
  const hw = await admin.create('accounts', { name: '华为技术有限公司' });
  const ac = await admin.create('accounts', { name: 'Initrode Co., Ltd.' });
  for (const q of ['华为技术有限公司', '华为技术', '华为', '华为 有限公司', 'huaweijishu', 'huawei', 'hwjs']) {
    assert.ok(hit(await search(admin, q), hw.id), q);
  }
  for (const q of ['initrode', 'Initrode Ltd', 'INITRODE GmbH', 'initrode co., ltd.', 'init']) {
    assert.ok(hit(await search(admin, q), ac.id), q);
  }
  const r = await admin.get(`/api/v1/accounts?q=${encodeURIComponent('华为技术有限公司')}`);
  assert.deepEqual(r.json.items.map((i) => i.id), [hw.id], 'q on lists too');
});

test('an edited record is no longer found by its old words, in any script', async () => {
  const a = await admin.create('accounts', { name: '李四贸易 Lisi Trading' });
  for (const q of ['李四', 'lisi', 'ls', 'trad']) assert.ok(hit(await search(admin, q), a.id), q);
  await admin.patch(`/api/v1/accounts/${a.id}`, { name: '王五物流' });
  for (const q of ['李四', 'lisi', 'trad']) assert.ok(!hit(await search(admin, q), a.id), `old ${q}`);
  for (const q of ['王五', 'wangwu', 'ww', '物流']) assert.ok(hit(await search(admin, q), a.id), q);
});

test('a merged-away record leaves search; the survivor is found', async () => {
  const a = await admin.create('accounts', { name: 'Mergeable Pumps Ltd' });
  const b = await admin.create('accounts', { name: 'Mergeable Pumps Limited' });
  let items = await search(admin, 'mergeable');
  assert.ok(hit(items, a.id) && hit(items, b.id));
  const r = await admin.post(`/api/v1/accounts/${a.id}/merge`, { others: [b.id] });
  assert.equal(r.status, 200, r.text);
  items = await search(admin, 'mergeable');
  assert.ok(hit(items, a.id));
  assert.ok(!hit(items, b.id), 'the merged record is gone from search');
});

test('scope applies to one-character prefixes: many hidden hits do not crowd out a visible one', async () => {
  // South owns many "kx…" accounts; North's single one is still found by North, and North
  // never sees South's.
  const mine = await north.create('accounts', { name: 'Kxz North Only' });
  await Promise.all(Array.from({ length: 40 }, (_, i) => south.create('accounts', { name: `Kxa South ${i}` })));
  const n = await search(north, 'kx');
  assert.deepEqual(n.map((i) => i.id), [mine.id]);
  const s = await search(south, 'k', '&entity=account&limit=100');
  assert.ok(!hit(s, mine.id));
  assert.ok(s.length >= 40);
});

test('one character whose UTF-8 ends in byte BF (长, 广, 西) finds records, in lists too', async () => {
  // The prefix range's upper bound was once that byte plus one, not UTF-8: PostgreSQL answered 422.
  const made = await admin.create('accounts', { name: '长沙广西贸易公司' });
  for (const q of ['长', '广', '西', '长沙']) {
    assert.ok(hit(await search(admin, q), made.id), `search ${q}`);
    const list = await admin.get(`/api/v1/accounts?q=${encodeURIComponent(q)}`);
    assert.equal(list.status, 200, list.text);
    assert.ok(list.json.items.some((i) => i.id === made.id), `list q=${q}`);
  }
});

test('a narrow scope still gets `limit` results when many hidden matches come first in the index', async () => {
  // North's three "Jqv…" accounts are the oldest; South's 60 newer ones come first in the
  // index (newest first), more than a first page: North still gets all three, in order.
  const mine = [];
  for (const name of ['Jqva North', 'Jqvb North', 'Jqvc North']) mine.push(await north.create('accounts', { name }));
  await Promise.all(Array.from({ length: 60 }, (_, i) => south.create('accounts', { name: `Jqv South ${i}` })));
  const n = await search(north, 'j', '&entity=account&limit=3');
  assert.deepEqual(n.map((i) => i.id), mine.map((m) => m.id), 'word order: jqva, jqvb, jqvc');
  const two = await search(north, 'jq', '&entity=account&limit=2');
  assert.deepEqual(two.map((i) => i.id), mine.slice(0, 2).map((m) => m.id));
  const s = await search(south, 'jqv', '&entity=account&limit=100');
  assert.equal(s.length, 60);
  assert.ok(!s.some((i) => mine.some((m) => m.id === i.id)));
  assert.equal((await search(south, 'jqv', '&entity=account&limit=7')).length, 7);
});

test('the same word: newest first; exact word before longer words', async () => {
  const older = await admin.create('accounts', { name: 'Vexo Older' });
  const newer = await admin.create('accounts', { name: 'Vexo Newer' });
  const longer = await admin.create('accounts', { name: 'Vexolith Newest' });
  const items = await search(admin, 'vex', '&entity=account');
  assert.deepEqual(items.map((i) => i.id), [newer.id, older.id, longer.id]);
});

test('a caller who may not see the title field gets the first searchable field they may see with a value as title', async () => {
  const sales = (await admin.list('roles')).items.find((r) => r.name === 'Sales');
  const perms = structuredClone(sales.permissions);
  perms.entities.contact = { ...perms.entities.contact, read: 'all' };
  perms.fields = { ...(perms.fields || {}), 'contact.full_name': 'hidden', 'contact.phones': 'hidden' };
  const role = await admin.post('/api/v1/roles', { name: 'Masked', permissions: perms });
  assert.equal(role.status, 201, role.text);
  const masked = await srv.userClient('masked1', { role: 'Masked' });
  const c = await admin.create('contacts', {
    full_name: 'Quillon Secretname', phones: ['+86 139-0000-1111'], emails: ['quillon@masked.example'],
  });
  const bare = await admin.create('contacts', { full_name: 'Quillon Bare', phones: ['+86 139-0000-2222'] });
  const items = await search(masked, 'quillon', '&entity=contact');
  const item = items.find((i) => i.id === c.id);
  assert.equal(item.title, 'quillon@masked.example', 'e-mails: the first searchable field Masked may see');
  // (ids left out: a numeric id may well contain "139")
  const shown = JSON.stringify(items.map(({ id, ...rest }) => rest));
  assert.ok(!shown.includes('Secretname') && !shown.includes('139'), 'neither the hidden name nor the hidden phones');
  // Bare has nothing Masked may see that says "quillon": it is not found (before search
  // matched hidden fields too, it was listed with a null title).
  assert.ok(!hit(items, bare.id), 'found only through its hidden name');
  // Whoever may see the name still gets it.
  assert.equal((await search(admin, 'quillon', '&entity=contact')).find((i) => i.id === c.id).title, 'Quillon Secretname');
  // Masked finds nobody by what it may not see: not by the hidden name, nor by the hidden
  // phone's digits; by the e-mail it may see, yes. The administrator finds both ways.
  assert.ok(!hit(await search(masked, 'secretname', '&entity=contact'), c.id), 'hidden name');
  assert.ok(!hit(await search(masked, 'quillon s', '&entity=contact'), c.id), 'hidden name, two words');
  assert.ok(!hit(await search(masked, '13900001111', '&entity=contact'), c.id), 'hidden phone');
  assert.ok(!hit(await search(masked, '1111'), c.id), 'hidden phone digits, every entity');
  assert.ok(hit(await search(masked, 'quillon@masked'), c.id), 'visible e-mail');
  for (const q of ['secretname', '13900001111']) assert.ok(hit(await search(admin, q, '&entity=contact'), c.id), q);
});

test('a list with q does not match fields the caller may not see, and its pages fill past such rows', async () => {
  const sales = (await admin.list('roles')).items.find((r) => r.name === 'Sales');
  const perms = structuredClone(sales.permissions);
  perms.entities.contact = { ...perms.entities.contact, read: 'all' };
  perms.fields = { ...(perms.fields || {}), 'contact.full_name': 'hidden' };
  const role = await admin.post('/api/v1/roles', { name: 'MaskedList', permissions: perms });
  assert.equal(role.status, 201, role.text);
  const masked = await srv.userClient('maskedlist1', { role: 'MaskedList' });
  // Oldest first: three contacts Masked may find by their e-mail, then five newer ones found
  // only through the hidden name — a newest-first list meets those first.
  const visible = [];
  for (let i = 0; i < 3; i++) visible.push((await admin.create('contacts', { full_name: `Plain ${i}`, emails: [`vorzex${i}@seen.example`] })).id);
  const hidden = [];
  for (let i = 0; i < 5; i++) hidden.push((await admin.create('contacts', { full_name: `Vorzex Hidden ${i}` })).id);
  const all = async (client, limit) => {
    const ids = [];
    let cursor;
    for (let pages = 0; pages < 20; pages++) {
      const page = await client.list('contacts', { q: 'vorzex', limit, ...(cursor ? { cursor } : {}) });
      assert.ok(page.items.length <= limit);
      ids.push(...page.items.map((i) => i.id));
      if (!page.next_cursor) return { ids, pages: pages + 1 };
      cursor = page.next_cursor;
    }
    assert.fail('more than 20 pages');
  };
  const first = await masked.list('contacts', { q: 'vorzex', limit: 2 });
  assert.deepEqual(first.items.map((i) => i.id), [visible[2], visible[1]], 'the page is filled past the hidden-only matches');
  assert.ok(first.next_cursor, 'one more visible match follows');
  const got = await all(masked, 2);
  assert.deepEqual(got.ids, [visible[2], visible[1], visible[0]], 'every visible match once, no hidden-only one');
  assert.deepEqual((await all(masked, 50)).ids, [visible[2], visible[1], visible[0]]);
  // Whoever may see the name finds all eight, newest first.
  assert.deepEqual((await all(admin, 3)).ids, [...hidden].reverse().concat([...visible].reverse()));
});

test('a caller who sees few records searches just those: own, team and all scopes; nothing hidden leaks', async () => {
  const sales = (await admin.list('roles')).items.find((r) => r.name === 'Sales');
  const perms = structuredClone(sales.permissions);
  perms.entities.account = { ...perms.entities.account, read: 'own' };
  const role = await admin.post('/api/v1/roles', { name: 'OwnAccounts', permissions: perms });
  assert.equal(role.status, 201, role.text);
  const own = await srv.userClient('own1', { role: 'OwnAccounts', team: 'North' });
  const lone = await srv.userClient('lone1', { role: 'Sales', team: 'Nobody' });
  const mine = await own.create('accounts', { name: 'Wuxal Own Account' });
  const mate = await north.create('accounts', { name: 'Wuxal North Account' });
  const theirs = await south.create('accounts', { name: 'Wuxal South Account' });
  const ids = (items) => items.map((i) => i.id);
  // own: only the caller's record, by a word prefix, one letter and several words
  assert.deepEqual(ids(await search(own, 'wux', '&entity=account')), [mine.id]);
  assert.ok(!hit(await search(own, 'w', '&entity=account&limit=100'), mate.id));
  assert.deepEqual(ids(await search(own, 'wuxal ow', '&entity=account')), [mine.id]);
  // (no term match; on PostgreSQL "did you mean" may then list similar titles the caller sees)
  assert.ok(!hit(await search(own, 'wuxal north', '&entity=account'), mate.id));
  // team: the team's records (own1 is in North), newest first; never South's
  assert.deepEqual(ids(await search(north, 'wux', '&entity=account')), [mate.id, mine.id]);
  assert.ok(!hit(await search(north, 'wuxal s'), theirs.id));
  // a Sales user whose team owns nothing and who owns nothing finds nothing
  assert.deepEqual(await search(lone, 'wux'), []);
  assert.deepEqual(await search(lone, 'w', '&limit=100'), []);
  // all: everything
  assert.deepEqual(new Set(ids(await search(admin, 'wux', '&entity=account'))), new Set([theirs.id, mate.id, mine.id]));
  // a deleted record leaves its owner's search
  assert.equal((await own.del(`/api/v1/accounts/${mine.id}`)).status, 204);
  assert.deepEqual(await search(own, 'wux', '&entity=account'), []);
});
