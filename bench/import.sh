#!/usr/bin/env bash
# Import throughput: POST /api/v1/accounts/import of a generated CSV into a fresh copy of a small
# data set (rapport-gen --scale tiny: 500 accounts, so dedupe has existing data to check against).
#   bench/import.sh [ROWS] [MODE]      ROWS default 100000, MODE commit (default) or dry_run
# After a commit it also exports the whole account list (GET /api/v1/accounts/export.csv) and
# prints rows/s and server CPU seconds of that, and the server's peak RSS (EXPORT=0 skips it).
# Prints rows, seconds and rows/s (wall time of the request, client side) and the server's CPU
# seconds for it (user + system, the steadier figure on a shared machine); of a large import that
# answers before its search index is built (index_pending), also the time and CPU until its run
# says index_status complete (the background build included). Needs a built
# build/release (cmake --build build/release --target rapport rapport-gen). PERF=FILE records a
# call-graph profile of the server (perf record -g, or PERF_ARGS) during the import request into
# FILE. KEEP=1 keeps the data directory after the server stopped (prints its path; delete it
# yourself). AGAIN=1 then imports a file of the same customer codes with other values (every
# row an upsert that changes the first pass's record).
set -euo pipefail
ROWS=${1:-100000}
MODE=${2:-commit}
BUILD=${BUILD:-build/release}  # RAPPORT=path/to/rapport measures another server binary
WORK=$(mktemp -d /tmp/rapport-import.XXXXXX)
SERVER_PID=
# KEEP=1 keeps the data directory (the server stopped) and prints its path at the end
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null
  if [[ ${KEEP:-0} != 0 ]]; then
    [[ -n $SERVER_PID ]] && wait "$SERVER_PID" 2>/dev/null
    echo "kept: $WORK/data"
  else rm -rf "$WORK"; fi
}
trap cleanup EXIT
"$BUILD/bench/rapport-gen" --data "$WORK/data" --scale tiny >/dev/null 2>&1
TOKEN=$(cat "$WORK/data/bench/token")
# Key accounts name an account manager (account.json's required_when): the token's user, whose id
# is new with each data set: the file is written in the work directory each run (v3: with the
# account_manager_id column), or kept per user id under IMPORT_CSV_DIR.
MANAGER=$(cat "$WORK/data/bench/user_id")
CSV=${IMPORT_CSV_DIR:-$WORK}/rapport-import-v3-$ROWS-$MANAGER.csv
[[ -s $CSV ]] || "$BUILD/bench/rapport-gen" --import-csv "$CSV" --accounts "$ROWS" --account-manager "$MANAGER"
: >"$WORK/server.log"  # exists before the server opens it (the loop below reads it)
# SERVE_ARGS: more options of serve (e.g. "--import-terms-after-rows 0": term rows row by row)
# shellcheck disable=SC2086
"${RAPPORT:-$BUILD/src/rapport}" serve --data "$WORK/data" --port 0 --io-threads 2 --workers 4 --scan-every 0 \
  ${SERVE_ARGS:-} >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$WORK/server.log")
  [[ -n $PORT ]] && break
  sleep 0.1
