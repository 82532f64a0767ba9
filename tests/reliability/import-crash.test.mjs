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

    // --- restarted: the imported records are searchable and found by phone ---
    srv = await startServer({ dataDir: dir });
    servers.push(srv);
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
  });
