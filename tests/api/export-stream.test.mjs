// Exports at scale: CSV and vCard are streamed (chunked transfer) page by page, every row once,
// within the caller's scope and without hidden fields; a client that disconnects stops the export.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, assertProblem, qs, sleep } from './harness.mjs';

let srv;
let admin, north, south;
const ROWS = 1300; // per team: more than two list pages (500) each
const BANK = '6222 0210 0123 4567';
const pad = 'x'.repeat(2000); // ~2 KB a row: the whole export is far larger than one piece

function csvOf(prefix) {
  let s = 'name,customer_code,description\r\n';
  for (let i = 0; i < ROWS; i++) s += `${prefix} ${i},${prefix}-${String(i).padStart(5, '0')},${pad}\r\n`;
  return s;
}

before(async () => {
  srv = await startServer();
  [admin, north, south] = await srv.cast('admin', 'north1', 'south1');
  for (const [client, prefix] of [[north, 'NORTH'], [south, 'SOUTH']]) {
    const r = await client.post(`/api/v1/accounts/import?${qs({ mode: 'commit' })}`, csvOf(prefix),
      { headers: { 'content-type': 'text/csv' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.created, ROWS, r.text);
  }
  const one = await north.list('accounts', { filter: { field: 'customer_code', op: '=', value: 'NORTH-00007' } });
  const p = await admin.patch(`/api/v1/accounts/${one.items[0].id}`, { bank_account: BANK });
  assert.equal(p.status, 200, p.text);
});
after(async () => { await srv?.stop(); });

// Rows of an RFC 4180 CSV without quoted newlines (these exports have none).
function csvRows(text) {
  assert.ok(text.startsWith('\ufeff'), 'BOM');
  assert.ok(text.endsWith('\r\n'), 'the last row is complete');
  return text.slice(1, -2).split('\r\n').map((l) => l.split(','));
}

function codesOf(text) {
  const rows = csvRows(text);
  const col = rows[0].indexOf('customer_code');
  assert.ok(col >= 0, 'customer_code column');
  return { header: rows[0], codes: rows.slice(1).map((r) => r[col]) };
}

const expected = (prefix) => Array.from({ length: ROWS }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);

test('export.csv streams more rows than a page with chunked transfer: every row of the scope once, hidden fields left out', async () => {
  const n = await north.get('/api/v1/accounts/export.csv', { raw: true });
  assert.equal(n.status, 200, n.text);
  assert.equal(n.headers.get('transfer-encoding'), 'chunked');
  assert.equal(n.headers.get('content-length'), null);
  assert.match(n.headers.get('content-disposition'), /attachment; filename="accounts\.csv"/);
  const mine = codesOf(n.text);
  assert.deepEqual(mine.codes.sort(), expected('NORTH'), 'each own-team row exactly once, no other team\'s');
  assert.ok(!mine.header.includes('bank_account') && !n.text.includes(BANK), 'hidden field left out');

  const a = await admin.get('/api/v1/accounts/export.csv', { raw: true });
  assert.equal(a.status, 200);
  const all = codesOf(a.text);
  assert.deepEqual(all.codes.sort(), [...expected('NORTH'), ...expected('SOUTH')]);
  assert.ok(all.header.includes('bank_account') && a.text.includes(BANK), 'the administrator sees it');

  // Filter and sort apply across pages.
  const f = await south.get(`/api/v1/accounts/export.csv?${qs({ filter: { field: 'customer_code', op: 'starts_with', value: 'SOUTH-01' }, sort: '-customer_code', fields: 'customer_code' })}`, { raw: true });
  assert.deepEqual(csvRows(f.text).slice(1).map((r) => r[0]), expected('SOUTH').filter((c) => c.startsWith('SOUTH-01')).reverse());
  // Errors in the request are still answered as problem+json, before anything is streamed.
  assertProblem(await north.get(`/api/v1/accounts/export.csv?${qs({ sort: 'nope' })}`), 400, 'bad_request', 'sort');
  assertProblem(await srv.request('GET', '/api/v1/accounts/export.csv'), 401, 'unauthenticated');
});

test('export.vcf streams every row of the scope as a vCard', async () => {
  const r = await south.get('/api/v1/accounts/export.vcf', { raw: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('transfer-encoding'), 'chunked');
  const cards = r.text.split('BEGIN:VCARD').length - 1;
  assert.equal(cards, ROWS);
  assert.equal(r.text.split('END:VCARD').length - 1, ROWS, 'the last card is complete');
  assert.ok(!r.text.includes('NORTH '), 'no other team\'s records');
});

test('export.xlsx is sent from its temporary file: a complete workbook', async () => {
  const r = await north.get('/api/v1/accounts/export.xlsx', { raw: true });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([...r.body.subarray(0, 2)], [0x50, 0x4b], 'a zip file');
  // The zip's end-of-central-directory record is there: the file is whole.
  assert.ok(r.body.subarray(r.body.length - 22).readUInt32LE(0) === 0x06054b50, 'zip ends with its directory');
});

test('FailingExport: a client that disconnects mid-download stops the export', async () => {
  const full = (await admin.get('/api/v1/accounts/export.csv', { raw: true })).body.length;
  const id = `export-disconnect-${process.pid}`;
  const url = new URL('/api/v1/accounts/export.csv', srv.url);
  const got = await new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${admin.token}`, 'x-request-id': id } }, (res) => {
      assert.equal(res.statusCode, 200);
      res.once('data', (chunk) => { req.destroy(); resolve(chunk.length); });
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
  });
  assert.ok(got > 0);
  const line = new RegExp(`request ${id}: GET /api/v1/accounts/export.csv: body cut off after (\\d+) bytes: the export's receiver went away`);
  let m = null;
  for (let i = 0; i < 200 && !(m = line.exec(srv.output)); i++) await sleep(100);
  assert.ok(m, `the server logs that the export stopped:\n${srv.output.slice(-2000)}`);
  assert.ok(Number(m[1]) < full, `stopped early: ${m[1]} of ${full} bytes sent`);
  // The server goes on serving.
  assert.equal((await north.get('/api/v1/accounts?limit=1')).status, 200);
});
