#!/usr/bin/env python3
"""What SQLite alone needs to load an account import into Rapport's schema (session 14).

  bench/import_floor.py SRC_DB DST_DB VARIANT [ROWS] [BATCH]

SRC_DB: a database after `KEEP=1 EXPORT=0 bench/import.sh 100000` (the imported accounts and
their term, terms_of, audit, phone and match index rows are read out of it). DST_DB is created
(must not exist) with SRC_DB's exact schema (sqlite_master) and the server writer's PRAGMAs
(WAL, synchronous=FULL, 4096-byte pages, 64 MiB cache, temp_store=MEMORY, 256 MiB mmap, WAL
checkpointed at 131,072 frames as during a bulk import), and ROWS (default 1,000,000) accounts
are written in BATCH-row (default 5,000) transactions: the source accounts repeated with new
ids (+k * 1e11), customer codes (suffix -k) and audit ids, created_at/updated_at the batch's
time. VARIANT:
  a  every table and index as now; a batch's term rows sorted by (term, id DESC), as the server
  b  as a, but term rows go to an unindexed staging table and into account_terms at the end
     with one INSERT ... SELECT ... ORDER BY term, id DESC
  c  as b, and the non-unique secondary indexes (the account's 17, audit_log_record,
     phone_index_record, match_index_record) are dropped before the load and created after it
     (unique indexes and primary keys stay)
  d  as a without account_terms (no term rows at all)
Prints seconds (wall and this process's CPU) every 100,000 rows and for the end phase; RESULT
counts the batches' write transactions (SQLite and Python's parameter binding, not building the
rows in Python) and the end phase.
"""
import os
import sqlite3
import sys
import time

src_path, dst_path, variant = sys.argv[1], sys.argv[2], sys.argv[3]
rows_wanted = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000_000
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 5000
assert variant in "abcd" and len(variant) == 1
assert not os.path.exists(dst_path)

src = sqlite3.connect(src_path)
# the imported accounts: all but the data set's first 500 (rapport-gen --scale tiny)
ids = [r[0] for r in src.execute("SELECT id FROM account ORDER BY id")][500:]
first = ids[0]
acc_cols = [r[1] for r in src.execute("PRAGMA table_info(account)")]
accounts = list(src.execute("SELECT * FROM account WHERE id >= ? ORDER BY id", (first,)))
by_id = {}
for name, sql in [
    ("terms", "SELECT term, id, account_id, sig FROM account_terms WHERE id >= ?"),
    ("terms_of", "SELECT id, account_id, terms FROM account_terms_of WHERE id >= ?"),
    ("audit", "SELECT * FROM audit_log WHERE entity = 'account' AND record_id >= ?"),
    ("phone", "SELECT * FROM phone_index WHERE entity = 'account' AND record_id >= ?"),
    ("match", "SELECT key, entity, record_id FROM match_index WHERE entity = 'account' AND record_id >= ?"),
]:
    rid = {"terms": 1, "terms_of": 0, "audit": 2, "phone": 2, "match": 2}[name]
    for r in src.execute(sql, (first,)):
        by_id.setdefault(r[rid], {}).setdefault(name, []).append(r)
schema = [r[0] for r in src.execute(
    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]
src.close()
print(f"source: {len(accounts)} accounts, "
      f"{sum(len(v.get('terms', [])) for v in by_id.values())} term rows", flush=True)

db = sqlite3.connect(dst_path, isolation_level=None)
for p in ["PRAGMA page_size=4096", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
          "PRAGMA foreign_keys=ON", "PRAGMA cache_size=-65536", "PRAGMA temp_store=MEMORY",
          "PRAGMA mmap_size=268435456", "PRAGMA wal_autocheckpoint=131072"]:
    db.execute(p).fetchall()
secondary = []  # (name, sql) of the indexes variant c builds after the load
for sql in schema:
    db.execute(sql)
if variant == "c":
    for name, sql in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND "
            "tbl_name IN ('account', 'audit_log', 'phone_index', 'match_index') AND "
            "sql NOT LIKE 'CREATE UNIQUE%'").fetchall():
        secondary.append((name, sql))
        db.execute(f'DROP INDEX "{name}"')
if variant in "bc":
    db.execute("CREATE TABLE account_terms_in (term TEXT NOT NULL, id INTEGER NOT NULL, "
               "account_id INTEGER, sig INTEGER NOT NULL)")
if variant == "d":
    db.execute("DROP TABLE account_terms")
