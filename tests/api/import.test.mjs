// Import and export (issue 4): CSV dry run and commit, upsert with audit channel "import",
// column mapping and templates, bad encodings, invalid rows skipped while valid rows land, the
// downloadable report, vCard 4 round trip, .xlsx export, field permissions on export.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, assertProblem, listAll, qs, tempDir } from './harness.mjs';

let srv;
let admin, sales, sales2;
const BANK = '6222 0210 0123 4567';

before(async () => {
  srv = await startServer();
  [admin, sales, sales2] = await Promise.all([
    srv.userClient('admin', { role: 'Administrator' }),
    srv.userClient('seller', { role: 'Sales', team: 'North' }),
    srv.userClient('seller2', { role: 'Sales', team: 'South' }),
  ]);
});
after(async () => { await srv?.stop(); });

function importCsv(client, plural, body, params = {}, contentType = 'text/csv') {
  return client.post(`/api/v1/${plural}/import?${qs(params)}`, body, { headers: { 'content-type': contentType } });
}

async function accountsWhere(filter) {
  return listAll(admin, 'accounts', { filter });
}

test('dry run reports what would happen and writes nothing', async () => {
  const before = (await listAll(admin, 'accounts')).length;
  const csv = 'name,city,customer_code\r\nDry One,北京,DRY-1\r\nDry Two,上海,DRY-2\r\n,广州,DRY-3\r\n';
  const r = await importCsv(admin, 'accounts', csv, { mode: 'dry_run' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.mode, 'dry_run');
  assert.equal(r.json.rows, 3);
  assert.equal(r.json.valid, 2);
  assert.equal(r.json.would_create, 2);
  assert.equal(r.json.would_update, 0);
  assert.deepEqual(r.json.skipped_rows, [4]);
  assert.equal(r.json.errors.length, 1);
  assert.equal(r.json.errors[0].row, 4, 'rows are numbered as in the file, the header is row 1');
  assert.equal(r.json.errors[0].field, 'name');
  assert.equal(r.json.errors[0].code, 'validation_failed');
  assert.equal((await listAll(admin, 'accounts')).length, before, 'nothing written');
  assert.equal((await accountsWhere({ field: 'customer_code', op: 'starts_with', value: 'DRY' })).length, 0);
  // the run itself is logged
  const run = await admin.get(`/api/v1/import_runs/${r.json.import_id}`);
  assert.equal(run.status, 200, run.text);
  assert.equal(run.json.mode, 'dry_run');
  assert.equal(run.json.status, 'completed');
});

test('commit: BOM, `;` delimiter, Chinese labels as headers, values converted per field type', async () => {
  const csv = '\ufeff名称;城市;客户编码;信用额度;重点客户;大客户经理;标签;电话;员工人数;类别\r\n' +
    `北京华为技术有限公司;北京;HW-001;"1,234.50 CNY";是;${admin.user.id};VIP;"010-6253 1234; 13812345678";1,200;企业\r\n` +
    'Acme Ltd;Shanghai;AC-001;¥99;否;;vip；online;+86 21 1234 5678;15;individual\r\n';
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 2, r.text);
  assert.equal(r.json.skipped, 0, r.text);
  assert.deepEqual(r.json.errors, []);
  assert.ok(r.json.columns.some((c) => c.column === '名称' && c.field === 'name'));
  const [hw] = await accountsWhere({ field: 'customer_code', op: '=', value: 'HW-001' });
  assert.equal(hw.name, '北京华为技术有限公司');
  assert.deepEqual(hw.credit_limit, { amount: 123450, currency: 'CNY' });
  assert.equal(hw.key_account, true);
  assert.deepEqual(hw.tags, ['vip']);
  assert.deepEqual(hw.phones.map((p) => p.value), ['010-6253 1234', '13812345678']);
  assert.equal(hw.employees, 1200);
  assert.equal(hw.kind, 'company');
  const [ac] = await accountsWhere({ field: 'customer_code', op: '=', value: 'AC-001' });
  assert.deepEqual(ac.credit_limit, { amount: 9900, currency: 'CNY' });
  assert.equal(ac.key_account, false);
  assert.deepEqual(ac.tags, ['vip', 'online']);
  assert.equal(ac.kind, 'individual');
  // imported records are found like any other (phone index, search)
  const look = await admin.get('/api/v1/lookup/phone?number=%2B861062531234');
  assert.equal(look.status, 200, look.text);
  assert.ok(look.json.matches.some((m) => m.id === hw.id));
  // audit channel
  const h = await admin.get(`/api/v1/accounts/${hw.id}/history`);
  assert.equal(h.json.items[0].channel, 'import');
});

test('upsert on customer_code updates through the pipeline, audit channel import', async () => {
  const created = await sales.create('accounts', { name: 'Upsert Target', customer_code: 'UP-1', city: '天津' });
  const csv = 'customer_code,city,tier\nUP-1,大连,A\nUP-2,青岛,B\n';
  const dry = await importCsv(sales, 'accounts', csv, { mode: 'dry_run', upsert: 'customer_code' });
  assert.equal(dry.status, 200, dry.text);
  // UP-2 has no name: an insert fails validation; UP-1 would be updated
  assert.equal(dry.json.would_update, 1, dry.text);
  assert.equal(dry.json.would_create, 0);
  assert.equal(dry.json.errors[0].row, 3);
  const r = await importCsv(sales, 'accounts', 'customer_code,city,tier,name\nUP-1,大连,A,\nUP-2,青岛,B,New Two\n',
    { mode: 'commit', upsert: 'customer_code' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.updated, 1, r.text);
  assert.equal(r.json.created, 1, r.text);
  const got = await sales.get(`/api/v1/accounts/${created.id}`);
  assert.equal(got.json.city, '大连');
  assert.equal(got.json.tier, 'A');
  assert.equal(got.json.name, 'Upsert Target', 'an empty cell leaves the value alone');
  assert.equal(got.json.version, 2);
  const h = await sales.get(`/api/v1/accounts/${created.id}/history`);
  assert.equal(h.json.items[0].channel, 'import');
  assert.equal(h.json.items[0].action, 'update');
  assert.deepEqual(h.json.items[0].changes.map((c) => c.field).sort(), ['city', 'tier']);
  // someone else's record in another team: the update is refused for that row only
  const r2 = await importCsv(sales2, 'accounts', 'customer_code,city\nUP-1,成都\n', { mode: 'commit', upsert: 'customer_code' });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.updated, 0);
  assert.equal(r2.json.errors[0].code, 'forbidden');
});

