// A large import answers once its last batch is committed; its records' term rows and the
// list indexes it set aside are built afterwards on the server's background term builder
// (RecordService::build_import_in_background). Here the threshold is lowered to 10,000 rows
// (serve --import-terms-after-rows) and the build's parts to a few term rows, so that the build
// runs for seconds after the answer:
// - the answer says "index_pending": true; every row is readable by id at once; search says
//   index_pending until the term rows are in, then finds every record without it;
// - the run's index_status is "building", then "complete" with index_done_at; the report says
//   the same on a line of its own;
// - an update and a delete after the answer, before the build ends: the records' final term
//   rows are exactly those of their current lists;
// - another import of the same entity while the build runs takes the ordinary path: its rows
//   are searchable at once, it answers index_pending too, and both runs end "complete";
// - the default sort's index (created_at) is back first, the other dropped list indexes when the
//   run says complete.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, tempDir, addUser, createToken, request, sleep, sqliteOnly } from './harness.mjs';
import { sql, csvOf as csvRows, imported, termState } from './term-state.mjs';

const ROWS = 12000; // the deferred path needs 10,000 rows (kImportDeferIndexesMinRows)
const csvOf = (prefix, rows = ROWS) => csvRows(prefix, rows, 'bg.example');
const servers = [];
after(async () => { for (const s of servers) await s.kill(); });

