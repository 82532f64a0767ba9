#!/usr/bin/env bash
# make bench: the benchmark run of issue #5. Builds the release binaries, generates (or reuses)
# the data set of BENCH_SCALE, starts the server, measures the ceiling (GET /healthz) and every
# HTTP scenario with wrk in one run, reads the server's peak RSS, runs the micro-benchmarks, and
# writes bench/results/latest.json (the previous one becomes previous.json) plus a table.
#
#   BENCH_SCALE=small|full   data size (default small; tiny is for the smoke test)
#   BENCH_SECONDS=N          seconds per scenario (default 3 at small, 10 at full)
#   BENCH_WORKERS=N          server worker threads (default 4; I/O threads are always 2)
#   BENCH_CONNECTIONS=N      wrk connections (default 64; wrk threads are always 2)
#   BENCH_ONLY="read list"   run only these scenarios (the ceiling always runs)
#   BENCH_SERVER_ARGS="…"    more `rapport serve` options, e.g. "--search-cache-mib 0" to measure
#                            search without its answer cache (the scenarios never write, so
#                            every repeated query is otherwise served from it)
#   BENCH_GEN_MAX_SECONDS=N  time budget of the generator (default 1140 at full)
#   BENCH_DATA_DIR=DIR       where the data set is cached (default bench/data/<scale>), e.g. a
#                            shared /work/data/full; generated there when DIR holds no data set,
#                            used as it is (never deleted or regenerated) when it holds one
#   BENCH_RUN_DIR=DIR        the copy the server runs on (default bench/data/<scale>.run)
#   BENCH_IDLE_TIMEOUT=N     seconds to wait at most for the started server's start-up work
#                            (its CPU time still for 2 s) before the scenarios (default 300)
#   BENCH_WARM=0             leave the run copy out of the page cache (default: read it once
#                            first when it fits in the available memory with 4 GiB to spare)
#   BENCH_BACKENDS="sqlite postgresql"  run every scenario on both (default, except at full
#                            scale where it is "sqlite") — PostgreSQL on a throw-away
#                            cluster from tests/pg/start_pg.sh, the data set moved over with
#                            `rapport copy` — and print both columns with their ratio
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${BENCH_SCALE:-small}
PRESET=${PRESET:-release}
BUILD=build/$PRESET
JOBS=${JOBS:-2}
((JOBS > 2)) && JOBS=2  # the reference machine has 2 cores shared with others
case $SCALE in
  tiny | small) SECONDS_PER=${BENCH_SECONDS:-3} ;;
  full) SECONDS_PER=${BENCH_SECONDS:-10} ;;
  *) echo "BENCH_SCALE must be tiny, small or full" >&2; exit 2 ;;
esac
WORKERS=${BENCH_WORKERS:-4}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
GEN_MAX=${BENCH_GEN_MAX_SECONDS:-$([[ $SCALE == full ]] && echo 1140 || echo 0)}
RESULTS=bench/results
DATA=${BENCH_DATA_DIR:-bench/data/$SCALE}
RUN_DATA=${BENCH_RUN_DIR:-bench/data/$SCALE.run}
[[ $(realpath -m "$RUN_DATA") != "$(realpath -m "$DATA")" ]] ||
  { echo "BENCH_RUN_DIR must not be the data set itself (it is replaced by a copy)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/rapport-bench.XXXXXX)
SERVER_PID=
# Both backends side by side by default (issue #6); at full scale SQLite only, because moving
# 4,000,000 records to PostgreSQL with `rapport copy` takes over an hour here.
BACKENDS=${BENCH_BACKENDS:-$([[ $SCALE == full ]] && echo sqlite || echo "sqlite postgresql")}
for b in $BACKENDS; do
  [[ $b == sqlite || $b == postgresql ]] || { echo "BENCH_BACKENDS: sqlite and/or postgresql" >&2; exit 2; }
done
PG_DIR=

cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n $PG_DIR ]]; then tests/pg/stop_pg.sh "$PG_DIR" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || scripts/bootstrap.sh --test  # wrk is one of the test packages
command -v node >/dev/null || { echo "node is missing: scripts/bootstrap.sh installs it" >&2; exit 1; }

echo "== build ($PRESET, -j$JOBS)"
cmake --preset "$PRESET" >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target rapport rapport-gen >"$WORK/build.log" 2>&1 ||
  { tail -40 "$WORK/build.log"; exit 1; }