test('bulk-created rows: same record, audit, search and phone index as a single create; references and keys checked per row', async () => {
  const csv = [
    'name,customer_code,phones,emails,owner_id,tax_id',
    'Bulk Alpha 甲,BULK-1,010-6253 9001,alpha@bulk.example,,91110108BULK01',
    'Bulk Beta,BULK-2,,beta@bulk.example,999999,',       // owner_id refers to no user
    'Bulk Gamma,BULK-1,,,,',                             // BULK-1 again: updates the first
    'Bulk Delta,BULK-3,+86 138 0000 9003,,,',
  ].join('\n');
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit', upsert: 'customer_code' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 2, r.text);
  assert.equal(r.json.updated, 1, 'a key repeated in the batch updates the record its first row created');
  assert.deepEqual(r.json.skipped_rows, [3]);
  assert.equal(r.json.errors[0].field, 'owner_id');
  assert.equal(r.json.errors[0].code, 'validation_failed');
  const [first] = await accountsWhere({ field: 'customer_code', op: '=', value: 'BULK-1' });
  assert.equal(first.name, 'Bulk Gamma');
  assert.equal(first.version, 2);
  assert.equal((await accountsWhere({ field: 'customer_code', op: '=', value: 'BULK-2' })).length, 0, 'the failed row wrote nothing');
  const h = await admin.get(`/api/v1/accounts/${first.id}/history`);
  assert.deepEqual(h.json.items.map((i) => [i.action, i.channel]), [['update', 'import'], ['create', 'import']]);
  assert.ok(h.json.items[1].changes.some((c) => c.field === 'customer_code' && c.to === 'BULK-1'));
  // derived indexes of bulk-created records: search (pinyin too), phone lookup, duplicates
  const s = await admin.get('/api/v1/search?q=Bulk%20Delta');
  assert.ok(s.json.items.some((i) => i.title === 'Bulk Delta'), s.text);
  const pop = await admin.get('/api/v1/lookup/phone?number=13800009003');
  assert.deepEqual(pop.json.matches.map((m) => m.title), ['Bulk Delta']);
  const pop2 = await admin.get(`/api/v1/lookup/phone?number=${encodeURIComponent('+86 10 6253 9001')}`);
  assert.deepEqual(pop2.json.matches.map((m) => m.id), [first.id]);
  const dup = await admin.post('/api/v1/accounts/duplicates/check', { name: 'Someone', tax_id: '9111 0108 BULK01' });
  assert.equal(dup.status, 200, dup.text);
  assert.deepEqual(dup.json.candidates.map((c) => c.id), [first.id]);
  // without upsert, a key already in the table or repeated in the file is a duplicate row
  const r2 = await importCsv(admin, 'accounts', 'name,customer_code\nBulk Again,BULK-3\nBulk New,BULK-4\nBulk New Again,BULK-4\n', { mode: 'commit' });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.created, 1);
  assert.deepEqual(r2.json.errors.map((e) => [e.row, e.code, e.field]), [[2, 'duplicate', 'customer_code'], [4, 'duplicate', 'customer_code']]);
});

test('likely duplicates of imported records are reported: against existing data and within the file', async () => {
  const existing = await admin.create('accounts', { name: 'Dedupe Import Existing', tax_id: '91110108IMPDUP1' });
  const csv = [
    'name,tax_id,website',
    'Dedupe Import Copy,9111 0108 IMPDUP1,',          // same tax id as an existing account
    'Dedupe Import Fresh,,https://www.dedupe-fresh.cn',
    'Dedupe Import Twin,,dedupe-fresh.cn/about',     // same company domain as the row before
    'Dedupe Import Alone,,',
  ].join('\n');
  const dry = await importCsv(admin, 'accounts', csv, { mode: 'dry_run' });
  assert.equal(dry.status, 200, dry.text);
  assert.equal(dry.json.duplicate_count, 2, dry.text);
  assert.deepEqual(dry.json.duplicates.map((d) => d.row), [2, 4]);
  assert.equal(dry.json.duplicates[0].id, undefined, 'a dry run creates no ids');
  assert.equal(dry.json.duplicates[0].candidates[0].id, existing.id);
  assert.deepEqual(dry.json.duplicates[1].candidates, [{ row: 3, title: 'Dedupe Import Fresh', score: dry.json.duplicates[1].candidates[0].score, reason: dry.json.duplicates[1].candidates[0].reason, field: 'website' }],
    'a candidate from the same file is named by its row');
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 4, 'likely duplicates are reported, not refused');
  assert.equal(r.json.duplicate_count, 2);
  const [copy, twin] = r.json.duplicates;
  assert.equal(copy.row, 2);
  assert.equal(copy.candidates[0].id, existing.id);
  assert.equal(copy.candidates[0].title, 'Dedupe Import Existing');
  assert.equal(copy.candidates[0].field, 'tax_id');
  assert.ok(copy.candidates[0].score >= 0.9, JSON.stringify(copy));
  assert.match(copy.candidates[0].reason, /tax id/);
  const created = await accountsWhere({ field: 'name', op: 'starts_with', value: 'Dedupe Import ' });
  const byName = Object.fromEntries(created.map((a) => [a.name, a.id]));
  assert.equal(copy.id, byName['Dedupe Import Copy']);
  assert.equal(twin.row, 4);
  assert.equal(twin.id, byName['Dedupe Import Twin']);
  assert.deepEqual(twin.candidates.map((c) => [c.id, c.row]), [[byName['Dedupe Import Fresh'], 3]], 'a pair within the file is reported once, on the later row');
  // the run keeps them, and the downloadable report lists them
  const run = await admin.get(`/api/v1/import_runs/${r.json.import_id}`);
  assert.equal(run.json.duplicate_count, 2);
  assert.deepEqual(run.json.duplicates.map((d) => d.row), [2, 4]);
  const rep = await admin.get(r.json.report, { raw: true });
  const lines = rep.text.slice(1).trim().split('\r\n');
  assert.equal(lines.length, 3, rep.text);
  assert.match(lines[1], new RegExp(`^2,tax_id,likely_duplicate,likely duplicate of account ${existing.id} Dedupe Import Existing: .*\\(score [01]\\.\\d{3}\\)$`));
  assert.match(lines[2], /^4,website,likely_duplicate,/);
  // a Sales user's import reports only candidates they may read
  const hidden = await sales2.create('accounts', { name: 'Dedupe Hidden South', tax_id: '91110108IMPDUP9' });
  const s = await importCsv(sales, 'accounts', 'name,tax_id\nDedupe Hidden Copy,91110108IMPDUP9\n', { mode: 'dry_run' });
  assert.equal(s.status, 200, s.text);
  assert.ok(hidden.id);
  assert.equal(s.json.duplicate_count, 0, s.text);
});

test('import duplicates by phone: one batch checks its numbers together; a number 100 records share is no anchor', async () => {
  // the batch reads its anchors in bulk (one query per kind): the answer must be what a
  // per-record check gives
  // organisations: a shared phone counts with the same city (DOMAIN §9)
  const twin = await admin.create('accounts', { name: 'Phonetwin Trading', city: 'Shenzhen', phones: ['0755-2688 1001'] });
  const hotline = '400 820 1234';
  const rows = ['name,city,phones'];
  for (let i = 1; i <= 100; i += 1) rows.push(`Hotline Trading ${i},Shenzhen,${hotline}`);
  const first = await importCsv(admin, 'accounts', rows.join('\n'), { mode: 'commit' });
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.created, 100);
  assert.equal(first.json.duplicate_count, 0, 'a number shared by 100 records anchors nothing');
  const csv = ['name,city,phones', 'Phonetwin Trading Ltd,Shenzhen,+86 755 26881001', 'Hotline Trading 101,Shenzhen,400-820-1234', 'Lonely Phone Shop,Shenzhen,0755 2688 9999'].join('\n');
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 3);
  assert.deepEqual(r.json.duplicates.map((d) => d.row), [2], r.text);
  assert.equal(r.json.duplicates[0].candidates.length, 1, r.text);
  assert.equal(r.json.duplicates[0].candidates[0].id, twin.id);
  assert.equal(r.json.duplicates[0].candidates[0].field, 'name');
  assert.match(r.json.duplicates[0].candidates[0].reason, /same phone \+8675526881001/);
});

test('import duplicates by phone: a number 99 rows of a file share anchors them, 100 do not', async () => {
  // the batch's anchors are read per key, each key's first 100 index entries counted: 99 records
  // on one number are candidates of each other, 100 make it a hotline (no anchor)
  const rowsWith = (count) => ['name,city,phones', ...Array.from({ length: count }, (_, i) => `Ninetynine Trading ${i + 1},Guangzhou,400 820 9999`)].join('\n');
  const some = await importCsv(admin, 'accounts', rowsWith(99), { mode: 'dry_run' });
  assert.equal(some.status, 200, some.text);
  assert.equal(some.json.would_create, 99);
  assert.equal(some.json.duplicate_count, 98, 'every row but the first has the rows before it as candidates');
  assert.deepEqual(some.json.duplicates.map((d) => d.row), Array.from({ length: 98 }, (_, i) => i + 3));
  assert.deepEqual(some.json.duplicates[0].candidates.map((c) => [c.row, c.field]), [[2, 'name']]);
  assert.match(some.json.duplicates[0].candidates[0].reason, /same phone \+864008209999/);
  const all = await importCsv(admin, 'accounts', rowsWith(100), { mode: 'dry_run' });
  assert.equal(all.status, 200, all.text);
  assert.equal(all.json.would_create, 100);
  assert.equal(all.json.duplicate_count, 0, 'a number shared by 100 records anchors nothing');
});