async function importCsv(srv, token, csv) {
  const r = await request(srv.url, 'POST', '/api/v1/accounts/import?mode=commit', {
    token, body: csv, headers: { 'content-type': 'text/csv' },
  });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function search(srv, token, q) {
  const r = await request(srv.url, 'GET', `/api/v1/search?q=${encodeURIComponent(q)}&entity=account`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function run(srv, token, id) {
  const r = await request(srv.url, 'GET', `/api/v1/import_runs/${id}`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function report(srv, token, id) {
  const r = await request(srv.url, 'GET', `/api/v1/imports/${id}/report.csv`, { token });
  assert.equal(r.status, 200, r.text);
  return r.text;
}

// Polls the run until its index_status is "complete" (the build's end), 2 minutes at most.
async function waitComplete(srv, token, id) {
  let r;
  for (let i = 0; i < 6000; i++) {
    r = await run(srv, token, id);
    if (r.index_status === 'complete') return r;
    await sleep(20);
  }
  assert.fail(`the background build did not end: ${JSON.stringify(r)}`);
}

const indexesSql = `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'account' ORDER BY name`;

// A server on a fresh data dir with user `name` (an administrator) and its token; `args` for
// serve. `db` is the SQLite file.
async function serverFor(name, args = []) {
  const dir = tempDir();
  await addUser(dir, name, { role: 'Administrator' });
  const token = await createToken(dir, name);
  const srv = await startServer({ dataDir: dir, args });
  servers.push(srv);
  return { srv, token, db: join(dir, 'rapport.db') };
}
const BUILD_ARGS = ['--import-terms-after-rows', '10000', '--term-build-part-rows', '10'];

test('R-IMPORT: a large import answers before its search index is built; search says index_pending until the background build ends; an update and a delete after the answer leave exactly the current term rows',
  { skip: sqliteOnly('the term rows are built after the load on SQLite'), timeout: 300_000 }, async (t) => {
    const { srv, token, db } = await serverFor('bgimporter', BUILD_ARGS);
    const indexesBefore = await sql(db, indexesSql);

    const answer = await importCsv(srv, token, csvOf('bgone'));
    assert.equal(answer.created, ROWS);
    assert.equal(answer.index_pending, true, JSON.stringify({ ...answer, columns: undefined }));
    // right after the answer: every row is there and readable by id, search says index_pending
    const [{ n }] = await sql(db, `SELECT count(*) AS n FROM (${imported('bgone')})`);
    assert.equal(n, ROWS);
    const [{ id: updated }] = await sql(db, `SELECT CAST(id AS TEXT) AS id FROM account WHERE customer_code = 'BGONE5990'`);
    const [{ id: deleted }] = await sql(db, `SELECT CAST(id AS TEXT) AS id FROM account WHERE customer_code = 'BGONE5991'`);
    const [{ id: last }] = await sql(db, `SELECT CAST(id AS TEXT) AS id FROM account WHERE customer_code = 'BGONE11999'`);
    const byId = await request(srv.url, 'GET', `/api/v1/accounts/${last}`, { token });
    assert.equal(byId.status, 200, byId.text);
    assert.equal(byId.json.name, 'bgone11999x Trading');
    const during = await search(srv, token, 'bgone5992x');
    assert.equal(during.index_pending, true, JSON.stringify(during));
    const building = await run(srv, token, answer.import_id);
    assert.equal(building.status, 'completed');
    assert.equal(building.index_status, 'building', JSON.stringify(building));
    assert.match(await report(srv, token, answer.import_id), /^\uFEFF?row,field,code,message\r\n,,search_index_building,/);
    // the default sort's index is built first (every list's first page), the others after the
    // term rows
    let made = [];
    for (let i = 0; i < 3000 && !made.some((x) => x.name === 'ix_account__created_at'); i++) {
      await sleep(10);
      made = await sql(db, indexesSql);
    }
    assert.ok(made.some((x) => x.name === 'ix_account__created_at'), JSON.stringify(made));
    assert.ok(!made.some((x) => x.name === 'ix_account__name__created_at'), JSON.stringify(made));
    assert.equal((await termState(db, 'bgone')).pending, 1, 'the term rows are still being built');
    // a list sorted by a field whose index was set aside works meanwhile
    const sorted = await request(srv.url, 'GET', '/api/v1/accounts?sort=-updated_at&limit=3', { token });
    assert.equal(sorted.status, 200, sorted.text);
    assert.equal(sorted.json.items.length, 3);

    // an update and a delete after the answer, before the build ends
    const patched = await request(srv.url, 'PATCH', `/api/v1/accounts/${updated}`, { token, body: { name: 'Renamedbg Holding' } });
    assert.equal(patched.status, 200, patched.text);
    const removed = await request(srv.url, 'DELETE', `/api/v1/accounts/${deleted}`, { token });
    assert.ok([200, 204].includes(removed.status), removed.text);
    assert.equal((await run(srv, token, answer.import_id)).index_status, 'building',
      'the build was over before the writes beside it (make its parts smaller)');

    const done = await waitComplete(srv, token, answer.import_id);
    assert.match(done.index_done_at, /^\d{4}-\d\d-\d\dT/);
    t.diagnostic(`finished ${done.finished_at}, search index complete ${done.index_done_at}`);
    assert.match(await report(srv, token, answer.import_id),
      new RegExp(`^\\uFEFF?row,field,code,message\\r\\n,,search_index_complete,the search index of these records was completed at ${done.index_done_at}\\r\\n`));
    assert.equal((await search(srv, token, 'bgone5992x')).index_pending, undefined);
    const state = await termState(db, 'bgone');
    assert.deepEqual({ ...state, rows: state.rows === state.listed }, { ...state, rows: true, stale: 0, pending: 0 });
    const [{ n: deletedRows }] = await sql(db, `SELECT count(*) AS n FROM account_terms WHERE id = ${deleted}`);
    assert.equal(deletedRows, 0, 'the deleted record has no term row');
    const [{ n: oldName }] = await sql(db, `SELECT count(*) AS n FROM account_terms WHERE id = ${updated} AND term = 'bgone5990x'`);
    assert.equal(oldName, 0, 'the updated record has no row of its old name');
    assert.deepEqual((await search(srv, token, 'renamedbg')).items.map((i) => i.id), [String(updated)]);
    assert.deepEqual((await search(srv, token, 'bgone5990x')).items, []);
    assert.deepEqual((await search(srv, token, 'bgone5991x')).items, []);
    for (const i of [0, 1, 777, 5989, 11999]) {
      const r = await search(srv, token, `bgone${i}x`);
      assert.equal(r.items.length, 1, `bgone${i}x: ${JSON.stringify(r)}`);
      assert.equal(r.index_pending, undefined);
    }
    // the list indexes the load set aside are back
    assert.deepEqual(await sql(db, indexesSql), indexesBefore);
  });

test('R-IMPORT: another import of the same entity while the background build runs takes the ordinary path and answers index_pending too; both runs end complete',
  { skip: sqliteOnly('the term rows are built after the load on SQLite'), timeout: 300_000 }, async () => {
    // parts of 10 term rows: the first build (about a minute) outlasts the second import by far
    const { srv, token, db } = await serverFor('bgsecond', BUILD_ARGS);
    const indexesBefore = await sql(db, indexesSql);
    const first = await importCsv(srv, token, csvOf('bgfirst'));
    assert.equal(first.index_pending, true);
    // large enough for the deferred path were the entity not pending: it takes the ordinary one
    const second = await importCsv(srv, token, csvOf('bgsecond', 10000));
    assert.equal(second.created, 10000);
    assert.equal(second.index_pending, true, 'the entity is still being indexed');
    const firstRun = await run(srv, token, first.import_id);
    assert.equal(firstRun.index_status, 'building', 'the first build was over before the second import answered');
    // the second import's records have their term rows at once (the ordinary path)
    const [{ n: secondRows }] = await sql(db, `SELECT count(*) AS n FROM account_terms WHERE id IN (${imported('bgsecond')})`);
    assert.ok(secondRows > 0);
    const hit = await search(srv, token, 'bgsecond9999x');
    assert.equal(hit.index_pending, true);
    assert.equal(hit.items.length, 1, JSON.stringify(hit));
    assert.equal((await run(srv, token, second.import_id)).index_status, 'building');

    await waitComplete(srv, token, first.import_id);
    assert.equal((await waitComplete(srv, token, second.import_id)).index_status, 'complete');
    const state = await termState(db, 'bg');
    assert.deepEqual({ ...state, rows: state.rows === state.listed }, { ...state, rows: true, stale: 0, pending: 0 });
    assert.deepEqual(await sql(db, indexesSql), indexesBefore);
    assert.equal((await search(srv, token, 'bgfirst11999x')).items.length, 1);
  });

test('R-IMPORT: an ordinary import answers index_pending false and its run has no index_status', { timeout: 60_000 }, async () => {
  const { srv, token } = await serverFor('bgsmall');
  const answer = await importCsv(srv, token, csvOf('bgsmall', 20));
  assert.equal(answer.created, 20);
  assert.equal(answer.index_pending, false);
  const r = await run(srv, token, answer.import_id);
  assert.equal(r.index_status ?? null, null, JSON.stringify(r));
  assert.doesNotMatch(await report(srv, token, answer.import_id), /search_index/);
  assert.equal((await search(srv, token, 'bgsmall7x')).items.length, 1);
});
