#!/usr/bin/env python3
"""The end-of-import builds on a kept database (KEEP=1 EXPORT=0 bench/import.sh N), with the
server writer's PRAGMAs (WAL, synchronous=FULL, temp_store, 256 MiB map, no autocheckpoint).

  bench/import_build.py DB indexes THREADS CACHE_MIB TEMP ONE_TX
      drops the account table's non-unique indexes and builds them again as an import into a
      nearly empty table does (each CREATE INDEX in a write transaction of its own, or all in
      one: ONE_TX=1), with PRAGMA threads=THREADS (the sorter's helper threads) and a
      CACHE_MIB cache; prints the build's wall and CPU seconds (helper threads included), each
      index's, the checkpoint after it and the peak RSS. Changes DB (the same indexes again).
  bench/import_build.py DB terms THREADS TEMP
      copies account_terms into a new table of its layout with a forced sort
      (ORDER BY term || '', id DESC: what a sorted build from unsorted rows costs) in one
      write transaction, prints wall and CPU seconds, then drops the copy.
"""
import os
import resource
import sqlite3
import sys
import time


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def connect(db, cache_mib, temp, threads):
    c = sqlite3.connect(db, isolation_level=None)
    for p in ['journal_mode=WAL', 'synchronous=FULL', f'cache_size=-{cache_mib * 1024}',
              f'temp_store={temp}', 'mmap_size=268435456', 'wal_autocheckpoint=0',
              f'threads={threads}']:
        c.execute('PRAGMA ' + p)
    return c


def indexes(db, threads, cache_mib, temp, one):
    c = connect(db, cache_mib, temp, threads)
    ddl = list(c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                         "tbl_name = 'account' AND sql IS NOT NULL AND "
                         "sql NOT LIKE 'CREATE UNIQUE%'"))
    c.execute('BEGIN IMMEDIATE')
    for name, _ in ddl:
        c.execute(f'DROP INDEX "{name}"')
    c.execute('COMMIT')
    c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    t0, c0 = time.time(), cpu()
    if one:
        c.execute('BEGIN IMMEDIATE')
    for name, sql in ddl:
        t, cc = time.time(), cpu()
        if not one:
            c.execute('BEGIN IMMEDIATE')
        c.execute(sql)
        if not one:
            c.execute('COMMIT')
        print(f'  {name}: {time.time() - t:.2f} s wall, {cpu() - cc:.2f} s CPU')
    if one:
        c.execute('COMMIT')
    t1, c1 = time.time(), cpu()
    c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    t2, c2 = time.time(), cpu()
    print(f'{len(ddl)} indexes, threads={threads} cache={cache_mib} MiB temp_store={temp} '
          f'one_tx={one}: build {t1 - t0:.1f} s wall, {c1 - c0:.1f} s CPU; checkpoint '
          f'{t2 - t1:.1f} s wall, {c2 - c1:.1f} s CPU; peak RSS '
          f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB; '
          f'load {os.getloadavg()[0]:.1f}')


def terms(db, threads, temp):
    c = connect(db, 64, temp, threads)
    c.execute('DROP TABLE IF EXISTS build_copy')
    c.execute('CREATE TABLE build_copy (term TEXT NOT NULL, id INTEGER NOT NULL, account_id '
              'INTEGER, sig INTEGER NOT NULL, PRIMARY KEY (term, id DESC)) WITHOUT ROWID')
    t0, c0 = time.time(), cpu()
    c.execute('BEGIN IMMEDIATE')
    c.execute("INSERT INTO build_copy SELECT term, id, account_id, sig FROM account_terms "
              "ORDER BY term || '', id DESC")
    c.execute('COMMIT')
    t1, c1 = time.time(), cpu()
    n = c.execute('SELECT count(*) FROM build_copy').fetchone()[0]
    c.execute('DROP TABLE build_copy')
    c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    print(f'threads={threads} temp_store={temp}: {n} term rows, sorted build {t1 - t0:.1f} s '
          f'wall, {c1 - c0:.1f} s CPU; peak RSS '
          f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB; '
          f'load {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    a = sys.argv
    if len(a) == 7 and a[2] == 'indexes':
        indexes(a[1], int(a[3]), int(a[4]), a[5], a[6] == '1')
    elif len(a) == 5 and a[2] == 'terms':
        terms(a[1], int(a[3]), a[4])
    else:
        sys.exit(__doc__)