test('upsert key checks', async () => {
  assertProblem(await importCsv(admin, 'accounts', 'name\nx\n', { upsert: 'customer_code' }), 400, 'bad_request', 'upsert');
  assertProblem(await importCsv(admin, 'accounts', 'name\nx\n', { upsert: 'city' }), 400, 'bad_request', 'upsert');
  assertProblem(await importCsv(admin, 'accounts', 'name\nx\n', { mode: 'later' }), 400, 'bad_request', 'mode');
  assertProblem(await importCsv(admin, 'accounts', 'name\nx\n', { colour: 'red' }), 400, 'bad_request', 'colour');
});

test('unknown columns are reported; a mapping to an unknown field is refused', async () => {
  const r = await importCsv(admin, 'accounts', 'Name,Favourite colour,id\nColumns Co,red,123\n', { mode: 'dry_run' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.ignored_columns, [
    { column: 'Favourite colour', reason: 'unknown' },
    { column: 'id', reason: 'read-only' },
  ]);
  assert.equal(r.json.would_create, 1);
  assertProblem(await importCsv(admin, 'accounts', 'A,B\n1,2\n', { mapping: { A: 'name', B: 'colour' } }), 400, 'unknown_field', 'colour');
  assertProblem(await importCsv(admin, 'accounts', 'x,y\n1,2\n'), 400, 'bad_request', 'mapping');
  assertProblem(await importCsv(admin, 'accounts', 'name,名称\n1,2\n'), 400, 'bad_request', 'name');
  assertProblem(await importCsv(admin, 'accounts', ''), 400, 'bad_request');
  assertProblem(await importCsv(admin, 'accounts', 'name\n"open\n'), 400, 'bad_request');
});

test('explicit mapping and a saved template (money as amount + currency columns, address parts)', async () => {
  const csv = 'Firma,Umsatz,Währung,Ort,Straße\nMüller GmbH,"1.234,5",EUR,München,Hauptstr. 1\n';
  const mapping = { Firma: 'name', Umsatz: 'annual_revenue.amount', 'Währung': 'annual_revenue.currency', Ort: 'address.city', 'Straße': 'address.street' };
  // "1.234,5" is not a plain decimal: reported on the field
  const bad = await importCsv(admin, 'accounts', csv, { mode: 'dry_run', mapping });
  assert.equal(bad.status, 200, bad.text);
  assert.equal(bad.json.errors[0].field, 'annual_revenue');
  const t = await admin.create('import_templates', { name: 'German CRM', entity: 'account', mapping });
  assert.ok(t.id);
  const r = await importCsv(admin, 'accounts', csv.replace('"1.234,5"', '1234.5'), { mode: 'commit', template: 'German CRM' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 1, r.text);
  const [m] = await accountsWhere({ field: 'name', op: '=', value: 'Müller GmbH' });
  assert.deepEqual(m.annual_revenue, { amount: 123450, currency: 'EUR' });
  assert.equal(m.address.city, 'München');
  assert.equal(m.address.street, 'Hauptstr. 1');
  assertProblem(await importCsv(admin, 'contacts', csv, { template: 'German CRM' }), 400, 'bad_request', 'template');
  assertProblem(await importCsv(admin, 'accounts', csv, { template: 'nope' }), 400, 'bad_request', 'template');
});

test('undeclared GBK bytes → 400 naming the row; declared gb18030 → imported', async () => {
  // 张三 = D5C5 C8FD, 北京 = B1B1 BEA9 in GBK/GB18030
  const gbk = Buffer.concat([
    Buffer.from('name,city\r\nPlain Ascii,x\r\n'),
    Buffer.from([0xd5, 0xc5, 0xc8, 0xfd]), Buffer.from(','), Buffer.from([0xb1, 0xb1, 0xbe, 0xa9]), Buffer.from('\r\n'),
  ]);
  const r = await importCsv(admin, 'accounts', gbk, { mode: 'commit' });
  assertProblem(r, 400, 'bad_request', 'encoding');
  assert.match(r.json.detail, /row 3/);
  assert.match(r.json.detail, /gb18030/);
  assert.equal((await accountsWhere({ field: 'name', op: '=', value: 'Plain Ascii' })).length, 0, 'nothing written');

  const ok = await importCsv(admin, 'accounts', gbk, { mode: 'commit' }, 'text/csv; charset=GB18030');
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.created, 2, ok.text);
  const [zs] = await accountsWhere({ field: 'name', op: '=', value: '张三' });
  assert.equal(zs.city, '北京');
  // the encoding parameter works as well
  const ok2 = await importCsv(admin, 'accounts', gbk, { mode: 'dry_run', encoding: 'gbk' });
  assert.equal(ok2.status, 200, ok2.text);
  assertProblem(await importCsv(admin, 'accounts', gbk, { encoding: 'latin1' }), 400, 'bad_request', 'encoding');
});

test('invalid rows in the middle of a batch are skipped and reported; valid rows land', async () => {
  await admin.create('accounts', { name: 'Existing', customer_code: 'MID-DUP' });
  const csv = [
    'name,customer_code,tier,emails,founded',
    'Mid Good 1,MID-1,A,a@example.com,',
    'Mid Bad Tier,MID-2,Z,,',
    'Mid Good 2,MID-3,B,b@example.com;c@example.com,',
    'Mid Dup Code,MID-DUP,,,',
    'Mid Bad Email,MID-4,,not-an-email,',
    'Mid Good 3,MID-5,,,',
    'Mid Repeat,MID-1,,,',
  ].join('\n');
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.rows, 7);
  assert.equal(r.json.created, 3, r.text);
  assert.equal(r.json.skipped, 4);
  assert.deepEqual(r.json.skipped_rows, [3, 5, 6, 8]);
  const byRow = Object.fromEntries(r.json.errors.map((e) => [e.row, e]));
  assert.equal(byRow[3].field, 'tier');
  assert.equal(byRow[5].code, 'duplicate');
  assert.equal(byRow[6].field, 'emails');
  assert.equal(byRow[8].code, 'duplicate', 'a key repeated within the file');
  assert.deepEqual(r.json.ignored_columns, [{ column: 'founded', reason: 'unknown' }]);
  const landed = await accountsWhere({ field: 'name', op: 'starts_with', value: 'Mid ' });
  assert.deepEqual(landed.map((a) => a.name).sort(), ['Mid Good 1', 'Mid Good 2', 'Mid Good 3']);
  // no half-written row: nothing of the failed rows in search or phone index either
  const s = await admin.get('/api/v1/search?q=Mid%20Bad');
  assert.deepEqual(s.json.items, []);

  // the report
  const rep = await admin.get(r.json.report, { raw: true });
  assert.equal(rep.status, 200, rep.text);
  assert.match(rep.headers.get('content-type'), /^text\/csv/);
  assert.deepEqual([...rep.body.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
  const lines = rep.text.slice(1).trim().split('\r\n');
  assert.equal(lines[0], 'row,field,code,message');
  assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), ['3', '5', '6', '8']);
  // the run record carries the counts
  const run = await admin.get(`/api/v1/import_runs/${r.json.import_id}`);
  assert.equal(run.json.status, 'completed');
  assert.equal(run.json.created, 3);
  assert.equal(run.json.skipped, 4);
  assert.equal(run.json.rows, 7);
});

