// A large CSV import into a nearly empty table writes its records' term lists only and builds
// their term rows after its last batch (serve --import-terms-after-rows; storage/term_build.h).
// Here the threshold is lowered to 10,000 rows and the build's parts to 10 term rows, so that the
// build takes long enough to be watched:
// - search meanwhile answers with "index_pending": true, and after the import finds every record
//   without it;
// - an update and a delete of imported records while the term rows are built leave exactly the
//   rows of the records' current lists (none stale, none of the deleted record);
// - lists narrowed by `q` say the same ("index_pending": true) while the rows are built;
// - kill -9 in the middle of the build: the term_build row is there, and the restarted server
//   answers at once (health, reads by id) while it builds the rest in the background, search
//   and lists with q saying index_pending until then; killed again during that build, the next
//   start goes on with it; in the end search finds every imported record.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, tempDir, addUser, createToken, request, sleep, sqliteOnly } from '../api/harness.mjs';
import { sql, csvOf as csvRows, imported, termState } from '../api/term-state.mjs';

const ROWS = 12000; // the deferred-index path needs 10,000 (kImportDeferIndexesMinRows)
const csvOf = (prefix, rows = ROWS) => csvRows(prefix, rows, 'terms.example');
const ARGS = ['--import-terms-after-rows', '10000', '--term-build-part-rows', '10'];
const servers = [];
after(async () => { for (const s of servers) await s.kill(); });

async function waitForLoad(srv, token) {
  let seen = 0;
  for (let t = 0; t < 4800 && seen < ROWS; t++) {
    await sleep(25);
    const runs = await request(srv.url, 'GET', '/api/v1/import_runs?limit=1', { token }).catch(() => null);
    seen = runs?.json?.items?.[0]?.created ?? 0;
  }
  assert.equal(seen, ROWS, 'the load did not finish in time');
}