MICRO=$BUILD/bench/rapport-micro
cmake --build "$BUILD" -j "$JOBS" --target rapport-micro >>"$WORK/build.log" 2>&1 || MICRO=
RAPPORT=${BENCH_RAPPORT:-$BUILD/src/rapport}  # BENCH_RAPPORT: measure another server binary
GEN=$BUILD/bench/rapport-gen

# The data set is cached per scale and regenerated when the generator or the entity declarations
# change. Scenarios write (creates), so every run serves a fresh copy.
# A data set in BENCH_DATA_DIR (shared, expensive to make) is never deleted: it is used as it is,
# with a warning when it was made by another generator or other entity declarations.
key=$(cat bench/gen/gen.cc src/modules/*/entities/*.json | sha1sum | cut -c1-16)
if [[ -n ${BENCH_DATA_DIR:-} && -f $DATA/bench/manifest.json &&
  $(cat "$DATA/bench/key" 2>/dev/null) != "$key" ]]; then
  echo "   note: $DATA was made by another generator or entity declarations (key" \
    "$(cat "$DATA/bench/key" 2>/dev/null || echo none), this checkout's $key); using it as it is"
elif [[ ! -f $DATA/bench/manifest.json || $(cat "$DATA/bench/key" 2>/dev/null) != "$key" ]]; then
  echo "== generating the $SCALE data set (cached in $DATA)"
  if [[ -n ${BENCH_DATA_DIR:-} && -e $DATA && -n $(ls -A "$DATA") ]]; then
    echo "BENCH_DATA_DIR=$DATA holds no complete data set but is not empty: not touching it" >&2
    exit 1
  fi
  rm -rf "$DATA" "$DATA.tmp"
  mkdir -p "$(dirname "$DATA")"
  "$GEN" --data "$DATA.tmp" --scale "$SCALE" --max-seconds "$GEN_MAX" >"$WORK/gen.out"
  echo "$key" >"$DATA.tmp/bench/key"
  mv "$DATA.tmp" "$DATA"
fi
echo "   data set: $(cat "$DATA/bench/manifest.json")"
rm -rf "$RUN_DATA"
mkdir -p "$(dirname "$RUN_DATA")"
cp -r --reflink=auto "$DATA" "$RUN_DATA"
# The copy leaves most of the new file out of the kernel's page cache (at 1M, 1 GB of 13.5: the
# copy's reads of the source and writes of the target pass through the same memory), so the
# first scenarios would measure disk reads a server that has run a while does not do. Read the
# copy once when it fits in the available memory with 4 GiB to spare; BENCH_WARM=0 measures it
# cold.
if [[ ${BENCH_WARM:-1} != 0 ]]; then
  db_bytes=$(stat -c %s "$RUN_DATA/rapport.db")
  avail_bytes=$(($(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) * 1024))
  if ((db_bytes + (4 << 30) <= avail_bytes)); then
    warm_start=$(date +%s.%N)
    cat "$RUN_DATA/rapport.db" >/dev/null
    echo "   page cache: the run copy's $((db_bytes >> 20)) MiB read once in" \
      "$(awk -v a="$warm_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (BENCH_WARM=0: cold)"
  else
    echo "   page cache: the run copy ($((db_bytes >> 20)) MiB) does not fit in the available memory with 4 GiB to spare; measured cold"
  fi
fi

# Starts the server on the run copy (extra arguments: --database URL) and waits for it; the
# scheduled duplicate scan is off so that it does not run beside the measured requests.
# out: $1/server.start (seconds to listen), URL.
start_server() {
  local out=$1
  shift
  echo "== server: $RAPPORT serve --io-threads 2 --workers $WORKERS ${BENCH_SERVER_ARGS:-} $*"
  # shellcheck disable=SC2086 # BENCH_SERVER_ARGS is a list of words
  "$RAPPORT" serve --data "$RUN_DATA" --port 0 --io-threads 2 --workers "$WORKERS" --scan-every 0 \
    ${BENCH_SERVER_ARGS:-} "$@" \
    >"$out/server.log" 2>&1 &
  SERVER_PID=$!
  # Start-up runs pending migrations, which on a large data set can take a while: wait for it
  # (BENCH_START_TIMEOUT seconds, default 900) and report the time.
  local port= start
  start=$(date +%s.%N)
  for _ in $(seq 1 $((${BENCH_START_TIMEOUT:-900} * 10))); do
    port=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$out/server.log")
    [[ -n $port ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $port ]] || { tail -20 "$out/server.log"; echo "server did not start" >&2; exit 1; }
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }' >"$out/server.start"
  echo "   listening after $(cat "$out/server.start") s"
  URL=http://127.0.0.1:$port
  # Start-up work on threads of its own (SQLite: the search's term codes, ~15-40 s of a core at
  # full scale) would otherwise run beside the first scenarios, which would then measure the
  # search without them: wait until the idle server's CPU time stays still for two seconds
  # (BENCH_IDLE_TIMEOUT seconds at most, default 300; 0: do not wait).
  local ticks last=-1 still=0 waited=0
  start=$(date +%s.%N)
  while ((waited < ${BENCH_IDLE_TIMEOUT:-300} && still < 2)); do
    ticks=$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0)
    if ((ticks - last <= 2)); then still=$((still + 1)); else still=0; fi
    last=$ticks
    sleep 1
    waited=$((waited + 1))
  done
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }' >"$out/server.idle"
  echo "   idle after $(cat "$out/server.idle") s more"
}

# The server's own latency figures (GET /api/v1/admin/latency, the admin token of the data set):
# reset before a scenario, read after it into out/<name>.server.json.
server_latency() {
  local method=$1 out=${2:-/dev/null}
  curl -fsS -X "$method" -H "Authorization: Bearer $(head -1 "$RUN_DATA/bench/token")" \
    "$URL/api/v1/admin/latency" -o "$out" 2>/dev/null || true
}

# The store's write figures (GET /api/v1/admin/writes: group commits, the writer's busy time, its
# WAL syncs) into `out`; nothing when the server has no such route.
server_writes() {
  curl -fsS -H "Authorization: Bearer $(head -1 "$RUN_DATA/bench/token")" \
    "$URL/api/v1/admin/writes" -o "$1" 2>/dev/null || rm -f "$1"
}

# The server process's CPU time (utime + stime, clock ticks) and bytes it read from the disk
# (/proc/PID/io read_bytes: page cache misses), for out/<name>.proc: before, after, ticks a second.
server_proc() {
  echo "$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0)" \
    "$(awk '/^read_bytes:/ { print $2 }' "/proc/$SERVER_PID/io" 2>/dev/null || echo 0)"
}

# name, seconds, out dir → out/<name>.json (the BENCH_RESULT line of the script's done() hook)
# and out/<name>.server.json (server-side latency per route during the scenario)
scenario() {
  local name=$1 secs=$2 out=$3
  printf '   %-8s %2ss … ' "$name" "$secs"
  server_latency DELETE
  local proc_before
  server_writes "$out/$name.writes0.json"
  proc_before=$(server_proc)
  if BENCH_DIR=$RUN_DATA/bench wrk -t2 -c"$CONNECTIONS" -d"${secs}s" --timeout 10s --latency \
    -s "bench/wrk/$name.lua" "$URL" >"$out/$name.wrk" 2>&1; then :; fi
  echo "$proc_before $(server_proc) $(getconf CLK_TCK)" >"$out/$name.proc"
  server_latency GET "$out/$name.server.json"
  server_writes "$out/$name.writes1.json"
  if ! sed -n 's/^BENCH_RESULT //p' "$out/$name.wrk" >"$out/$name.json" || [[ ! -s $out/$name.json ]]; then
    echo "failed"; tail -5 "$out/$name.wrk"; rm -f "$out/$name.json"; return 0
  fi
  node -e 'const fs=require("fs"), r=JSON.parse(fs.readFileSync(process.argv[1]));
    let s=""; try { const t=JSON.parse(fs.readFileSync(process.argv[2])).routes
      .filter((x)=>x.route!=="/api/v1/admin/latency").sort((a,b)=>b.count-a.count)[0]; if (t) s=`; server p50 ${t.server.p50_ms} ms, p99 ${t.server.p99_ms} ms, max ${t.server.max_ms} ms (handler p99 ${t.handler.p99_ms} ms)` } catch {}
    let c=""; try { const [c0, d0, c1, d1, hz]=fs.readFileSync(process.argv[3], "utf8").trim().split(/\s+/).map(Number);
      c=`; per request ${((c1-c0)/hz*1000/r.requests).toFixed(3)} ms of server CPU, ${((d1-d0)/1024/r.requests).toFixed(2)} KiB from the disk` } catch {}
    let w=""; try { const w0=JSON.parse(fs.readFileSync(process.argv[4])), w1=JSON.parse(fs.readFileSync(process.argv[5]));
      const d=(k)=>w1[k]-w0[k], b=d("batches"), secs=r.requests/r.rps;
      if (b>0) w=`; ${(d("committed")/b).toFixed(1)} writes a COMMIT, writer busy ${(d("busy_ns")/b/1e6).toFixed(2)} ms a batch (CPU ${(d("busy_cpu_ns")/Math.max(1,d("committed"))/1e6).toFixed(3)} ms a write) (${(d("busy_ns")/1e7/secs).toFixed(0)}% of the time, COMMIT ${(d("commit_ns")/b/1e6).toFixed(2)} ms), ${d("wal_syncs")} WAL syncs of ${(d("wal_sync_ns")/Math.max(1,d("wal_syncs"))/1e6).toFixed(2)} ms, holder waited ${(d("sync_wait_ns")/b/1e6).toFixed(2)} ms a batch` } catch {}
    console.log(`${Math.round(r.rps)} req/s, p99 ${r.p99_ms} ms (max ${r.max_ms} ms)${s}${c}${w}`)' "$out/$name.json" "$out/$name.server.json" "$out/$name.proc" "$out/$name.writes0.json" "$out/$name.writes1.json"
}

# Every scenario against the running server into `out`, then its memory and error lines; stops it.
measure() {
  local out=$1
  echo "== wrk: 2 threads, $CONNECTIONS connections, keep-alive, ${SECONDS_PER}s per scenario (shared machine: figures are noisy)"
  scenario ceiling 1 "$out" >/dev/null  # warm-up
  scenario ceiling "$SECONDS_PER" "$out"
  local scenarios=(read list search search-words phone 360 create update mixed)
  for s in "${scenarios[@]}"; do
    if [[ -n ${BENCH_ONLY:-} && " $BENCH_ONLY " != *" $s "* ]]; then continue; fi
    scenario "$s" "$SECONDS_PER" "$out"
  done
  grep -E '^Vm(HWM|RSS)' "/proc/$SERVER_PID/status" >"$out/server.mem" || true
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  grep -ciE ' (error|critical) ' "$out/server.log" >"$out/server.errors" || true
}

uptime_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== backend sqlite"
start_server "$WORK"
measure "$WORK"

backend_args=()
if [[ " $BACKENDS " == *" postgresql "* ]]; then
  # The same data set on PostgreSQL: a throw-away cluster (loopback, fsync off as in the tests:
  # say so when comparing create figures), the pristine data copied over with `rapport copy`.
  echo "== backend postgresql"
  pg_out=$(tests/pg/start_pg.sh)
  PG_URL=$(sed -n 1p <<<"$pg_out")
  PG_DIR=$(sed -n 2p <<<"$pg_out")
  psql "$PG_URL" -X -q -c "CREATE DATABASE rapport_bench" >/dev/null
  PG_DB=${PG_URL%/*}/rapport_bench
  rm -rf "$RUN_DATA"
  cp -r --reflink=auto "$DATA" "$RUN_DATA"
  copy_start=$(date +%s.%N)
  "$RAPPORT" copy --from "sqlite:$RUN_DATA/rapport.db" --to "$PG_DB" >"$WORK/copy.log" 2>&1 ||
    { tail -20 "$WORK/copy.log"; exit 1; }
  echo "   data copied in $(awk -v a="$copy_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
  # As after any bulk load: planner statistics, visibility map and the trigram indexes' pending
  # lists settled now, not by autovacuum in the middle of the measurement.
  psql "$PG_DB" -X -q -c "VACUUM (ANALYZE)" >/dev/null
  mkdir -p "$WORK/postgresql"
  start_server "$WORK/postgresql" --database "$PG_DB"
  measure "$WORK/postgresql"
  tests/pg/stop_pg.sh "$PG_DIR"
  PG_DIR=
  backend_args=(--backend "postgresql=$WORK/postgresql")
fi

if [[ -n $MICRO ]]; then
  echo "== micro-benchmarks (Google Benchmark)"
  "$MICRO" --benchmark_min_time="$([[ $SCALE == full ]] && echo 0.5 || echo 0.1)" \
    --benchmark_format=json --benchmark_out="$WORK/micro.json" >/dev/null 2>"$WORK/micro.err" ||
    { tail -5 "$WORK/micro.err"; rm -f "$WORK/micro.json"; }
fi

mkdir -p "$RESULTS"
[[ -f $RESULTS/latest.json ]] && mv "$RESULTS/latest.json" "$RESULTS/previous.json"
node bench/report.mjs --work "$WORK" --manifest "$DATA/bench/manifest.json" --scale "$SCALE" \
  --workers "$WORKERS" --connections "$CONNECTIONS" --seconds "$SECONDS_PER" \
  --load "$uptime_before" "${backend_args[@]}" --out "$RESULTS/latest.json"
cp "$RESULTS/latest.json" "$RESULTS/$SCALE-$(date +%Y%m%d-%H%M%S).json"
rm -rf "$RUN_DATA"