// The rows of a batch that update run without a savepoint each: a row that fails starts the
// batch again without it. Failures in update validation, at the UPDATE (unique key) and in
// access, in the middle of one batch of upserts.
test('upserts of one batch: a failing row is skipped with nothing of it written; the other rows land', async () => {
  const mine = [];
  for (let n = 1; n <= 5; n++)
    mine.push(await sales.create('accounts', { name: `Batch Up ${n}`, customer_code: `BUP-${n}`,
      ...(n === 5 ? { external_id: 'BUP-EXT-5' } : {}) }));
  const theirs = await sales2.create('accounts', { name: 'Batch Up Theirs', customer_code: 'BUP-T' });
  const csv = [
    'customer_code,name,tier,emails,external_id,phones',
    'BUP-1,Batch Up One Renamed,A,,,+86 138 0070 0001',
    'BUP-2,Batch Up Two Renamed,,not-an-email,,+86 138 0070 0002',
    'BUP-3,Batch Up Three Renamed,B,,BUP-EXT-5,+86 138 0070 0003',
    'BUP-T,Batch Up Theirs Renamed,,,,+86 138 0070 0009',
    'BUP-4,Batch Up Four Renamed,C,,,+86 138 0070 0004',
    'BUP-NEW,Batch Up New,,,,+86 138 0070 0006',
  ].join('\n');
  const r = await importCsv(sales, 'accounts', csv, { mode: 'commit', upsert: 'customer_code' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.updated, 2, r.text);
  assert.equal(r.json.created, 1, r.text);
  assert.deepEqual(r.json.skipped_rows, [3, 4, 5]);
  const byRow = Object.fromEntries(r.json.errors.map((e) => [e.row, e]));
  assert.equal(byRow[3].field, 'emails');
  assert.equal(byRow[3].code, 'validation_failed');
  assert.equal(byRow[4].code, 'duplicate');
  assert.equal(byRow[5].code, 'forbidden');
  for (const [i, name] of [[0, 'Batch Up One Renamed'], [3, 'Batch Up Four Renamed']]) {
    const got = await sales.get(`/api/v1/accounts/${mine[i].id}`);
    assert.equal(got.json.name, name);
    assert.equal(got.json.version, 2);
  }
  // the failed rows' records are as they were: fields, version, history, phone index, search
  for (const [rec, client] of [[mine[1], sales], [mine[2], sales], [theirs, sales2]]) {
    const got = await client.get(`/api/v1/accounts/${rec.id}`);
    assert.equal(got.json.name, rec.name);
    assert.equal(got.json.version, 1);
    assert.equal(got.json.external_id ?? null, null);
    const h = await client.get(`/api/v1/accounts/${rec.id}/history`);
    assert.deepEqual(h.json.items.map((x) => x.action), ['create']);
  }
  for (const [number, ids] of [['+8613800700001', [mine[0].id]], ['+8613800700002', []],
    ['+8613800700003', []], ['+8613800700009', []], ['+8613800700004', [mine[3].id]]]) {
    const l = await admin.get(`/api/v1/lookup/phone?${qs({ number })}`);
    assert.equal(l.status, 200, l.text);
    assert.deepEqual(l.json.matches.map((m) => m.id), ids, number);
  }
  const s = await admin.get(`/api/v1/search?${qs({ q: 'Renamed', entity: 'account' })}`);
  assert.deepEqual(s.json.items.map((x) => x.id).sort(), [mine[0].id, mine[3].id].sort());
});

// Upserts of records that existed before the batch are written together
// (RecordService::update_many): the search, phone and match index entries are rewritten only
// where their values changed, so each is checked both ways here.
test('bulk upsert: updated records are found by their new values, not their old ones; unchanged rows and indexes stay; file order decides', async () => {
  const a = await admin.create('accounts', { name: 'Ostrava Kettle Works', customer_code: 'BUX-1',
    phones: ['+86 138 0071 0001'], tax_id: '91110108BUXOLD1', city: '北京' });
  const b = await admin.create('accounts', { name: 'Zlin Lantern Guild', customer_code: 'BUX-2',
    phones: ['+86 138 0071 0002'], tier: 'A' });
  const c = await admin.create('accounts', { name: 'Brno Anvil Union', customer_code: 'BUX-3', tier: 'B' });
  const csv = [
    'customer_code,name,phones,tax_id,tier',
    'BUX-1,Plzen Teapot Works,+86 138 0071 0011,91110108BUXNEW1,',  // name, phone, tax id change
    'BUX-2,,,,C',                                                   // tier only: indexes stay
    'BUX-3,Brno Anvil Union,,,B',                                   // nothing changes
    'BUX-2,,,,B',                                                   // BUX-2 again: the later row wins
  ].join('\n');
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit', upsert: 'customer_code' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.updated, 4, r.text);
  assert.equal(r.json.created, 0);
  assert.deepEqual(r.json.errors, []);
  const [ga, gb, gc] = await Promise.all([a, b, c].map((x) => admin.get(`/api/v1/accounts/${x.id}`)));
  assert.equal(ga.json.name, 'Plzen Teapot Works');
  assert.equal(ga.json.version, 2);
  assert.equal(ga.json.city, '北京', 'a column the file does not have is left alone');
  assert.equal(gb.json.tier, 'B', 'the later row of the same key is applied after the earlier one');
  assert.equal(gb.json.version, 3);
  assert.equal(gc.json.version, 1, 'a row that changes nothing writes nothing');
  const hist = async (id) => (await admin.get(`/api/v1/accounts/${id}/history`)).json.items;
  const ha = await hist(a.id);
  assert.deepEqual(ha.map((x) => x.action), ['update', 'create']);
  assert.equal(ha[0].channel, 'import');
  assert.deepEqual(ha[0].changes.map((x) => x.field).sort(), ['name', 'phones', 'tax_id']);
  assert.equal(ha[0].changes.find((x) => x.field === 'name').from, 'Ostrava Kettle Works');
  const hb = await hist(b.id);
  assert.deepEqual(hb.map((x) => x.action), ['update', 'update', 'create']);
  assert.deepEqual(hb.slice(0, 2).map((x) => x.changes.map((y) => `${y.field}:${y.to}`).join()),
    ['tier:B', 'tier:C']);
  assert.deepEqual((await hist(c.id)).map((x) => x.action), ['create']);
  // search: the new name finds it, the old one no longer does; untouched names still found
  const search = async (q) => (await admin.get(`/api/v1/search?${qs({ q, entity: 'account' })}`)).json.items.map((x) => x.id);
  assert.deepEqual(await search('Plzen Teapot'), [a.id]);
  assert.deepEqual(await search('Ostrava Kettle'), []);
  assert.deepEqual(await search('Zlin Lantern'), [b.id]);
  assert.deepEqual(await search('Brno Anvil'), [c.id]);
  // phone lookup: the new number, not the old one; b's number (not in the row) kept
  const phone = async (number) => (await admin.get(`/api/v1/lookup/phone?${qs({ number })}`)).json.matches.map((m) => m.id);
  assert.deepEqual(await phone('+8613800710011'), [a.id]);
  assert.deepEqual(await phone('+8613800710001'), []);
  assert.deepEqual(await phone('+8613800710002'), [b.id]);
  // duplicate matching (match index): the new tax id, not the old one
  const dup = async (tax_id) => (await admin.post('/api/v1/accounts/duplicates/check', { name: 'Someone Else', tax_id })).json.candidates.map((x) => x.id);
  assert.deepEqual(await dup('91110108BUXNEW1'), [a.id]);
  assert.deepEqual(await dup('91110108BUXOLD1'), []);
  // the list filter reads the updated column
  assert.deepEqual((await accountsWhere({ field: 'customer_code', op: 'starts_with', value: 'BUX-' }))
    .filter((x) => x.tier === 'B').map((x) => x.id).sort(), [b.id, c.id].sort());
});

test('bulk upsert: a row whose reference names no record is refused naming the field; the record and the other rows are as the file says', async () => {
  const a = await admin.create('accounts', { name: 'Olomouc Bell Foundry', customer_code: 'BUR-1' });
  const b = await admin.create('accounts', { name: 'Opava Clock Makers', customer_code: 'BUR-2' });
  const csv = [
    'customer_code,name,owner_id',
    'BUR-1,Olomouc Bell Foundry Renamed,999999',  // owner_id refers to no user
    `BUR-2,Opava Clock Makers Renamed,${admin.user.id}`,
  ].join('\n');
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit', upsert: 'customer_code' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.updated, 1, r.text);
  assert.deepEqual(r.json.skipped_rows, [2]);
  assert.deepEqual(r.json.errors.map((e) => [e.row, e.code, e.field]), [[2, 'validation_failed', 'owner_id']]);
  assert.match(r.json.errors[0].message, /owner_id refers to a user that does not exist/);
  const [ga, gb] = await Promise.all([a, b].map((x) => admin.get(`/api/v1/accounts/${x.id}`)));
  assert.equal(ga.json.name, 'Olomouc Bell Foundry', 'the refused row changed nothing');
  assert.equal(ga.json.version, 1);
  assert.equal(gb.json.name, 'Opava Clock Makers Renamed');
});

test('bulk upsert on email: each record found by its email updated once per row, in file order', async () => {
  const x = await admin.create('contacts', { full_name: '王小明', emails: ['wang.bux@example.com'] });
  const y = await admin.create('contacts', { full_name: '李小红', emails: ['li.bux@example.com', 'hong.bux@example.com'] });
  const csv = ['full_name,emails,title', '王晓明,Wang.Bux@Example.com,经理',
    ',hong.bux@example.com,总监', ',li.bux@example.com,董事'].join('\n');
  const r = await importCsv(admin, 'contacts', csv, { mode: 'commit', upsert: 'email' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.updated, 3, r.text);
  assert.equal(r.json.created, 0, r.text);
  const gx = await admin.get(`/api/v1/contacts/${x.id}`);
  assert.equal(gx.json.full_name, '王晓明');
  assert.equal(gx.json.title, '经理');
  const gy = await admin.get(`/api/v1/contacts/${y.id}`);
  assert.equal(gy.json.title, '董事');
  assert.equal(gy.json.version, 3);
  const s = await admin.get(`/api/v1/search?${qs({ q: 'wangxiaoming', entity: 'contact' })}`);
  assert.ok(s.json.items.some((i) => i.id === x.id), s.text);
  // the vCard test below counts every contact
  for (const id of [x.id, y.id]) assert.equal((await admin.del(`/api/v1/contacts/${id}`)).status, 204);
});

test('import reports belong to their importer', async () => {
  const r = await importCsv(sales, 'accounts', 'name,tier\nReport Owner Co,Q\n', { mode: 'dry_run' });
  assert.equal(r.status, 200, r.text);
  const mine = await sales.get(r.json.report, { raw: true });
  assert.equal(mine.status, 200, mine.text);
  assert.match(mine.text, /tier/);
  assertProblem(await sales2.get(r.json.report), 403, 'forbidden');
  assertProblem(await sales.get('/api/v1/imports/999999/report.csv'), 404, 'not_found');
});

const VCARDS = [
  'BEGIN:VCARD', 'VERSION:4.0', 'FN:张伟', 'N:张;伟;;;', 'TEL;TYPE=cell:138 1234 5678',
  'TEL;TYPE="work,voice";VALUE=uri:tel:+86-10-6253-1234', 'EMAIL;TYPE=work:zhang.wei@example.com',
  'TITLE:采购经理', 'ORG:Acme;采购部', 'BDAY:19850412', 'NOTE:likes tea\\, not coffee\\nsecond line', 'END:VCARD',
  'BEGIN:VCARD', 'VERSION:3.0', 'N:Smith;John;;;', 'TEL;CELL:+1 415 555 0100',
  'EMAIL:john.smith@example.com', 'NOTE:a very long note that is folded over more than one line because vCard lines ar',
  ' e limited to seventy-five octets', 'END:VCARD',
].join('\r\n') + '\r\n';

test('vCard import, export and round trip', async () => {
  const r = await importCsv(admin, 'contacts', VCARDS, { mode: 'commit' }, 'text/vcard');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 2, r.text);
  const contacts = await listAll(admin, 'contacts');
  const zw = contacts.find((c) => c.full_name === '张伟');
  assert.ok(zw, JSON.stringify(contacts));
  assert.deepEqual(zw.phones, [{ value: '138 1234 5678', label: 'mobile' }, { value: '+86-10-6253-1234', label: 'office' }]);
  assert.deepEqual(zw.emails, [{ value: 'zhang.wei@example.com', label: 'work' }]);
  assert.equal(zw.title, '采购经理');
  assert.equal(zw.department, '采购部');
  assert.equal(zw.birthday, '1985-04-12');
  assert.equal(zw.notes, 'likes tea, not coffee\nsecond line');
  const js = contacts.find((c) => c.full_name === 'John Smith');
  assert.ok(js);
  assert.equal(js.notes, 'a very long note that is folded over more than one line because vCard lines are limited to seventy-five octets');

  const exp = await admin.get('/api/v1/contacts/export.vcf', { raw: true });
  assert.equal(exp.status, 200, exp.text);
  assert.match(exp.headers.get('content-type'), /^text\/vcard/);
  const text = exp.text;
  assert.equal((text.match(/BEGIN:VCARD\r\nVERSION:4\.0\r\n/g) || []).length, 2);
  assert.match(text, /FN:张伟\r\n/);
  assert.match(text, /TEL;TYPE=cell:138 1234 5678\r\n/);
  assert.match(text, /EMAIL;TYPE=work:zhang\.wei@example\.com\r\n/);
  assert.match(text, /BDAY:19850412\r\n/);
  assert.match(text, /NOTE:likes tea\\, not coffee\\nsecond line\r\n/);
  for (const line of text.split('\r\n')) assert.ok(Buffer.byteLength(line) <= 75, `line over 75 octets: ${line}`);

  // round trip: the export imported again upserts on email — same records, nothing new
  const again = await importCsv(admin, 'contacts', exp.body, { mode: 'commit', upsert: 'email' }, 'text/vcard');
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.created, 0, again.text);
  assert.equal(again.json.updated, 2, again.text);
  const after = await admin.get(`/api/v1/contacts/${zw.id}`);
  assert.deepEqual(after.json.phones, zw.phones);
  assert.equal(after.json.notes, zw.notes);
  assert.equal(after.json.version, zw.version, 'nothing changed, no new version');

  // into a fresh database: the same contacts come out
  const srv2 = await startServer();
  try {
    const admin2 = await srv2.userClient('admin', { role: 'Administrator' });
    const r2 = await importCsv(admin2, 'contacts', exp.body, { mode: 'commit' }, 'text/vcard; charset=utf-8');
    assert.equal(r2.json.created, 2, r2.text);
    const copy = (await listAll(admin2, 'contacts')).find((c) => c.full_name === '张伟');
    for (const f of ['phones', 'emails', 'title', 'department', 'birthday', 'notes']) assert.deepEqual(copy[f], zw[f], f);
  } finally {
    await srv2.stop();
  }

  assertProblem(await importCsv(admin, 'contacts', 'BEGIN:VCARD\r\nFN:x\r\n', { mode: 'dry_run' }, 'text/vcard'), 400, 'bad_request');
  assertProblem(await admin.get('/api/v1/teams/export.vcf'), 400, 'bad_request');
});

