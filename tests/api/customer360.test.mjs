// Customer 360 and identity, part 1: caller lookup by phone in any written form (E.164 phone
// index), pinyin / initials / suffix-insensitive search, and the one-response customer 360 view
// — each checked through the real binary, with scopes and field hiding.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, assertProblem, qs } from './harness.mjs';

let srv;
let admin, n1, s1, mgr;
let accN, accS, zhang, wang, zhangSouth, li, tencent;
const BANK = '6222 0210 0123 4567';
const SWITCHBOARD = '+861062531234'; // 010-6253 1234 in E.164
const MOBILE = '+8613812345678';

before(async () => {
  srv = await startServer();
  [admin, n1, s1, mgr] = await srv.cast('admin', 'north1', 'south1', 'manager');
  accN = await n1.create('accounts', {
    name: '北京华为技术有限公司', phones: ['010-6253 1234'], key_account: true, account_manager_id: n1.user.id,
    relationship_level: 'proactive', credit_class: 'A',
  });
  const r = await admin.patch(`/api/v1/accounts/${accN.id}`, { bank_account: BANK });
  assert.equal(r.status, 200, r.text);
  zhang = await n1.create('contacts', {
    full_name: '张三', account_id: accN.id, phones: [{ value: '13812345678', label: 'mobile' }],
  });
  // Same switchboard as the account, written another way: one number, two matches.
  wang = await n1.create('contacts', {
    full_name: '王五', account_id: accN.id, phones: [{ value: '+86 10 62531234', label: 'office' }],
  });
  accS = await s1.create('accounts', { name: 'Acme Co., Ltd.', phones: ['+86 21 5555 0000'] });
  zhangSouth = await s1.create('contacts', {
    full_name: '张三丰', account_id: accS.id, phones: ['+86 138-1234-5678'],
  });
  li = await s1.create('contacts', { full_name: '李四', account_id: accS.id, phones: ['021 5555 0000'] });
  tencent = await admin.create('accounts', { name: '腾讯' });
});
after(async () => { await srv?.stop(); });

const lookup = (client, number) => client.get(`/api/v1/lookup/phone?${qs({ number })}`);
const matchIds = (r) => r.json.matches.map((m) => m.id).sort();

test('lookup: every written form of the switchboard finds the account and the contact behind it', async () => {
  for (const number of ['010-6253 1234', '+86 10 62531234', '01062531234', '(010) 6253-1234', SWITCHBOARD]) {
    const r = await lookup(n1, number);
    assert.equal(r.status, 200, `${number}: ${r.text}`);
    assert.equal(r.json.number, number, 'the number as given');
    assert.equal(r.json.e164, SWITCHBOARD, number);
    assert.deepEqual(matchIds(r), [accN.id, wang.id].sort(), number);
    const acc = r.json.matches.find((m) => m.entity === 'account');
    assert.equal(acc.title, '北京华为技术有限公司');
    assert.equal(acc.account_id, accN.id);
    assert.equal(acc.account_title, '北京华为技术有限公司');
    assert.equal(acc.relationship_level, 'proactive');
    assert.equal(acc.credit_class, 'A');
    const c = r.json.matches.find((m) => m.entity === 'contact');
    assert.equal(c.title, '王五');
    assert.equal(c.account_id, accN.id);
    assert.equal(c.account_title, '北京华为技术有限公司');
  }
});

test('lookup: a mobile in three written forms finds one contact with its account (1 match)', async () => {
  for (const number of ['13812345678', '+86 138 1234 5678', '138-1234-5678']) {
    const r = await lookup(n1, number);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.e164, MOBILE);
    assert.equal(r.json.matches.length, 1, `${number}: ${r.text}`);
    const [m] = r.json.matches;
    assert.deepEqual([m.entity, m.id, m.title, m.account_id, m.account_title],
      ['contact', zhang.id, '张三', accN.id, '北京华为技术有限公司']);
    assert.equal(typeof m.open_items, 'object');
  }
});