done
[[ -n $PORT ]] || { cat "$WORK/server.log"; exit 1; }
# server CPU seconds (user + system), robust against a busy shared machine unlike wall time
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"; }
rss() { awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$SERVER_PID/status"; }
faults() { awk '{ print $10 }' "/proc/$SERVER_PID/stat"; }  # minor page faults so far
# CPU seconds of each of the server's threads: "tid seconds" lines
thread_cpu() {
  local t
  for t in /proc/"$SERVER_PID"/task/*; do
    awk -v hz="$(getconf CLK_TCK)" -v tid="${t##*/}" '{ printf "%s %.2f\n", tid, ($14 + $15) / hz }' "$t/stat"
  done 2>/dev/null
}
# The most CPU one thread spent between two thread_cpu snapshots: the importing request's thread,
# which holds the single writer, i.e. the serial part that bounds rows/s however many cores
busiest_thread() { awk 'NR == FNR { before[$1] = $2; next } { d = $2 - before[$1]; if (d > m) m = d } END { printf "%.2f", m }' "$1" "$2"; }
# import_once LABEL: POST the file once, print its figures and the server's peak RSS so far
import_once() {
  local cpu0 cpu1 start end code faults0 PERF_PID= CSV=${2:-$CSV}
  cpu0=$(cpu)
  faults0=$(faults)
  thread_cpu >"$WORK/threads0"
  if [[ -n ${PERF:-} ]]; then  # PERF=FILE: perf record of the server during the import request
    perf record ${PERF_ARGS:--g} -o "$PERF" -p "$SERVER_PID" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 1
  fi
  start=$(date +%s.%N)
  code=$(curl -s -o "$WORK/answer.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' --data-binary "@$CSV" \
    "http://127.0.0.1:$PORT/api/v1/accounts/import?mode=$MODE&upsert=customer_code")
  end=$(date +%s.%N)
  cpu1=$(cpu)
  thread_cpu >"$WORK/threads1"
  [[ $code == 200 ]] || { echo "HTTP $code"; head -c 2000 "$WORK/answer.json"; exit 1; }
  # A large import answers before its search index and list indexes are built ("index_pending":
  # true; serve builds them in the background): the import is complete when its run says
  # index_status "complete" (polled every 0.1 s), what "complete" below measures.
  local pending run_id complete=$end cpu2=$cpu1
  pending=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).index_pending ? 1 : 0)' "$WORK/answer.json")
  if [[ $pending == 1 ]]; then
    run_id=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).import_id)' "$WORK/answer.json")
    until curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/import_runs/$run_id" |
      grep -q '"index_status":"complete"'; do sleep 0.1; done
    complete=$(date +%s.%N)
    cpu2=$(cpu)
  fi
  thread_cpu >"$WORK/threads2"
  if [[ -n $PERF_PID ]]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; fi
  node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
    const s=process.argv[3]-process.argv[2], c=process.argv[6]-process.argv[5];
    console.log(`${process.argv[7]} ${process.argv[4]}: ${r.rows} rows, created ${r.created ?? r.would_create}, ` +
      `updated ${r.updated ?? r.would_update}, skipped ${r.skipped}, likely duplicates ${r.duplicate_count}, ${s.toFixed(2)} s, ` +
      `${Math.round(r.rows / s)} rows/s; server CPU ${c.toFixed(2)} s, ${Math.round(r.rows / c)} rows per CPU-second ` +
      `(busiest thread, the writer: ${process.argv[10]} s, ${Math.round(r.rows / process.argv[10])} rows per its CPU-second); ` +
      `server peak RSS ${process.argv[8]} MB, ${process.argv[9]} minor page faults`)' \
    "$WORK/answer.json" "$start" "$end" "$MODE" "$cpu0" "$cpu1" "$1" "$(rss)" "$(($(faults) - faults0))" \
    "$(busiest_thread "$WORK/threads0" "$WORK/threads1")"
  if [[ $pending == 1 ]]; then
    awk -v s="$start" -v e="$end" -v c="$complete" -v c0="$cpu0" -v c2="$cpu2" -v b="$(busiest_thread "$WORK/threads1" "$WORK/threads2")" -v rss="$(rss)" \
      'BEGIN { printf "  complete (search index and list indexes built in the background): %.2f s after the request started, %.2f s after its answer; server CPU %.2f s in all; the builder thread %.2f s after the answer; server peak RSS %d MB\n", c - s, c - e, c2 - c0, b, rss }'
  else
    echo "  complete at the answer (nothing built in the background)"
  fi
  # a load into a nearly empty table builds its non-unique indexes after the last batch (the
  # server's log line may reach the file a moment after the response)
  if grep -q ' built after it' "$WORK/server.log"; then
    for _ in $(seq 30); do grep -q ' indexes of .* built in ' "$WORK/server.log" && break; sleep 0.1; done
  fi
  # and, of a large one, its records' term rows after the load (storage/term_build.h)
  sed -n 's/.* info import [0-9]*: \(term rows of .* built in .*\)/  \1/p' "$WORK/server.log"
  sed -n 's/.* info import [0-9]*: \([0-9]* indexes of .* built in .*\)/  \1/p' "$WORK/server.log"
}
import_once import
# AGAIN=1: a second file with the same customer codes and other values (seed 2), so every row
# updates, and changes, the record the first pass created (upsert on customer_code)
if [[ $MODE == commit && ${AGAIN:-0} != 0 ]]; then
  CSV2=${IMPORT_CSV_DIR:-$WORK}/rapport-import-v3-$ROWS-$MANAGER-seed2.csv
  [[ -s $CSV2 ]] || "$BUILD/bench/rapport-gen" --import-csv "$CSV2" --accounts "$ROWS" --seed 2 --account-manager "$MANAGER"
  PERF= import_once upsert "$CSV2"
fi
if [[ $MODE == commit && ${EXPORT:-1} != 0 ]]; then
  cpu0=$(cpu)
  start=$(date +%s.%N)
  code=$(curl -s -o "$WORK/export.csv" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/api/v1/accounts/export.csv")
  end=$(date +%s.%N)
  cpu1=$(cpu)
  [[ $code == 200 ]] || { echo "export: HTTP $code"; head -c 2000 "$WORK/export.csv"; exit 1; }
  lines=$(($(wc -l <"$WORK/export.csv") - 1))
  bytes=$(stat -c %s "$WORK/export.csv")
  rss=$(rss)
  awk -v n="$lines" -v b="$bytes" -v s="$start" -v e="$end" -v c0="$cpu0" -v c1="$cpu1" -v rss="$rss" \
    'BEGIN { printf "export csv: %d rows, %.1f MB, %.2f s, %d rows/s; server CPU %.2f s, %d rows per CPU-second; server peak RSS %d MB\n",
      n, b / 1e6, e - s, n / (e - s), c1 - c0, n / (c1 - c0 > 0 ? c1 - c0 : 0.01), rss }'
fi
