// kill -9 in the middle of a bulk import: the batches committed before the kill are there whole —
// each record with its audit entry, term list and term rows, phone and match index rows — and
// nothing of the batch in flight; the database passes its integrity check and, restarted, the
// imported records are found by search.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { startServer, tempDir, addUser, createToken, request, sleep, sqliteOnly } from '../api/harness.mjs';

const execFileP = promisify(execFile);
const ROWS = 14000; // batches of 5,000 (kImportBatchRows): 5,000, 10,000, then the last 4,000
const servers = [];
after(async () => { for (const s of servers) await s.kill(); });

async function sql(db, query) {
  const { stdout } = await execFileP('sqlite3', ['-json', db, query], { timeout: 60_000, maxBuffer: 64 << 20 });
  return stdout.trim() ? JSON.parse(stdout) : [];
}

test('kill -9 during a bulk import: committed batches are whole with every index row, the batch in flight left no trace',
  { skip: sqliteOnly('checks the database file with the sqlite3 CLI'), timeout: 240_000 }, async (t) => {
    const dir = tempDir();
    const db = join(dir, 'rapport.db');
    await addUser(dir, 'crashimporter', { role: 'Administrator' });
    const token = await createToken(dir, 'crashimporter');
    let csv = 'name,customer_code,city,phones,emails\r\n';
    for (let i = 0; i < ROWS; i++) {
      csv += `Crashimport ${i},CI${i},杭州,+86 139 ${String(10000000 + i).slice(0, 4)} ${String(10000000 + i).slice(4)},ci${i}@crash.example\r\n`;
    }
    let srv = await startServer({ dataDir: dir });
    servers.push(srv);
    const beforeImport = (await sql(db, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'account' ORDER BY name`)).map((r) => r.name);
    assert.ok(beforeImport.includes('ix_account__city__created_at'), beforeImport.join(', '));
    const importing = request(srv.url, 'POST', '/api/v1/accounts/import?mode=commit', {
      token, body: csv, headers: { 'content-type': 'text/csv' },
    }).catch(() => null); // the connection dies with the server
    // kill once the first batch is committed (its run record counts it)
    let seen = 0;
    for (let t = 0; t < 2400 && seen < 5000; t++) {
      await sleep(50);
      const runs = await request(srv.url, 'GET', '/api/v1/import_runs?limit=1', { token }).catch(() => null);
      seen = runs?.json?.items?.[0]?.created ?? 0;
    }
    assert.ok(seen >= 5000, `no batch committed in time (created ${seen})`);
    await srv.kill();
    await importing;

    // --- the database file, with no server running ---
    const integrity = await sql(db, 'PRAGMA integrity_check');
    assert.deepEqual(integrity.map((r) => r.integrity_check), ['ok']);
    const ids = `SELECT id FROM account WHERE customer_code LIKE 'CI%'`;
    const [{ n }] = await sql(db, `SELECT count(*) AS n FROM account WHERE customer_code LIKE 'CI%'`);
    assert.ok([5000, 10000, ROWS].includes(n), `whole batches only: ${n} records`);
    t.diagnostic(`${n} of ${ROWS} rows committed before the kill`);
    // An import into an empty table builds the account's non-unique indexes after its last
    // batch (kImportDeferIndexesMinRows): killed before that, they are missing; the unique ones
    // (customer_code, external_id) never are.
    const indexes = `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'account' ORDER BY name`;
    const killedWith = (await sql(db, indexes)).map((r) => r.name);
    assert.ok(killedWith.includes('ix_account__customer_code') && killedWith.includes('ix_account__external_id'),
      killedWith.join(', '));
    if (n < ROWS) assert.ok(!killedWith.includes('ix_account__city__created_at'), killedWith.join(', '));
    const [counts] = await sql(db, `SELECT
      (SELECT count(*) FROM audit_log WHERE entity = 'account' AND action = 'create' AND record_id IN (${ids})) AS audits,
      (SELECT count(*) FROM account_terms_of WHERE id IN (${ids})) AS lists,
      (SELECT count(DISTINCT id) FROM account_terms WHERE id IN (${ids})) AS termed,
      (SELECT count(*) FROM phone_index WHERE entity = 'account' AND record_id IN (${ids})) AS phones,
      (SELECT count(DISTINCT record_id) FROM match_index WHERE entity = 'account' AND record_id IN (${ids})) AS matched,
      (SELECT count(*) FROM account_terms WHERE id NOT IN (SELECT id FROM account)) AS orphan_terms,
      (SELECT count(*) FROM phone_index WHERE entity = 'account' AND record_id NOT IN (SELECT id FROM account)) AS orphan_phones`);
    assert.deepEqual(counts, { audits: n, lists: n, termed: n, phones: n, matched: n, orphan_terms: 0, orphan_phones: 0 });
    // the record's terms are those its list names: none lost, none extra
    const [{ listed }] = await sql(db, `SELECT sum(length(terms) - length(replace(terms, char(10), '')) - 1) AS listed
      FROM account_terms_of WHERE id IN (${ids})`);
    const [{ rows }] = await sql(db, `SELECT count(*) AS rows FROM account_terms WHERE id IN (${ids})`);
    assert.equal(rows, listed);

    // --- restarted: start-up re-created the indexes; the imported records are searchable and
    // found by phone and by a filter on an indexed field ---
    srv = await startServer({ dataDir: dir });
    servers.push(srv);
    const restartedWith = (await sql(db, indexes)).map((r) => r.name);
    assert.deepEqual(restartedWith, beforeImport);
    const cityFilter = encodeURIComponent(JSON.stringify({ field: 'city', op: '=', value: '杭州' }));
    const inCity = await request(srv.url, 'GET', `/api/v1/accounts?filter=${cityFilter}&limit=1`, { token });
    assert.equal(inCity.status, 200, inCity.text);
    assert.equal(inCity.json.items.length, 1, inCity.text);
    assert.match(inCity.json.items[0].name, /^Crashimport /);
    const last = n - 1;
    const found = await request(srv.url, 'GET', `/api/v1/search?q=${encodeURIComponent(`Crashimport ${last}`)}`, { token });
    assert.equal(found.status, 200, found.text);
    assert.ok(JSON.stringify(found.json).includes(`Crashimport ${last}`), `search finds record ${last}: ${found.text.slice(0, 300)}`);
    const number = `+86139${String(10000000 + last)}`;
    const byPhone = await request(srv.url, 'GET', `/api/v1/lookup/phone?number=${encodeURIComponent(number)}`, { token });
    assert.equal(byPhone.status, 200, byPhone.text);
    assert.ok(byPhone.text.includes(`Crashimport ${last}`), `phone lookup finds record ${last}: ${byPhone.text.slice(0, 300)}`);
  });

// While an import runs, the writer checkpoints the WAL only every few batches (its batches rewrite
// the same term-index pages); at the import's end the whole WAL is copied into the database file
// and the file truncated, so no later request pays for the import's checkpoint and the disk space
// comes back. Without that end, a 14,000-row import leaves tens of MB of WAL behind.
test('a committed import ends with its WAL copied into the database and the WAL file truncated',
  { skip: sqliteOnly('reads the SQLite WAL file'), timeout: 240_000 }, async () => {
    const dir = tempDir();
    const db = join(dir, 'rapport.db');
    await addUser(dir, 'walimporter', { role: 'Administrator' });
    const token = await createToken(dir, 'walimporter');
    let csv = 'name,customer_code,city,phones,emails\r\n';
    for (let i = 0; i < ROWS; i++) {
      csv += `Walimport ${i},WI${i},杭州,+86 137 ${String(10000000 + i).slice(0, 4)} ${String(10000000 + i).slice(4)},wi${i}@wal.example\r\n`;
    }
    const srv = await startServer({ dataDir: dir });
    servers.push(srv);
    const r = await request(srv.url, 'POST', '/api/v1/accounts/import?mode=commit', {
      token, body: csv, headers: { 'content-type': 'text/csv' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.created, ROWS);
    const wal = statSync(`${db}-wal`).size;
    // empty unless a write came after the import's end (a session's bookkeeping): far below one batch
    assert.ok(wal < 1 << 20, `WAL left at ${wal} bytes`);
    const [{ n }] = await sql(db, `SELECT count(*) AS n FROM account WHERE customer_code LIKE 'WI%'`);
    assert.equal(n, ROWS);
    // the indexes it built after its last batch (an import into an empty table) are all there
    const indexes = await sql(db, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'account'`);
    assert.equal(indexes.length, 19, indexes.map((r) => r.name).join(', '));
    const { stdout: plan } = await execFileP('sqlite3', [db,
      `EXPLAIN QUERY PLAN SELECT id FROM account WHERE city = '杭州' ORDER BY created_at DESC LIMIT 5`]);
    assert.ok(plan.includes('ix_account__city__created_at'), plan);
  });

// An import of at least kImportDeferIndexesMinRows rows into a table holding fewer than a tenth
// of that drops the table's non-unique indexes and builds them after its last batch. Creates,
// updates and deletes beside it stay correct: the built indexes hold their rows (a filter on an
// indexed field, answered from the index, finds the new and the changed record and not the
// deleted one); the unique key is enforced throughout.
test('an import into an empty table builds its indexes after the last batch; writes beside it are in them',
  { skip: sqliteOnly('reads the schema with the sqlite3 CLI'), timeout: 240_000 }, async () => {
    const dir = tempDir();
    const db = join(dir, 'rapport.db');
    await addUser(dir, 'deferimporter', { role: 'Administrator' });
    const token = await createToken(dir, 'deferimporter');
    let csv = 'name,customer_code,city\r\n';
    for (let i = 0; i < ROWS; i++) csv += `Deferimport ${i},DI${i},杭州\r\n`;
    const srv = await startServer({ dataDir: dir });
    servers.push(srv);
    const indexes = `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'account' ORDER BY name`;
    const before = (await sql(db, indexes)).map((r) => r.name);
    let finished = false;
    const importing = request(srv.url, 'POST', '/api/v1/accounts/import?mode=commit', {
      token, body: csv, headers: { 'content-type': 'text/csv' },
    }).finally(() => { finished = true; });
    let seen = 0;
    for (let t = 0; t < 2400 && seen < 5000 && !finished; t++) {
      await sleep(50);
      const runs = await request(srv.url, 'GET', '/api/v1/import_runs?limit=1', { token });
      seen = runs.json?.items?.[0]?.created ?? 0;
    }
    // beside the import: a create, an update and a delete of imported records, a duplicate key
    // a batch still to write (the run counts fewer rows): its indexes are not built yet
    const runNow = await request(srv.url, 'GET', '/api/v1/import_runs?limit=1', { token });
    const midway = !finished && (runNow.json?.items?.[0]?.created ?? ROWS) < ROWS;
    const during = (await sql(db, indexes)).map((r) => r.name);
    const created = await request(srv.url, 'POST', '/api/v1/accounts', { token, body: { name: 'Beside import', city: '宁波' } });
    assert.equal(created.status, 201, created.text);
    const [first, second] = await sql(db, `SELECT CAST(id AS TEXT) AS id FROM account WHERE customer_code IN ('DI0', 'DI1') ORDER BY customer_code`);
    const updated = await request(srv.url, 'PATCH', `/api/v1/accounts/${first.id}`, { token, body: { city: '宁波' } });
    assert.equal(updated.status, 200, updated.text);
    const deleted = await request(srv.url, 'DELETE', `/api/v1/accounts/${second.id}`, { token });
    assert.ok([200, 204].includes(deleted.status), deleted.text);
    const dup = await request(srv.url, 'POST', '/api/v1/accounts', { token, body: { name: 'Same code', customer_code: 'DI2' } });
    assert.equal(dup.status, 409, dup.text);
    const r = await importing;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.created, ROWS);
    if (midway) assert.ok(!during.includes('ix_account__city__created_at'), during.join(', '));
    assert.deepEqual((await sql(db, indexes)).map((x) => x.name), before);
    const filter = encodeURIComponent(JSON.stringify({ field: 'city', op: '=', value: '宁波' }));
    const list = await request(srv.url, 'GET', `/api/v1/accounts?filter=${filter}&limit=10`, { token });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.items.map((x) => x.name).sort(), ['Beside import', 'Deferimport 0']);
    const gone = encodeURIComponent(JSON.stringify({ field: 'customer_code', op: '=', value: 'DI1' }));
    const none = await request(srv.url, 'GET', `/api/v1/accounts?filter=${gone}`, { token });
    assert.equal(none.json.items.length, 0, none.text);
    assert.deepEqual(await sql(db, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  });

// A table that holds a tenth of the file's rows or more keeps every index while the import runs.
test('an import into a table that is not nearly empty keeps its indexes throughout',
  { skip: sqliteOnly('reads the schema with the sqlite3 CLI'), timeout: 240_000 }, async () => {
    const dir = tempDir();
    const db = join(dir, 'rapport.db');
    await addUser(dir, 'keepimporter', { role: 'Administrator' });
    const token = await createToken(dir, 'keepimporter');
    const srv = await startServer({ dataDir: dir });
    servers.push(srv);
    let first = 'name,customer_code\r\n';
    for (let i = 0; i < ROWS / 10; i++) first += `Earlier ${i},EA${i}\r\n`;
    const r1 = await request(srv.url, 'POST', '/api/v1/accounts/import?mode=commit', {
      token, body: first, headers: { 'content-type': 'text/csv' },
    });
    assert.equal(r1.status, 200, r1.text);
    const indexes = `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'account' ORDER BY name`;
    const before = (await sql(db, indexes)).map((r) => r.name);
    let csv = 'name,customer_code,city\r\n';
    for (let i = 0; i < ROWS; i++) csv += `Keepimport ${i},KI${i},杭州\r\n`;
    let finished = false;
    const importing = request(srv.url, 'POST', '/api/v1/accounts/import?mode=commit', {
      token, body: csv, headers: { 'content-type': 'text/csv' },
    }).finally(() => { finished = true; });
    let looks = 0;
    while (!finished) {
      assert.deepEqual((await sql(db, indexes)).map((r) => r.name), before);
      looks++;
      await sleep(20);
    }
    const r = await importing;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.created, ROWS);
    assert.ok(looks > 3, `looked ${looks} times`);
  });