async function listQ(srv, token, q) {
  const r = await request(srv.url, 'GET', `/api/v1/accounts?q=${encodeURIComponent(q)}`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function searchOne(srv, token, q) {
  const r = await request(srv.url, 'GET', `/api/v1/search?q=${encodeURIComponent(q)}&entity=account`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

test('R-IMPORT: search says index_pending while the term rows are built; an update and a delete beside the build leave exactly the current rows',
  { skip: sqliteOnly('the term rows are built after the load on SQLite'), timeout: 300_000 }, async (t) => {
    const dir = tempDir();
    const db = join(dir, 'rapport.db');
    await addUser(dir, 'termsimporter', { role: 'Administrator' });
    const token = await createToken(dir, 'termsimporter');
    const srv = await startServer({ dataDir: dir, args: ARGS });
    servers.push(srv);
    const importing = request(srv.url, 'POST', '/api/v1/accounts/import?mode=commit', {
      token, body: csvOf('tbuild'), headers: { 'content-type': 'text/csv' },
    });
    await waitForLoad(srv, token);
    // the load is committed, the build runs: an update and a delete of imported records
    const [{ id: updated }] = await sql(db, `SELECT CAST(id AS TEXT) AS id FROM account WHERE customer_code = 'TBUILD5990'`);
    const [{ id: deleted }] = await sql(db, `SELECT CAST(id AS TEXT) AS id FROM account WHERE customer_code = 'TBUILD5991'`);
    const during = await searchOne(srv, token, 'tbuild5992x');
    const listDuring = await listQ(srv, token, 'tbuild5992x');
    const patched = await request(srv.url, 'PATCH', `/api/v1/accounts/${updated}`, { token, body: { name: 'Renamedzz Holding' } });
    assert.equal(patched.status, 200, patched.text);
    const removed = await request(srv.url, 'DELETE', `/api/v1/accounts/${deleted}`, { token });
    assert.ok([200, 204].includes(removed.status), removed.text);
    // the term_build row is deleted at the build's end: still there, the writes were beside it
    assert.equal((await termState(db, 'tbuild')).pending, 1, 'the build was over before the writes beside it (make its parts smaller)');
    assert.equal(during.index_pending, true, JSON.stringify(during));
    assert.equal(listDuring.index_pending, true, JSON.stringify(listDuring));
    t.diagnostic(`during the build: ${JSON.stringify(during)}`);
    const res = await importing;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.created, ROWS);
    // serve answers the import before the build ends (tests/api/import-background.test.mjs)
    for (let i = 0; i < 6000 && (await searchOne(srv, token, 'tbuild1x')).index_pending; i++) await sleep(20);

    const state = await termState(db, 'tbuild');
    assert.deepEqual({ ...state, rows: state.rows === state.listed }, { ...state, rows: true, stale: 0, pending: 0 });
    const [{ n: deletedRows }] = await sql(db, `SELECT count(*) AS n FROM account_terms WHERE id = ${deleted}`);
    assert.equal(deletedRows, 0, 'the deleted record has no term row');
    const [{ n: oldName }] = await sql(db, `SELECT count(*) AS n FROM account_terms WHERE id = ${updated} AND term = 'tbuild5990x'`);
    assert.equal(oldName, 0, 'the updated record has no row of its old name');

    const renamed = await searchOne(srv, token, 'renamedzz');
    assert.deepEqual(renamed.items.map((i) => i.id), [String(updated)]);
    assert.equal(renamed.index_pending, undefined);
    const listAfter = await listQ(srv, token, 'tbuild5992x');
    assert.equal(listAfter.index_pending, undefined, JSON.stringify(listAfter));
    assert.deepEqual(listAfter.items.map((a) => a.customer_code), ['TBUILD5992']);
    assert.deepEqual((await searchOne(srv, token, 'tbuild5990x')).items, []);
    assert.deepEqual((await searchOne(srv, token, 'tbuild5991x')).items, []);
    for (const i of [0, 1, 777, 2500, 4999, 5989, 11999]) {
      const r = await searchOne(srv, token, `tbuild${i}x`);
      assert.equal(r.items.length, 1, `tbuild${i}x: ${JSON.stringify(r)}`);
      assert.equal(r.index_pending, undefined);
    }
  });

test('R-IMPORT: kill -9 while the term rows are built: the restarted server serves at once and builds the rest in the background; killed again, the next start goes on',
  { skip: sqliteOnly('checks the database file with the sqlite3 CLI'), timeout: 300_000 }, async (t) => {
    const dir = tempDir();
    const db = join(dir, 'rapport.db');
    await addUser(dir, 'termskiller', { role: 'Administrator' });
    const token = await createToken(dir, 'termskiller');
    let srv = await startServer({ dataDir: dir, args: ARGS });
    servers.push(srv);
    const indexes = `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'account' ORDER BY name`;
    const before = await sql(db, indexes);
    const importing = request(srv.url, 'POST', '/api/v1/accounts/import?mode=commit', {
      token, body: csvOf('tkill'), headers: { 'content-type': 'text/csv' },
    }).catch(() => null); // the connection dies with the server
    await waitForLoad(srv, token);
    // some term rows of the imported records are built, not all
    let built = 0;
    for (let i = 0; i < 2000 && built === 0; i++) {
      await sleep(10);
      built = (await termState(db, 'tkill')).rows;
    }
    assert.ok(built > 0, 'the build did not start');
    await srv.kill();
    await importing;
    const killed = await termState(db, 'tkill');
    t.diagnostic(`killed with ${killed.rows} of ${killed.listed} term rows built`);
    assert.equal(killed.pending, 1, 'killed mid-build: the term_build row is there');
    assert.ok(killed.rows < killed.listed, JSON.stringify(killed));
    const [{ n }] = await sql(db, `SELECT count(*) AS n FROM account_terms_of WHERE id IN (${imported('tkill')})`);
    assert.equal(n, ROWS, 'every committed record has its term list');

    // Restarted (parts of 10 term rows: the build takes seconds): it answers before the build ends.
    srv = await startServer({ dataDir: dir, args: ARGS });
    servers.push(srv);
    const health = await request(srv.url, 'GET', '/healthz');
    assert.equal(health.status, 200, health.text);
    const [{ id: some }] = await sql(db, `SELECT CAST(id AS TEXT) AS id FROM account WHERE customer_code = 'TKILL11999'`);
    const byId = await request(srv.url, 'GET', `/api/v1/accounts/${some}`, { token });
    assert.equal(byId.status, 200, byId.text);
    assert.equal(byId.json.customer_code, 'TKILL11999');
    const served = await termState(db, 'tkill');
    assert.equal(served.pending, 1, `the build was over before the server answered: ${JSON.stringify(served)}`);
    assert.equal((await searchOne(srv, token, 'tkill11999x')).index_pending, true);
    assert.equal((await listQ(srv, token, 'tkill11999x')).index_pending, true);
    // killed again during the background build: the term_build row stays, the next start goes on
    let more = served.rows;
    for (let i = 0; i < 2000 && more <= served.rows; i++) {
      await sleep(10);
      more = (await termState(db, 'tkill')).rows;
    }
    await srv.kill();
    const again = await termState(db, 'tkill');
    t.diagnostic(`killed again with ${again.rows} of ${again.listed} term rows built`);
    assert.equal(again.pending, 1, JSON.stringify(again));
    assert.ok(again.rows > killed.rows && again.rows < again.listed, JSON.stringify(again));

    srv = await startServer({ dataDir: dir });
    servers.push(srv);
    let r;
    for (let i = 0; i < 3000; i++) {
      r = await searchOne(srv, token, 'tkill2222x');
      if (r.index_pending === undefined) break;
      await sleep(20);
    }
    assert.equal(r.index_pending, undefined, 'the background build did not end');
    // the killed import's run (answered, its build killed twice) ends "complete" too
    let run;
    for (let i = 0; i < 500; i++) {
      run = (await request(srv.url, 'GET', '/api/v1/import_runs?limit=1', { token })).json.items[0];
      if (run.index_status === 'complete') break;
      await sleep(20);
    }
    assert.equal(run.status, 'completed');
    assert.equal(run.index_status, 'complete', JSON.stringify(run));
    assert.match(run.index_done_at, /^\d{4}-/);
    // the indexes the killed import dropped are made again (in the background, before the rows)
    assert.deepEqual(await sql(db, indexes), before);
    const state = await termState(db, 'tkill');
    assert.deepEqual({ ...state, rows: state.rows === state.listed }, { ...state, rows: true, stale: 0, pending: 0 });
    for (const i of [0, 1, 2222, 4999, 11999]) {
      const found = await searchOne(srv, token, `tkill${i}x`);
      assert.equal(found.items.length, 1, `tkill${i}x: ${JSON.stringify(found)}`);
      assert.equal(found.index_pending, undefined);
      const listed = await listQ(srv, token, `tkill${i}x`);
      assert.deepEqual(listed.items.map((a) => a.customer_code), [`TKILL${i}`]);
      assert.equal(listed.index_pending, undefined);
    }
  });