// The pop copies the account's members from its record text without re-parsing it: a name that
// needs escapes, a boolean and an unset enum arrive exactly as GET /accounts/{id} gives them,
// for the account itself and for a contact behind it.
test('lookup: the account members of a match are exactly the account as read (escapes, booleans, nulls)', async () => {
  const name = 'Quote "Q" \\ Back\\slash 北京 \u0001 {x}';
  const acc = await admin.create('accounts', {
    name, phones: ['0571-8765 4321'], key_account: false, credit_class: 'B',
  });
  await admin.create('contacts', { full_name: '赵六', account_id: acc.id, phones: ['0571 8765 4321'] });
  const read = (await admin.get(`/api/v1/accounts/${acc.id}`)).json;
  const r = await lookup(admin, '+8657187654321');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.matches.length, 2, r.text);
  for (const m of r.json.matches) {
    assert.equal(m.account_id, acc.id, m.entity);
    assert.equal(m.account_title, name, m.entity);
    assert.equal(m.account_title, read.name);
    assert.equal(m.key_account, false, m.entity);
    assert.equal(m.credit_class, 'B', m.entity);
    assert.equal(m.relationship_level, read.relationship_level ?? null, m.entity);
  }
});

test('lookup: an unknown number answers 200 with no matches', async () => {
  const r = await lookup(admin, '010-8888 9999');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.e164, '+861088889999');
  assert.deepEqual(r.json.matches, []);
});

test('lookup: open items count the communication records of the matched customer', async () => {
  await n1.create('interactions', { subject: '来电咨询', account_id: accN.id, contact_id: zhang.id, channel: 'phone', occurred_at: '2025-03-01T09:00:00Z', outcome: 'follow_up' });
  await n1.create('interactions', { subject: '回访', account_id: accN.id, channel: 'visit', occurred_at: '2025-03-02T09:00:00Z', outcome: 'positive' });
  const r = await lookup(n1, '13812345678');
  assert.deepEqual(r.json.matches[0].open_items, { interactions: 1, follow_up: 1 });
  const acc = (await lookup(n1, SWITCHBOARD)).json.matches.find((m) => m.entity === 'account');
  assert.deepEqual(acc.open_items, { interactions: 2, follow_up: 1 });
});

test('lookup scope: each Sales team sees only its own customers with a shared number; admin sees all', async () => {
  assert.deepEqual(matchIds(await lookup(n1, MOBILE)), [zhang.id]);
  assert.deepEqual(matchIds(await lookup(s1, MOBILE)), [zhangSouth.id]);
  assert.deepEqual(matchIds(await lookup(admin, MOBILE)), [zhang.id, zhangSouth.id].sort());
  assert.deepEqual(matchIds(await lookup(mgr, MOBILE)), [zhang.id, zhangSouth.id].sort());
  const south = await lookup(s1, '010-6253 1234');
  assert.equal(south.status, 200);
  assert.deepEqual(south.json.matches, [], 'another team\'s switchboard is not revealed');
  assert.deepEqual(matchIds(await lookup(s1, '+86 21 5555 0000')), [accS.id, li.id].sort());
});