terms_table = "account_terms_in" if variant in "bc" else "account_terms"

ci, ui, idi, cc = (acc_cols.index("created_at"), acc_cols.index("updated_at"),
                   acc_cols.index("id"), acc_cols.index("customer_code"))
ins_account = f"INSERT OR FAIL INTO account VALUES ({', '.join('?' * len(acc_cols))})"
t0, c0 = time.time(), time.process_time()
done = 0
db_wall = db_cpu = 0.0  # inside the write transactions only (SQLite and the parameter binding)
base_ms = 1_795_000_000_000
while done < rows_wanted:
    n = min(batch, rows_wanted - done)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base_ms + done) // 1000)) + \
        f".{(base_ms + done) % 1000:03d}Z"
    acc, terms, terms_of, audit, phone, match = [], [], [], [], [], []
    for j in range(done, done + n):
        k, src_row = divmod(j, len(accounts))
        row = list(accounts[src_row])
        off = k * 100_000_000_000
        old = row[idi]
        row[idi] = old + off
        row[ci] = row[ui] = stamp
        if k and row[cc] is not None:
            row[cc] = f"{row[cc]}-{k}"
        acc.append(row)
        d = by_id.get(old, {})
        terms += [(t, i + off, a + off if a else a, s) for t, i, a, s in d.get("terms", [])]
        terms_of += [(i + off, a + off if a else a, t) for i, a, t in d.get("terms_of", [])]
        audit += [(r[0] + off, r[1], r[2] + off) + (r[3:7]) + (stamp,) + r[8:]
                  for r in d.get("audit", [])]
        phone += [(r[0], r[1], r[2] + off, r[3] + off if r[3] else r[3]) for r in d.get("phone", [])]
        match += [(r[0], r[1], r[2] + off) for r in d.get("match", [])]
    if variant != "d":
        terms.sort(key=lambda r: (r[0], -r[1]))
    phone.sort()
    match.sort()
    w0, p0 = time.time(), time.process_time()
    db.execute("BEGIN IMMEDIATE")
    db.executemany(ins_account, acc)
    db.executemany("INSERT OR FAIL INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", audit)
    db.executemany("INSERT OR FAIL INTO phone_index VALUES (?, ?, ?, ?)", phone)
    db.executemany("INSERT OR FAIL INTO match_index VALUES (?, ?, ?)", match)
    db.executemany("INSERT OR FAIL INTO account_terms_of VALUES (?, ?, ?)", terms_of)
    if variant != "d":
        db.executemany(f"INSERT OR FAIL INTO {terms_table} VALUES (?, ?, ?, ?)", terms)
    db.execute("COMMIT")
    db_wall += time.time() - w0
    db_cpu += time.process_time() - p0
    done += n
    if done % 100_000 == 0 or done == rows_wanted:
        print(f"{variant} {done} rows: {time.time() - t0:.1f} s wall, "
              f"{time.process_time() - c0:.1f} s CPU; in transactions {db_wall:.1f} s wall, "
              f"{db_cpu:.1f} s CPU", flush=True)
load_wall, load_cpu = db_wall, db_cpu  # the batches' transactions, not building their rows
t1, c1 = time.time(), time.process_time()
if variant in "bc":
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO account_terms SELECT term, id, account_id, sig FROM account_terms_in "
               "ORDER BY term, id DESC")
    db.execute("DROP TABLE account_terms_in")
    db.execute("COMMIT")
    print(f"{variant} terms moved: {time.time() - t1:.1f} s wall, "
          f"{time.process_time() - c1:.1f} s CPU", flush=True)
for name, sql in secondary:
    db.execute(sql)
if secondary:
    print(f"{variant} {len(secondary)} indexes built: {time.time() - t1:.1f} s wall since the "
          f"load, {time.process_time() - c1:.1f} s CPU", flush=True)
db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
end_wall, end_cpu = time.time() - t1, time.process_time() - c1
total = load_wall + end_wall
print(f"RESULT {variant} {rows_wanted} rows: load {load_wall:.1f} s wall ({load_cpu:.1f} s CPU), "
      f"end {end_wall:.1f} s wall ({end_cpu:.1f} s CPU), total {total:.1f} s wall, "
      f"{load_cpu + end_cpu:.1f} s CPU, {(load_cpu + end_cpu) / rows_wanted * 1e6:.0f} µs CPU a row; "
      f"database {os.path.getsize(dst_path) / 1e9:.2f} GB", flush=True)
db.close()