// Issue #4 vCard 4 export of accounts: a company is a card of KIND:org named by ORG (it used to
// get an N property with the first character of its name as a family name: "N:北;京华为技术;;;"),
// an individual keeps N; the address is ADR and the website URL.
test('vCard export of accounts: companies as KIND:org with ORG, address as ADR, website as URL; imported back the same', async () => {
  const co = await admin.create('accounts', {
    name: '北京华为技术有限公司', kind: 'company', phones: ['010-6253 1234'], website: 'https://huawei.example.cn',
    address: { street: '中关村大街1号', city: '北京', region: '北京市', postal_code: '100080', country: 'CN' },
  });
  const person = await admin.create('accounts', { name: '王小明', kind: 'individual', phones: ['13800001111'] });
  const cardOf = async (id) => {
    const r = await admin.get(`/api/v1/accounts/export.vcf?${qs({ filter: JSON.stringify({ field: 'id', op: '=', value: id }) })}`, { raw: true });
    assert.equal(r.status, 200, r.text);
    return r.text.replace(/\r\n /g, '').split('\r\n');
  };
  const c = await cardOf(co.id);
  assert.ok(c.includes('KIND:org'), c.join('\n'));
  assert.ok(c.includes('FN:北京华为技术有限公司'));
  assert.ok(c.includes('ORG:北京华为技术有限公司'));
  assert.ok(!c.some((l) => l.startsWith('N:')), c.join('\n'));
  assert.ok(c.includes('ADR;TYPE=work:;;中关村大街1号;北京;北京市;100080;CN'), c.join('\n'));
  assert.ok(c.includes('URL:https://huawei.example.cn'), c.join('\n'));
  const p = await cardOf(person.id);
  assert.ok(p.includes('KIND:individual'), p.join('\n'));
  assert.ok(p.includes('N:王;小明;;;'), p.join('\n'));
  assert.ok(!p.some((l) => l.startsWith('ADR') || l.startsWith('URL') || l.startsWith('ORG')), p.join('\n'));

  // Round trip: the cards imported into a fresh database give the same accounts — kind from
  // KIND, address from ADR, website from URL (the import used to drop all three).
  const both = await admin.get(`/api/v1/accounts/export.vcf?${qs({ filter: JSON.stringify({ field: 'id', op: 'in', value: [co.id, person.id] }) })}`, { raw: true });
  const srv2 = await startServer();
  try {
    const admin2 = await srv2.userClient('admin', { role: 'Administrator' });
    const r = await importCsv(admin2, 'accounts', both.body, { mode: 'commit' }, 'text/vcard');
    assert.equal(r.json.created, 2, r.text);
    const copies = await listAll(admin2, 'accounts');
    for (const orig of [co, person]) {
      const copy = copies.find((x) => x.name === orig.name);
      assert.ok(copy, orig.name);
      for (const f of ['kind', 'address', 'website', 'phones']) assert.deepEqual(copy[f], orig[f], `${orig.name}: ${f}`);
    }
  } finally {
    await srv2.stop();
  }
});