test('lookup follows writes: a changed number moves, a deleted record drops out, a restored one comes back', async () => {
  const tmp = await n1.create('contacts', { full_name: '临时联系人', phones: ['0755-8888 7777'] });
  assert.deepEqual(matchIds(await lookup(n1, '+8675588887777')), [tmp.id]);
  let r = await n1.patch(`/api/v1/contacts/${tmp.id}`, { phones: ['0755 8888 6666'] });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual((await lookup(n1, '+8675588887777')).json.matches, [], 'old number gone');
  assert.deepEqual(matchIds(await lookup(n1, '075588886666')), [tmp.id], 'new number found');
  r = await n1.del(`/api/v1/contacts/${tmp.id}`);
  assert.equal(r.status, 204, r.text);
  assert.deepEqual((await lookup(n1, '075588886666')).json.matches, [], 'deleted record drops out');
  r = await n1.post(`/api/v1/contacts/${tmp.id}/restore`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(matchIds(await lookup(n1, '075588886666')), [tmp.id], 'restored record is back');
});

test('FailingLookup: a number that is not a phone number is 400 bad_request on field number', async () => {
  for (const number of ['abc', '12', '+', '1'.repeat(40)]) {
    assertProblem(await lookup(n1, number), 400, 'bad_request', 'number');
  }
  assertProblem(await n1.get('/api/v1/lookup/phone'), 400, 'bad_request', 'number');
  assertProblem(await n1.get('/api/v1/lookup/phone?number=%20'), 400, 'bad_request', 'number');
  assertProblem(await n1.get('/api/v1/lookup/phone?number=13812345678&x=1'), 400, 'bad_request', 'x');
  assertProblem(await srv.request('GET', '/api/v1/lookup/phone?number=13812345678'), 401, 'unauthenticated');
});

const searchIds = async (client, q, entity) => {
  const r = await client.get(`/api/v1/search?${qs({ q, entity })}`);
  assert.equal(r.status, 200, `search ${q}: ${r.text}`);
  return r.json.items.map((x) => x.id);
};

test('search: 张三 is found by full pinyin, by initials and by the characters', async () => {
  for (const q of ['zhangsan', 'zs', '张三', 'ZhangSan', 'ＺＳ']) {
    const ids = await searchIds(n1, q, 'contact');
    assert.ok(ids.includes(zhang.id), `${q} → ${JSON.stringify(ids)}`);
  }
  // The list filter q goes through the same folding.
  const list = await n1.list('contacts', { q: 'zhangsan' });
  assert.deepEqual(list.items.map((x) => x.id), [zhang.id]);
  assert.deepEqual(await searchIds(n1, 'lisi', 'contact'), [], 'another team\'s 李四 is not found');
  assert.deepEqual(await searchIds(s1, 'lisi', 'contact'), [li.id]);
});

test('search: company names match with or without legal suffixes, and by pinyin', async () => {
  for (const q of ['北京华为技术', '北京华为技术集团', '华为技术 Ltd', 'huawei', 'bjhwjs']) {
    assert.ok((await searchIds(admin, q, 'account')).includes(accN.id), q);
  }
  for (const q of ['Acme', 'ACME Inc.', 'acme gmbh', 'Acme Corp', 'ＡＣＭＥ']) {
    assert.ok((await searchIds(admin, q, 'account')).includes(accS.id), q);
  }
  for (const q of ['腾讯有限公司', '腾讯', 'tengxun']) {
    assert.ok((await searchIds(admin, q, 'account')).includes(tencent.id), q);
  }
});

test('search: a phone number in E.164 finds the record stored in another written form', async () => {
  assert.ok((await searchIds(n1, MOBILE, 'contact')).includes(zhang.id));
});

test('360: account, contacts, dated profile newest first and the timeline newest first in one response', async () => {
  await n1.create('account_profiles', { account_id: accN.id, recorded_on: '2024-06-30', attitude: 'neutral', internal_rating: '3', problems: '交付延迟' });
  await n1.create('account_profiles', { account_id: accN.id, recorded_on: '2025-01-15', attitude: 'favourable', internal_rating: '4', competitor_dealings: '同时采购中兴设备', potential: 'high' });
  await n1.create('interactions', {
    subject: '年度拜访', account_id: accN.id, channel: 'visit', occurred_at: '2025-04-01T02:00:00Z',
    cost: { amount: 150000, currency: 'CNY' }, discount_given: { amount: 20000, currency: 'CNY' },
    products_provided: '样机 2 台',
  });
  const r = await n1.get(`/api/v1/accounts/${accN.id}/360`);
  assert.equal(r.status, 200, r.text);
  const v = r.json;
  assert.equal(v.account.id, accN.id);
  assert.equal(v.account.name, '北京华为技术有限公司');
  assert.deepEqual(v.contacts.items.map((c) => c.full_name).sort(), ['张三', '王五']);
  assert.deepEqual(v.profile.items.map((p) => p.recorded_on), ['2025-01-15', '2024-06-30']);
  assert.equal(v.profile.items[0].internal_rating, '4');
  const times = v.timeline.items.map((i) => i.occurred_at);
  assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
  assert.equal(v.timeline.items.length, 3);
  const visit = v.timeline.items[0];
  assert.equal(visit.subject, '年度拜访');
  assert.deepEqual(visit.cost, { amount: 150000, currency: 'CNY' });
  assert.deepEqual(visit.discount_given, { amount: 20000, currency: 'CNY' });
  assert.equal(visit.products_provided, '样机 2 台');
});

test('360: ?channel= filters the timeline; limit pages it through the generic list', async () => {
  let r = await n1.get(`/api/v1/accounts/${accN.id}/360?channel=visit`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.timeline.items.map((i) => i.channel), ['visit', 'visit']);
  r = await n1.get(`/api/v1/accounts/${accN.id}/360?channel=phone`);
  assert.deepEqual(r.json.timeline.items.map((i) => i.subject), ['来电咨询']);
  r = await n1.get(`/api/v1/accounts/${accN.id}/360?channel=phone,visit&limit=1`);
  assert.equal(r.json.timeline.items.length, 1);
  assert.ok(r.json.timeline.next_cursor, 'more to page');
  const next = await n1.list('interactions', { ...r.json.timeline_query, cursor: r.json.timeline.next_cursor, limit: 10 });
  assert.equal(next.items.length, 2);
  assert.ok(next.items[0].occurred_at < r.json.timeline.items[0].occurred_at);
  r = await n1.get(`/api/v1/accounts/${accN.id}/360?channel=fax`);
  assert.deepEqual(r.json.timeline.items, []);
});

test('360: Sales sees the account without bank_account; a manager and admin see it', async () => {
  const sales = await n1.get(`/api/v1/accounts/${accN.id}/360`);
  assert.equal(sales.status, 200);
  assert.ok(!('bank_account' in sales.json.account), 'hidden field left out');
  assert.ok(!sales.text.includes(BANK), 'bank account appears nowhere in the response');
  for (const c of [mgr, admin]) {
    const r = await c.get(`/api/v1/accounts/${accN.id}/360`);
    assert.equal(r.json.account.bank_account, BANK);
  }
});

// The 360 is written as text from the sections' answers (no parse, no re-write): it must be byte
// for byte the generic endpoints' answers for the same caller — the account by id, and the three
// lists with the 360's filters, orders and page sizes — hidden fields left out the same way.
test('360: the answer is byte for byte the generic endpoints\' answers for the same caller (R-CUS-1…3)', async () => {
  for (const [client, q] of [[n1, ''], [admin, ''], [n1, '?channel=phone,visit&limit=1'], [mgr, '?limit=2']]) {
    const r = await client.get(`/api/v1/accounts/${accN.id}/360${q}`);
    assert.equal(r.status, 200, r.text);
    const { filter, sort } = r.json.timeline_query;
    const own = JSON.stringify({ field: 'account_id', op: '=', value: accN.id });
    const limit = new URLSearchParams(q).get('limit') ?? '50';
    const parts = await Promise.all([
      client.get(`/api/v1/accounts/${accN.id}`),
      client.get(`/api/v1/contacts?${qs({ filter: own, sort: 'full_name', limit: 50 })}`),
      client.get(`/api/v1/account_profiles?${qs({ filter: own, sort: '-recorded_on', limit: 100 })}`),
      client.get(`/api/v1/interactions?${qs({ filter, sort, limit })}`),
    ]);
    for (const p of parts) assert.equal(p.status, 200, p.text);
    const [acc, contacts, profile, timeline] = parts;
    assert.deepEqual(r.json, {
      account: acc.json, contacts: contacts.json, profile: profile.json, timeline: timeline.json,
      timeline_query: { filter, sort },
    });
    assert.equal(r.text, `{"account":${acc.text},"contacts":${contacts.text},"profile":${profile.text},` +
      `"timeline":${timeline.text},"timeline_query":${JSON.stringify({ filter, sort })}}`, q);
  }
});

// R-CUS-1: the 360 lists an account's first 50 contacts by name (the page the view shows; up to
// 500 before session 15, when such a 360 read up to a page of the file per contact); the rest
// page on through the generic list with the same filter and sort. An account with at most 50
// gets exactly the answer it got before (the list of all its contacts, next_cursor null).
test('360: an account with more than 50 contacts gets the first 50 by name and a cursor to page on', async () => {
  const own = (acc) => JSON.stringify({ field: 'account_id', op: '=', value: acc.id });
  const fifty = await n1.create('accounts', { name: '五十联系人有限公司' });
  const many = await n1.create('accounts', { name: '五十一联系人有限公司' });
  for (let i = 1; i <= 51; i++) {
    const name = `联系人 ${String(i).padStart(2, '0')}`;
    if (i <= 50) await n1.create('contacts', { full_name: name, account_id: fifty.id });
    await n1.create('contacts', { full_name: name, account_id: many.id });
  }
  // 50: all of them, no cursor — byte for byte the list of all its contacts (the old 500 page).
  let r = await n1.get(`/api/v1/accounts/${fifty.id}/360`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.contacts.items.length, 50);
  assert.equal(r.json.contacts.next_cursor, null);
  const all50 = await n1.get(`/api/v1/contacts?${qs({ filter: own(fifty), sort: 'full_name', limit: 500 })}`);
  assert.ok(r.text.includes(`"contacts":${all50.text},"profile":`), 'same contacts text as the whole list');
  // 51: the first 50 by name and a cursor; the generic list with it gives the 51st.
  r = await n1.get(`/api/v1/accounts/${many.id}/360`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.contacts.items.length, 50);
  assert.equal(r.json.contacts.items[0].full_name, '联系人 01');
  assert.equal(r.json.contacts.items[49].full_name, '联系人 50');
  assert.ok(r.json.contacts.next_cursor, 'a cursor to the rest');
  const rest = await n1.list('contacts', {
    filter: own(many), sort: 'full_name', cursor: r.json.contacts.next_cursor, limit: 50,
  });
  assert.deepEqual(rest.items.map((c) => c.full_name), ['联系人 51']);
  assert.equal(rest.next_cursor ?? null, null);
});

// Sections are copied from the record text cache at the versions just read: a write to any of
// them (update, delete) shows in the next 360, never the text cached before it.
test('360: an updated or deleted contact, profile entry or communication record is never served stale', async () => {
  const extra = await n1.create('contacts', { full_name: '赵六', account_id: accN.id, title: '采购' });
  const call = await n1.create('interactions', {
    subject: '回访', account_id: accN.id, channel: 'phone', occurred_at: '2025-05-01T02:00:00Z',
  });
  const url = `/api/v1/accounts/${accN.id}/360`;
  for (let i = 0; i < 2; i++) { // the second answer from the cache
    const v = (await n1.get(url)).json;
    assert.equal(v.contacts.items.find((c) => c.id === extra.id).title, '采购');
    assert.equal(v.timeline.items[0].subject, '回访');
  }
  const profile = (await n1.get(url)).json.profile.items[0];
  let r = await n1.patch(`/api/v1/contacts/${extra.id}`, { title: '总经理' });
  assert.equal(r.status, 200, r.text);
  r = await n1.patch(`/api/v1/interactions/${call.id}`, { subject: '回访（已完成）', outcome: 'follow_up' });
  assert.equal(r.status, 200, r.text);
  r = await n1.patch(`/api/v1/account_profiles/${profile.id}`, { potential: 'low' });
  assert.equal(r.status, 200, r.text);
  r = await n1.patch(`/api/v1/accounts/${accN.id}`, { credit_class: 'B' });
  assert.equal(r.status, 200, r.text);
  let v = (await n1.get(url)).json;
  assert.equal(v.account.credit_class, 'B');
  const c = v.contacts.items.find((x) => x.id === extra.id);
  assert.deepEqual([c.title, c.version], ['总经理', extra.version + 1]);
  assert.deepEqual([v.timeline.items[0].id, v.timeline.items[0].subject, v.timeline.items[0].outcome],
    [call.id, '回访（已完成）', 'follow_up']);
  assert.equal(v.profile.items[0].potential, 'low');
  assert.equal((await n1.del(`/api/v1/contacts/${extra.id}`)).status, 204);
  assert.equal((await n1.del(`/api/v1/interactions/${call.id}`)).status, 204);
  v = (await n1.get(url)).json;
  assert.ok(!v.contacts.items.some((x) => x.id === extra.id), 'deleted contact left out');
  assert.ok(!v.timeline.items.some((x) => x.id === call.id), 'deleted record left out');
  assert.deepEqual(v.contacts.items.map((x) => x.full_name).sort(), ['张三', '王五']);
  r = await n1.patch(`/api/v1/accounts/${accN.id}`, { credit_class: 'A' });
  assert.equal(r.status, 200, r.text);
});

test('FailingCustomer360: out of scope 403, unknown or deleted 404, bad parameters 400', async () => {
  assertProblem(await s1.get(`/api/v1/accounts/${accN.id}/360`), 403, 'forbidden');
  assertProblem(await n1.get('/api/v1/accounts/12345/360'), 404, 'not_found');
  assertProblem(await n1.get('/api/v1/accounts/abc/360'), 404, 'not_found');
  assertProblem(await n1.get(`/api/v1/accounts/${accN.id}/360?channel=telegram`), 400, 'bad_request', 'channel');
  assertProblem(await n1.get(`/api/v1/accounts/${accN.id}/360?limit=0`), 400, 'bad_request', 'limit');
  assertProblem(await n1.get(`/api/v1/accounts/${accN.id}/360?sort=name`), 400, 'bad_request', 'sort');
  const gone = await n1.create('accounts', { name: 'To be deleted' });
  assert.equal((await n1.del(`/api/v1/accounts/${gone.id}`)).status, 204);
  assertProblem(await n1.get(`/api/v1/accounts/${gone.id}/360`), 404, 'not_found');
});

const pgOnly = process.env.RAPPORT_TEST_PG_URL ? 'SQLite only: edits the database file' : false;

test('a database without the phone index and pinyin bodies gets them rebuilt at start-up', { skip: pgOnly }, async (t) => {
  try { execFileSync('sqlite3', ['-version']); } catch { t.skip('sqlite3 command not installed'); return; }
  await srv.stop();
  const dataDir = srv.dataDir;
  // What a database from before this feature looks like: empty index, no version rows, plain bodies.
  execFileSync('sqlite3', [join(dataDir, 'rapport.db'),
    "DELETE FROM phone_index; DELETE FROM derived_index; DELETE FROM contact_terms; " +
    "DELETE FROM contact_terms_of; CREATE VIRTUAL TABLE contact_fts USING fts5(body, tokenize='trigram');"]);
  srv = await startServer({ dataDir });
  const north = srv.client({ token: n1.token });
  assert.deepEqual(matchIds(await lookup(north, '13812345678')), [zhang.id]);
  assert.ok((await searchIds(north, 'zhangsan', 'contact')).includes(zhang.id));
  assert.ok((await searchIds(north, 'zs', 'contact')).includes(zhang.id));
  const left = execFileSync('sqlite3', [join(dataDir, 'rapport.db'),
    "SELECT count(*) FROM sqlite_master WHERE name = 'contact_fts'"]).toString().trim();
  assert.equal(left, '0', 'the trigram table of the earlier version is dropped');
});
