#!/usr/bin/env bash
# Which tables and indexes a durable create's WAL frames are: runs the create scenario
# (bench/wrk/create.lua, 64 connections) on a copy of a data set made by rapport-gen for SECONDS,
# kills the server with SIGKILL so that the log is not checkpointed away, reads the page number of
# every frame of the WAL's last generation and maps each page to its B-tree with SQLite's dbstat.
#   bench/wal_frames.sh DATA_DIR RUN_DIR [SECONDS]   SECONDS default 4
# RUN_DIR is replaced by a copy of DATA_DIR (creates change the data) and left for inspection.
# BENCH_RAPPORT: the server binary (default build/release/src/rapport). Needs sqlite3 (the
# command-line shell, with dbstat), python3 and wrk. Prints frames, commits, and per B-tree group:
# frames, their share, distinct pages.
set -euo pipefail
DATA=${1:?usage: bench/wal_frames.sh DATA_DIR RUN_DIR [SECONDS]}
RUN=${2:?usage: bench/wal_frames.sh DATA_DIR RUN_DIR [SECONDS]}
SECS=${3:-4}
RAPPORT=${BENCH_RAPPORT:-build/release/src/rapport}
[[ -f $DATA/rapport.db && -f $DATA/bench/token ]] || { echo "$DATA: no rapport-gen data set" >&2; exit 2; }
[[ $(realpath -m "$RUN") != $(realpath -m "$DATA") ]] || { echo "RUN_DIR must not be DATA_DIR" >&2; exit 2; }
WORK=$(mktemp -d /tmp/rapport-wal.XXXXXX)
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill -9 "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=bench/serve_copy.sh
source "$(dirname "$0")/serve_copy.sh"
serve_copy "$DATA" "$RUN" "$WORK/server.log"
port=$PORT
BENCH_DIR=$RUN/bench wrk -t2 -c64 -d"${SECS}s" -s bench/wrk/create.lua "http://127.0.0.1:$port" |
  grep -E 'requests in|Non-2xx' || true
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

# The WAL's header: page size at 8, salts at 16; a frame: page number, commit size (non-zero on a
# commit's last frame), the two salts, checksums, then the page. A frame with other salts is of
# an earlier generation of the log (before a checkpoint restarted it).
python3 - "$RUN/rapport.db-wal" "$WORK/frames.csv" <<'PY'
import collections, struct, sys
data = open(sys.argv[1], 'rb').read()
page_size = struct.unpack('>I', data[8:12])[0]
salts = data[16:24]
pages, frames, commits, at = collections.Counter(), 0, 0, 32
while at + 24 + page_size <= len(data) and data[at + 8:at + 16] == salts:
    page, commit = struct.unpack('>II', data[at:at + 8])
    pages[page] += 1
    frames += 1
    commits += commit != 0
    at += 24 + page_size
print(f"frames {frames}, commits {commits}")
with open(sys.argv[2], 'w') as out:
    for page, n in pages.items():
        out.write(f"{page},{n}\n")
PY
sqlite3 "$RUN/rapport.db" \
  "CREATE TEMP TABLE f (pg INTEGER PRIMARY KEY, n INTEGER)" \
  ".mode csv" ".import $WORK/frames.csv f" ".mode list" \
  "SELECT g, frames, printf('%.1f%%', 100.0 * frames / (SELECT sum(n) FROM f)), pages FROM (
     SELECT CASE WHEN s.name GLOB 'ix_*' THEN substr(s.name, 1, instr(substr(s.name, 4), '__') + 2) || ' indexes'
                 WHEN s.name GLOB 'sqlite_autoindex_*' THEN substr(s.name, 18, length(s.name) - 19)
                 WHEN s.name GLOB '*_index_record' OR s.name GLOB 'audit_log_*'
                   THEN (SELECT tbl_name FROM sqlite_schema WHERE name = s.name)
                 ELSE s.name END AS g,
            sum(f.n) AS frames, count(*) AS pages
     FROM f JOIN dbstat AS s ON s.pageno = f.pg GROUP BY g) ORDER BY frames DESC"