// Issue #4, audit 4.13: a contact card's ORG company name links the contact to its account when
// exactly one live account the importer may read has that name (exact after trimming); else the
// card is imported without an account and the row gets a warning naming the ORG.
test('vCard ORG links a contact to the one account of that name; none, several or unreadable → no account, a warning', async () => {
  const uniq = await admin.create('accounts', { name: 'Org Link Unique Ltd' });
  await admin.create('accounts', { name: 'Org Link Twin Ltd' });
  await admin.create('accounts', { name: 'Org Link Twin Ltd' });
  const gone = await admin.create('accounts', { name: 'Org Link Deleted Ltd' });
  assert.ok((await admin.del(`/api/v1/accounts/${gone.id}`)).status < 300);
  const card = (fn, org) => ['BEGIN:VCARD', 'VERSION:4.0', `FN:${fn}`, `ORG:${org}`, 'END:VCARD'].join('\r\n');
  const body = [
    card('Orgy Unique', ' Org Link Unique Ltd ;Sales dept'),  // trimmed; the unit stays the department
    card('Orgy Twin', 'Org Link Twin Ltd'),
    card('Orgy Nothing', 'Org Link Nobody Ltd'),
    card('Orgy Deleted', 'Org Link Deleted Ltd'),
  ].join('\r\n') + '\r\n';

  const dry = await importCsv(admin, 'contacts', body, { mode: 'dry_run' }, 'text/vcard');
  assert.equal(dry.status, 200, dry.text);
  assert.equal(dry.json.would_create, 4, dry.text);
  assert.equal(dry.json.error_count, 0, dry.text);
  assert.equal(dry.json.warning_count, 3, dry.text);
  assert.deepEqual(dry.json.warnings.map((w) => [w.row, w.field, w.code]),
    [[2, 'account_id', 'org_ambiguous'], [3, 'account_id', 'org_no_account'], [4, 'account_id', 'org_no_account']]);
  assert.match(dry.json.warnings[0].message, /ORG Org Link Twin Ltd: 2 accounts have that name/);
  assert.match(dry.json.warnings[1].message, /ORG Org Link Nobody Ltd: no account of that name/);

  const r = await importCsv(admin, 'contacts', body, { mode: 'commit' }, 'text/vcard');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 4, r.text);
  assert.equal(r.json.warning_count, 3, r.text);
  const byName = async (n) => (await listAll(admin, 'contacts', { filter: { field: 'full_name', op: '=', value: n } }))[0];
  const u = await byName('Orgy Unique');
  assert.equal(String(u.account_id), String(uniq.id));
  assert.equal(u.department, 'Sales dept');
  for (const n of ['Orgy Twin', 'Orgy Nothing', 'Orgy Deleted']) assert.equal((await byName(n)).account_id ?? null, null, n);
  const report = await admin.get(r.json.report, { raw: true });
  assert.match(report.text, /3,account_id,org_no_account,"ORG Org Link Nobody Ltd: no account of that name/);
  assert.match(report.text, /2,account_id,org_ambiguous,/);
});

test('vCard ORG finds the account folded: case, full/half width and inner spaces; not a longer name; two names equal folded are ambiguous', async () => {
  const acme = await admin.create('accounts', { name: 'Fold Acme Widgets Ltd' });
  const wide = await admin.create('accounts', { name: 'ＦＯＬＤ Ｗｉｄｅ  Trading' });
  const cjk = await admin.create('accounts', { name: '折叠测试科技有限公司' });
  await admin.create('accounts', { name: 'Fold Acme Widgets Ltd Shanghai Branch' });
  await admin.create('accounts', { name: 'Fold Twin Case Ltd' });
  await admin.create('accounts', { name: 'FOLD TWIN CASE LTD' });
  const card = (fn, org) => ['BEGIN:VCARD', 'VERSION:4.0', `FN:${fn}`, `ORG:${org}`, 'END:VCARD'].join('\r\n');
  const body = [
    card('Foldy Acme', 'FOLD  ACME widgets　LTD'),  // upper case, two spaces, an ideographic space
    card('Foldy Wide', 'fold wide trading'),          // the stored name is full-width with two spaces
    card('Foldy Cjk', '折叠测试科技有限公司'),
    card('Foldy Twin', 'fold twin case ltd'),
    card('Foldy Short', 'Fold Acme'),                 // a part of a name is no match
  ].join('\r\n') + '\r\n';
  const r = await importCsv(admin, 'contacts', body, { mode: 'commit' }, 'text/vcard');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 5, r.text);
  assert.deepEqual(r.json.warnings.map((w) => [w.row, w.field, w.code]),
    [[4, 'account_id', 'org_ambiguous'], [5, 'account_id', 'org_no_account']]);
  assert.match(r.json.warnings[0].message, /ORG fold twin case ltd: 2 accounts have that name/);
  const byName = async (n) => (await listAll(admin, 'contacts', { filter: { field: 'full_name', op: '=', value: n } }))[0];
  assert.equal(String((await byName('Foldy Acme')).account_id), String(acme.id));
  assert.equal(String((await byName('Foldy Wide')).account_id), String(wide.id));
  assert.equal(String((await byName('Foldy Cjk')).account_id), String(cjk.id));
  for (const n of ['Foldy Twin', 'Foldy Short']) assert.equal((await byName(n)).account_id ?? null, null, n);
});

