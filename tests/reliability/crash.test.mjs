// Crash consistency (issue 5, "Reliability harness"): four concurrent writer loops create
// accounts and update them while the server is kill -9'ed at random moments, ROUNDS times, and
// restarted on the same data dir. Afterwards, checked both in the database file (sqlite3 CLI)
// and through the API:
//   - every acknowledged create exists, with the acknowledged content or the one later
//     (unacknowledged, in-flight) update — never an older one;
//   - no row is half-written: every account of the test is complete (name, city, description
//     consistent with employees) and has one audit "create" row plus one "update" row per version;
//   - PRAGMA integrity_check prints ok.
// RAPPORT_LONG=1: 20 rounds; default (make test): 5. SQLite only (the file checks need sqlite3).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startServer, tempDir, addUser, createToken, request, sleep, sqliteOnly } from '../api/harness.mjs';

const execFileP = promisify(execFile);
const WRITERS = 4;
const ROUNDS = process.env.RAPPORT_LONG === '1' ? 20 : 5;

const servers = [];
after(async () => { for (const s of servers) await s.kill(); });

async function sql(db, query) {
  const { stdout } = await execFileP('sqlite3', ['-json', db, query], { timeout: 60_000, maxBuffer: 256 << 20 });
  return stdout.trim() ? JSON.parse(stdout) : [];
}

// The content a record must have after `n` updates of the writer loop.
const stateAt = (n) => ({ employees: n, description: `v${n}` });

test(`kill -9 at random moments, ${ROUNDS} rounds, ${WRITERS} writers: acknowledged writes survive whole, nothing half-written, integrity ok`,
  { skip: sqliteOnly('checks the database file with the sqlite3 CLI'), timeout: ROUNDS * 30_000 + 60_000 }, async () => {
    const dir = tempDir();
    const db = join(dir, 'rapport.db');
    await addUser(dir, 'crashwriter', { role: 'Administrator' });
    const token = await createToken(dir, 'crashwriter');
    // id → {acked: n updates acknowledged, pending: n+1 while an update is in flight at the kill}
    const records = new Map();
    const unacked = []; // names of creates in flight at a kill (may or may not exist)
    let total = 0;

    for (let round = 0; round < ROUNDS; round++) {
      // Odd rounds: the COMMIT's WAL sync beside the next batch (serve --wal-sync-beside).
      const srv = await startServer({ dataDir: dir, args: round % 2 ? ['--wal-sync-beside'] : [] });
      servers.push(srv);
      let dead = false;
      const call = async (method, path, body) => {
        try {
          return await request(srv.url, method, path, { token, body });
        } catch {
          dead = true; // refused or reset: the server is gone
          return null;
        }
      };
      const loops = Array.from({ length: WRITERS }, (_, w) => (async () => {
        for (let i = 0; !dead; i++) {
          const name = `cr r${round} w${w} #${i}`;
          const r = await call('POST', '/api/v1/accounts', { name, city: '重庆', ...stateAt(0) });
          if (!r) { unacked.push(name); break; }
          assert.equal(r.status, 201, `create → ${r.status} ${r.text}`);
          const rec = { id: r.json.id, name, acked: 0, pending: null };
          records.set(rec.id, rec);
          total++;
          const updates = i % 4; // 0..3 updates per record
          for (let u = 1; u <= updates && !dead; u++) {
            rec.pending = u;
            const p = await call('PATCH', `/api/v1/accounts/${rec.id}`, stateAt(u));
            if (!p) break;
            assert.equal(p.status, 200, `update → ${p.status} ${p.text}`);
            assert.equal(p.json.employees, u);
            rec.acked = u;
            rec.pending = null;
            total++;
          }
        }
      })());
      // Kill at a random moment once this round's writes are flowing.
      const before = total;
      for (let t = 0; t < 400 && total < before + 5; t++) await sleep(25);
      await sleep(30 + Math.floor(Math.random() * 700));
      await srv.kill();
      dead = true;
      await Promise.all(loops);
    }
    assert.ok(records.size >= ROUNDS, `too few acknowledged creates: ${records.size}`);

    // --- the database file, with no server running ---
    const integrity = await sql(db, 'PRAGMA integrity_check');
    assert.deepEqual(integrity.map((r) => r.integrity_check), ['ok']);
    const rows = await sql(db, `SELECT CAST(id AS TEXT) AS id, version, name, city, employees, description, deleted_at
      FROM account WHERE name LIKE 'cr r%'`);
    const audits = await sql(db, `SELECT CAST(record_id AS TEXT) AS id, action, COUNT(*) AS n FROM audit_log
      WHERE entity = 'account' GROUP BY record_id, action`);
    const auditOf = new Map();
    for (const a of audits) {
      const e = auditOf.get(a.id) || {};
      e[a.action] = a.n;
      auditOf.set(a.id, e);
    }
    const byId = new Map(rows.map((r) => [r.id, r]));
    const problems = [];
    // Every acknowledged create is there with its acknowledged state or the in-flight one.
    for (const rec of records.values()) {
      const row = byId.get(rec.id);
      if (!row) { problems.push(`acknowledged ${rec.id} (${rec.name}) lost`); continue; }
      if (row.name !== rec.name) problems.push(`${rec.id}: name ${row.name} ≠ ${rec.name}`);
      const ok = row.employees === rec.acked || (rec.pending !== null && row.employees === rec.pending);
      if (!ok) problems.push(`${rec.id}: employees ${row.employees}, acknowledged ${rec.acked}, pending ${rec.pending}`);
    }
    // Every row (acknowledged or not) is whole and has its audit trail.
    for (const row of rows) {
      if (row.city !== '重庆' || row.deleted_at !== null || !/^cr r\d+ w\d #\d+$/.test(row.name)) problems.push(`incomplete row ${JSON.stringify(row)}`);
      if (row.description !== stateAt(row.employees).description) problems.push(`torn row ${JSON.stringify(row)}`);
      if (row.version !== row.employees + 1) problems.push(`version ${row.version} for ${row.employees} updates: ${row.id}`);
      const a = auditOf.get(row.id) || {};
      if (a.create !== 1 || (a.update || 0) !== row.version - 1) problems.push(`audit of ${row.id} (version ${row.version}): ${JSON.stringify(a)}`);
      if (!records.has(row.id) && !unacked.includes(row.name)) problems.push(`row nobody wrote: ${JSON.stringify(row)}`);
    }
    // No audit row for an account that does not exist (a half-committed create).
    // (the data dir holds only this test's accounts)
    for (const id of auditOf.keys()) if (!byId.has(id)) problems.push(`audit rows for missing account ${id}`);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
    assert.ok(rows.length - records.size <= WRITERS * ROUNDS, `unacknowledged extras: ${rows.length - records.size}`);

    // --- and through the API after one more restart ---
    const srv = await startServer({ dataDir: dir });
    servers.push(srv);
    const sample = [...records.values()].sort(() => Math.random() - 0.5).slice(0, 25);
    for (const rec of sample) {
      const r = await request(srv.url, 'GET', `/api/v1/accounts/${rec.id}`, { token });
      assert.equal(r.status, 200, `GET ${rec.id} → ${r.status}`);
      assert.equal(r.json.name, rec.name);
      assert.ok(r.json.employees >= rec.acked);
    }
    await srv.stop();
    console.log(`# crash: ${ROUNDS} kills, ${records.size} acknowledged creates, ${total} acknowledged writes, ${rows.length} rows, integrity ok`);
  });