test('vCard ORG: an account the Sales importer may not read is no account; one of their team is linked', async () => {
  const south = await sales2.create('accounts', { name: 'Org Link South Only Ltd' });
  const north = await sales.create('accounts', { name: 'Org Link North Ltd' });
  assert.ok(south.id && north.id);
  const body = ['BEGIN:VCARD', 'VERSION:4.0', 'FN:Orgy Sales Hidden', 'ORG:Org Link South Only Ltd', 'END:VCARD',
    'BEGIN:VCARD', 'VERSION:4.0', 'FN:Orgy Sales Team', 'ORG:Org Link North Ltd', 'END:VCARD'].join('\r\n') + '\r\n';
  const r = await importCsv(sales, 'contacts', body, { mode: 'commit' }, 'text/vcard');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 2, r.text);
  assert.deepEqual(r.json.warnings.map((w) => [w.row, w.code]), [[1, 'org_no_account']]);
  const mine = await listAll(sales, 'contacts', { filter: { field: 'full_name', op: 'starts_with', value: 'Orgy Sales' } });
  assert.equal(mine.find((c) => c.full_name === 'Orgy Sales Hidden').account_id ?? null, null);
  assert.equal(String(mine.find((c) => c.full_name === 'Orgy Sales Team').account_id), String(north.id));
});

function unzipList(buf) {
  const dir = tempDir('rapport-xlsx-');
  const file = join(dir, 'export.xlsx');
  writeFileSync(file, buf);
  return { list: execFileSync('unzip', ['-l', file]).toString(), read: (entry) => execFileSync('unzip', ['-p', file, entry]).toString() };
}

// vCard bodies are read card by card from the spooled file: checked whole first, then written.
test('vCard: a file broken after its first batch is refused whole (nothing written); a whole one lands in batches', async () => {
  const card = (n) => ['BEGIN:VCARD', 'VERSION:4.0', `FN:Streamed Card ${n}`,
    `EMAIL:streamed.${n}@vcf.example`, 'NOTE:a note folded over', '  two lines', 'END:VCARD'].join('\r\n');
  const cards = Array.from({ length: 5002 }, (_, i) => card(i + 1));
  const countStreamed = async () => (await listAll(admin, 'contacts', { q: 'Streamed Card' })).length;
  const broken = await importCsv(admin, 'contacts', cards.join('\r\n') + '\r\nBEGIN:VCARD\r\nFN:unfinished\r\n',
    { mode: 'commit' }, 'text/vcard');
  assertProblem(broken, 400, 'bad_request');
  assert.match(broken.json.detail, /vCard 5003 has no END:VCARD/);
  assert.equal(await countStreamed(), 0, 'nothing of the first batch was written');
  const r = await importCsv(admin, 'contacts', cards.join('\r\n') + '\r\n', { mode: 'commit' }, 'text/vcard');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 5002, r.text);
  const got = await listAll(admin, 'contacts', { filter: { field: 'full_name', op: '=', value: 'Streamed Card 5002' } });
  assert.equal(got.length, 1);
  assert.equal(got[0].notes, 'a note folded over two lines');
});

test('export.xlsx is a workbook with the list in sheet1', async () => {
  await admin.create('accounts', { name: 'Xlsx Export Co', customer_code: 'XL-1', employees: 42, key_account: true, account_manager_id: admin.user.id });
  const r = await admin.get(`/api/v1/accounts/export.xlsx?${qs({ filter: { field: 'customer_code', op: '=', value: 'XL-1' } })}`, { raw: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
  assert.match(r.headers.get('content-disposition'), /attachment; filename="accounts\.xlsx"/);
  assert.equal(r.body.subarray(0, 4).toString('latin1'), 'PK\x03\x04');
  const z = unzipList(r.body);
  assert.match(z.list, /xl\/worksheets\/sheet1\.xml/);
  assert.match(z.list, /xl\/workbook\.xml/);
  const sheet = z.read('xl/worksheets/sheet1.xml');
  const strings = z.list.includes('sharedStrings') ? z.read('xl/sharedStrings.xml') : '';
  assert.match(sheet + strings, /Xlsx Export Co/);
  assert.match(sheet + strings, /customer_code/);
  assert.match(sheet, /<v>42<\/v>/, 'integers are numbers');
});

test('field permissions: Sales cannot export or import bank_account', async () => {
  const acc = await admin.create('accounts', { name: 'Bank Holder', customer_code: 'BK-1', bank_account: BANK });
  await admin.patch(`/api/v1/accounts/${acc.id}`, { owner_id: sales.user.id });
  const filter = { field: 'customer_code', op: '=', value: 'BK-1' };
  const csv = await sales.get(`/api/v1/accounts/export.csv?${qs({ filter })}`, { raw: true });
  assert.equal(csv.status, 200, csv.text);
  assert.match(csv.text, /Bank Holder/);
  assert.doesNotMatch(csv.text, /bank_account|6222/);
  const x = await sales.get(`/api/v1/accounts/export.xlsx?${qs({ filter })}`, { raw: true });
  assert.equal(x.status, 200);
  const z = unzipList(x.body);
  const all = z.read('xl/worksheets/sheet1.xml') + (z.list.includes('sharedStrings') ? z.read('xl/sharedStrings.xml') : '');
  assert.match(all, /Bank Holder/);
  assert.doesNotMatch(all, /bank_account|6222/);
  const asked = unzipList((await sales.get(`/api/v1/accounts/export.xlsx?${qs({ filter, fields: 'name,bank_account' })}`, { raw: true })).body);
  assert.doesNotMatch(asked.read('xl/worksheets/sheet1.xml'), /bank_account|6222/, 'asking for it by name does not help');
  // the administrator's workbook has it
  const ax = unzipList((await admin.get(`/api/v1/accounts/export.xlsx?${qs({ filter })}`, { raw: true })).body);
  assert.match(ax.read('xl/worksheets/sheet1.xml') + (ax.list.includes('sharedStrings') ? ax.read('xl/sharedStrings.xml') : ''), /6222/);
  // import: the column is ignored as unknown, an explicit mapping is refused
  const r = await importCsv(sales, 'accounts', 'name,bank_account\nBank Import Co,123\n', { mode: 'dry_run' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.ignored_columns, [{ column: 'bank_account', reason: 'unknown' }]);
  assertProblem(await importCsv(sales, 'accounts', 'name,konto\nx,1\n', { mapping: { konto: 'bank_account' } }), 400, 'unknown_field', 'bank_account');
  // no create permission → 403
  assertProblem(await importCsv(sales, 'users', 'username\nx\n'), 403, 'forbidden');
});

test('imports of more than one batch commit per batch and keep counting', async () => {
  const n = 5200;
  let csv = 'name,customer_code,tier\n';
  for (let i = 0; i < n; i++) csv += `Batch Co ${i},BATCH-${i},${i === 5100 ? 'Z' : 'A'}\n`;
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit', file_name: 'batch.csv' });
  assert.equal(r.status, 200, r.text.slice(0, 500));
  assert.equal(r.json.rows, n);
  assert.equal(r.json.created, n - 1);
  assert.deepEqual(r.json.skipped_rows, [5102]);
  const run = await admin.get(`/api/v1/import_runs/${r.json.import_id}`);
  assert.equal(run.json.file_name, 'batch.csv');
  assert.equal(run.json.created, n - 1);
  const count = await admin.list('accounts', { filter: { field: 'customer_code', op: 'starts_with', value: 'BATCH-' }, limit: 1 });
  assert.ok(count.items.length === 1);
});

// The records of a batch carry the time of its write — one time per batch — and so do their
// audit entries; a row whose key an earlier batch created updates that record. (A batch built
// ahead of its write, as session 11 tried — bench/README.md "Import throughput" — must set the
// times at the write: built ahead, each row had its own.) Issue 4, R-CUS-1 import.
test('records of a batch carry its write time, one per batch; a key of an earlier batch updates', async () => {
  const n = 5200;
  let csv = 'name,customer_code,tier\n';
  for (let i = 0; i < n; i++) csv += `Ahead Co ${i},${i === 5150 ? 'AHEAD-7' : `AHEAD-${i}`},A\n`;
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit', upsert: 'customer_code' });
  assert.equal(r.status, 200, r.text.slice(0, 500));
  assert.equal(r.json.rows, n);
  assert.equal(r.json.created, n - 1);
  assert.equal(r.json.updated, 1);
  const rows = await accountsWhere({ field: 'customer_code', op: 'starts_with', value: 'AHEAD-' });
  assert.equal(rows.length, n - 1);
  const created = new Set(rows.map((a) => a.created_at));
  assert.equal(created.size, 2, `one created_at per batch, got ${created.size}: ${[...created].slice(0, 4)}`);
  const updated = rows.find((a) => a.customer_code === 'AHEAD-7');
  assert.equal(updated.name, 'Ahead Co 5150');
  for (const a of rows) if (a !== updated) assert.equal(a.updated_at, a.created_at);
  const last = rows.find((a) => a.customer_code === 'AHEAD-5199');
  const h = await admin.get(`/api/v1/accounts/${last.id}/history`);
  assert.equal(h.status, 200, h.text);
  assert.equal(h.json.items.at(-1).action, 'create');
  assert.equal(h.json.items.at(-1).at, last.created_at);
});

// The next batch is read, converted and prepared (RecordService::prepare_inserts) while the
// writer writes the current one (bench/README.md "Import throughput", session 19): a likely
// duplicate of a row of the batch before is still found, by the writer after that batch was
// written, and a bad row of the next batch is skipped and reported exactly, in a dry run too.
test('a row of the next batch: a likely duplicate of the batch before is reported; a bad row is skipped and reported', async () => {
  const n = 5004;  // batches of 5,000 rows: rows 2–5001, then 5002–5005
  let csv = 'name,customer_code,tier,website\n';
  for (let i = 0; i < n; i++) {
    const site = i === 4999 ? 'https://www.pipeline-twin.cn' : i === 5000 ? 'pipeline-twin.cn/about' : '';
    csv += `Pipeline ${i % 2 ? 'Holdings' : 'Trading'} ${i},PIPE-${i},${i === 5002 ? 'Z' : 'A'},${site}\n`;
  }
  const errorsOf = (json) => json.errors.map((e) => [e.row, e.code, e.field]);
  const dry = await importCsv(admin, 'accounts', csv, { mode: 'dry_run' });
  assert.equal(dry.status, 200, dry.text.slice(0, 500));
  assert.equal(dry.json.would_create, n - 1);
  assert.deepEqual(dry.json.skipped_rows, [5004]);
  assert.deepEqual(errorsOf(dry.json), [[5004, 'validation_failed', 'tier']]);
  const r = await importCsv(admin, 'accounts', csv, { mode: 'commit' });
  assert.equal(r.status, 200, r.text.slice(0, 500));
  assert.equal(r.json.created, n - 1);
  assert.deepEqual(r.json.skipped_rows, [5004]);
  assert.deepEqual(errorsOf(r.json), [[5004, 'validation_failed', 'tier']]);
  const [first] = await accountsWhere({ field: 'customer_code', op: 'starts_with', value: 'PIPE-4999' });
  const [second] = await accountsWhere({ field: 'customer_code', op: 'starts_with', value: 'PIPE-5000' });
  const twin = r.json.duplicates.find((d) => d.row === 5002);
  assert.ok(twin, `row 5002 is reported: ${JSON.stringify(r.json.duplicates).slice(0, 500)}`);
  assert.equal(twin.id, second.id);
  assert.deepEqual(twin.candidates.map((c) => [c.id, c.row, c.field]), [[first.id, undefined, 'website']],
    'a candidate of an earlier batch is named by its id');
  assert.equal(r.json.duplicate_count, r.json.duplicates.length);
  const gone = await accountsWhere({ field: 'customer_code', op: 'starts_with', value: 'PIPE-5002' });
  assert.equal(gone.length, 0, 'the bad row wrote nothing');
});

test('import bodies may exceed the 10 MiB request limit (up to 256 MiB)', async () => {
  const big = 'colour\n' + 'red\n'.repeat(3 * 1024 * 1024); // 12 MiB
  const r = await importCsv(admin, 'accounts', big, { mode: 'dry_run' });
  assertProblem(r, 400, 'bad_request', 'mapping'); // read in full, then refused for its columns
  // other routes keep the 10 MiB limit (declared and streamed): validation.test.mjs
});

test('a file broken after its first batch (bad UTF-8, unclosed quote) is refused whole: nothing written', async () => {
  // the body is read piece by piece; the whole file is checked before the first batch is written
  let rows = 'name,customer_code\n';
  for (let i = 0; i < 5100; i++) rows += `Late Break ${i},LATE-${i}\n`;
  const badUtf8 = Buffer.concat([Buffer.from(rows), Buffer.from([0xd5, 0xc5]), Buffer.from(',LATE-X\n')]);
  const r = await importCsv(admin, 'accounts', badUtf8, { mode: 'commit' });
  assertProblem(r, 400, 'bad_request', 'encoding');
  assert.match(r.json.detail, /row 5102 /);
  const r2 = await importCsv(admin, 'accounts', rows + '"never closed,LATE-Y\n', { mode: 'commit' });
  assertProblem(r2, 400, 'bad_request', 'file');
  assert.match(r2.json.detail, /row 5102: a quoted field is never closed/);
  assert.equal((await accountsWhere({ field: 'name', op: 'starts_with', value: 'Late Break' })).length, 0, 'nothing written');
});

// Bad input gets problem+json naming the field: a problem of the file as a whole (its quoting, its
// cards, its size) names "file", the request body — it used to name nothing.
test('FailingImport: a malformed CSV or vCard file is refused naming the field "file"', async () => {
  const cases = [
    ['text/csv', 'full_name\n"unterminated\n', 400, 'bad_request', /row 2: a quoted field is never closed/],
    ['text/csv', 'full_name\n"a"b\n', 400, 'bad_request', /row 2: text after the closing quote/],
    ['text/csv', '', 400, 'bad_request', /the file is empty/],
    ['text/csv', 'full_name\n' + 'x,'.repeat(501) + '\n', 413, 'too_large', /row 2 has more than 500 columns/],
    ['text/vcard', 'BEGIN:VCARD\r\nFN:x\r\n', 400, 'bad_request', /vCard 1 has no END:VCARD/],
    ['text/vcard', 'garbage\r\n', 400, 'bad_request', /a line without a colon/],
    ['text/vcard', 'FN:x\r\n', 400, 'bad_request', /no BEGIN:VCARD/],
  ];
  for (const [type, body, status, code, detail] of cases) {
    const r = await importCsv(admin, 'contacts', body, { mode: 'commit' }, type);
    assertProblem(r, status, code, 'file');
    assert.match(r.json.detail, detail);
  }
});
