#!/usr/bin/env bash
# Smoke test of the benchmark harness for make test: the generator at a tiny scale (500 accounts,
# twice, to check it is deterministic), every wrk scenario for 1 second against the real server
# with exact checking (no socket errors, no non-2xx answer, no empty result list, some requests),
# the micro-benchmarks once, and the report/compare scripts. It checks that the benchmarks work;
# it asserts no timings. Ends with "bench smoke: N passed, M failed"; exit status 1 on failure.
#
#   BUILD=build/release bench/smoke.sh     (default build/$PRESET, PRESET defaulting to release)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/${PRESET:-release}}
RAPPORT=$BUILD/src/rapport
GEN=$BUILD/bench/rapport-gen
MICRO=$BUILD/bench/rapport-micro
WORK=$(mktemp -d /tmp/rapport-bench-smoke.XXXXXX)
SERVER_PID=
passed=0
failed=0

cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "  ok   $1"; }
bad() { failed=$((failed + 1)); echo "  FAIL $1"; [[ -n ${2:-} ]] && echo "$2" | sed 's/^/       /'; }
finish() {
  echo "bench smoke: $passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit
}

for bin in "$RAPPORT" "$GEN"; do
  [[ -x $bin ]] || { bad "binary $bin exists (build first)"; finish; }
done
command -v wrk >/dev/null || { bad "wrk is installed (scripts/bootstrap.sh --test)"; finish; }

# Generator: tiny scale, twice with the same seed.
if "$GEN" --data "$WORK/data" --scale tiny >"$WORK/gen.out" 2>"$WORK/gen.err" &&
  "$GEN" --data "$WORK/data2" --scale tiny >/dev/null 2>&1; then
  if node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1]));
      process.exit(m.accounts===500 && m.contacts===1000 && m.interactions>0 ? 0 : 1)' \
    "$WORK/data/bench/manifest.json"; then
    ok "generator: 500 accounts, 1000 contacts, communication records"
  else
    bad "generator counts" "$(cat "$WORK/data/bench/manifest.json")"
  fi
  if cmp -s "$WORK/data/bench/search.txt" "$WORK/data2/bench/search.txt" &&
    cmp -s "$WORK/data/bench/phones.txt" "$WORK/data2/bench/phones.txt"; then
    ok "generator is deterministic (same seed, same names and phones)"
  else
    bad "generator is deterministic"
  fi
  # Histories: the same seed gives the same created_at and updated_at; every account has its own
  # created_at, spread over years, and no record was updated before it was created.
  times() {
    sqlite3 "$1/rapport.db" "SELECT customer_code, created_at, updated_at FROM account ORDER BY 1;
      SELECT c.emails, c.created_at, c.updated_at FROM contact c ORDER BY 1;
      SELECT count(*), min(created_at), max(created_at) FROM interaction"
  }
  if [[ -n $(times "$WORK/data") ]] && cmp -s <(times "$WORK/data") <(times "$WORK/data2"); then
    ok "generator times are deterministic (same seed, same created_at and updated_at)"
  else
    bad "generator times are deterministic"
  fi
  facts=$(sqlite3 "$WORK/data/rapport.db" "SELECT count(DISTINCT created_at), min(created_at) < '2024-01-01',
      (SELECT count(*) FROM account WHERE updated_at < created_at) +
      (SELECT count(*) FROM contact WHERE updated_at < created_at) +
      (SELECT count(*) FROM interaction WHERE updated_at < created_at),
      (SELECT count(*) FROM account WHERE updated_at > created_at) > 100 FROM account")
  if [[ $facts == "500|1|0|1" ]]; then
    ok "generator times: 500 distinct account created_at since 2023, none updated before created"
  else
    bad "generator times" "distinct|before 2024|updated before created|edited > 100: $facts"
  fi
else
  bad "generator runs" "$(tail -5 "$WORK/gen.err")"
  finish
fi

# The import file of bench/import.sh: the same with the same seed, and addresses varied enough
# that "similar name and the same address" does not pair rows by chance (street and city are
# the last-but-four and last-but-three columns; no generated cell holds a comma).
if "$GEN" --import-csv "$WORK/a.csv" --accounts 20000 && "$GEN" --import-csv "$WORK/b.csv" --accounts 20000 &&
  cmp -s "$WORK/a.csv" "$WORK/b.csv"; then
  ok "generator import file is deterministic"
  distinct=$(tail -n +2 "$WORK/a.csv" | awk -F, '{ print $(NF-4) "|" $(NF-3) }' | sort -u | wc -l)
  if [[ $distinct -ge 19900 ]]; then
    ok "generator addresses vary ($distinct distinct of 20000)"
  else
    bad "generator addresses vary" "$distinct distinct street+city of 20000"
  fi
else
  bad "generator import file is deterministic"
fi

"$RAPPORT" serve --data "$WORK/data" --port 0 --io-threads 2 --workers 4 --scan-every 0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=
for _ in $(seq 1 100); do
  PORT=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$WORK/server.log")
  [[ -n $PORT ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $PORT ]]; then
  bad "server starts on the generated data" "$(tail -10 "$WORK/server.log")"
  finish
fi

# Server-side latency (GET /api/v1/admin/latency), reset before each scenario as bench/run.sh does.
latency() {
  curl -fsS -X "$1" -H "Authorization: Bearer $(head -1 "$WORK/data/bench/token")" \
    "http://127.0.0.1:$PORT/api/v1/admin/latency" -o "${2:-/dev/null}"
}
declare -A ROUTE=([read]="GET /api/v1/{entity}/{id}" [list]="GET /api/v1/{entity}"
  [phone]="GET /api/v1/lookup/phone" [360]="GET /api/v1/accounts/{id}/360"
  [update]="PATCH /api/v1/{entity}/{id}")
# The server's CPU ticks and disk read bytes, as bench/run.sh's server_proc writes them (<s>.proc).
server_proc() {
  echo "$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat")" \
    "$(awk '/^read_bytes:/ { print $2 }' "/proc/$SERVER_PID/io")"
}
for s in ceiling read list search search-words phone 360 create update mixed; do
  latency DELETE
  proc_before=$(server_proc)
  BENCH_DIR=$WORK/data/bench BENCH_CHECK=1 wrk -t1 -c4 -d1s --timeout 5s -s "bench/wrk/$s.lua" \
    "http://127.0.0.1:$PORT" >"$WORK/$s.wrk" 2>&1
  echo "$proc_before $(server_proc) $(getconf CLK_TCK)" >"$WORK/$s.proc"
  latency GET "$WORK/$s.server.json"
  if [[ -n ${ROUTE[$s]:-} ]]; then
    # The busiest route of the scenario is its own, with as many requests as wrk made (±1 for
    # a request cut off by wrk's end) and ordered percentiles.
    if node -e 'const fs=require("fs"); const [file, route, wrkFile]=process.argv.slice(1);
        const r=JSON.parse(fs.readFileSync(file)).routes.filter((x)=>x.route!=="/api/v1/admin/latency")
          .sort((a,b)=>b.count-a.count)[0];
        const w=JSON.parse(fs.readFileSync(wrkFile).toString().split("\n").find((l)=>l.startsWith("BENCH_RESULT ")).slice(13));
        const h=r.server, ok=`${r.method} ${r.route}`===route && Math.abs(r.count-w.requests)<=4 &&
          h.p50_ms>0 && h.p50_ms<=h.p99_ms && h.p99_ms<=h.max_ms && r.handler.p99_ms<=h.max_ms;
        if (!ok) console.log(JSON.stringify(r), w.requests); process.exit(ok?0:1)' \
      "$WORK/$s.server.json" "${ROUTE[$s]}" "$WORK/$s.wrk" >"$WORK/$s.lat" 2>&1; then
      ok "server-side latency of $s: ${ROUTE[$s]}"
    else
      bad "server-side latency of $s" "$(cat "$WORK/$s.lat")"
    fi
  fi
  sed -n 's/^BENCH_RESULT //p' "$WORK/$s.wrk" >"$WORK/$s.json"
  if node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
      const okay = r.requests > 0 && r.checked > 0 && r.errors === 0 && r.non2xx === 0 && r.empty === 0;
      if (!okay) console.log(JSON.stringify(r));
      process.exit(okay ? 0 : 1)' "$WORK/$s.json" >"$WORK/$s.check" 2>&1; then
    ok "scenario $s: $(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
      console.log(`${r.requests} requests, all 2xx with results`)' "$WORK/$s.json")"
  else
    bad "scenario $s" "$(cat "$WORK/$s.check"; tail -5 "$WORK/$s.wrk")"
  fi
done
grep -E '^Vm(HWM|RSS)' "/proc/$SERVER_PID/status" >"$WORK/server.mem" 2>/dev/null || true
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
grep -ciE ' (error|critical) ' "$WORK/server.log" >"$WORK/server.errors" || true

if [[ -x $MICRO ]]; then
  if "$MICRO" --benchmark_min_time=0.01 --benchmark_format=json \
    --benchmark_out="$WORK/micro.json" >/dev/null 2>"$WORK/micro.err" &&
    node -e 'const b=JSON.parse(require("fs").readFileSync(process.argv[1])).benchmarks;
      const kinds = [/^BM_Json/, /^BM_FilterCompile/, /^BM_PhoneToE164/, /^BM_NameSimilarity/];
      process.exit(kinds.every((k) => b.some((x) => k.test(x.name))) &&
        b.every((x) => !x.error_occurred) ? 0 : 1)' "$WORK/micro.json"; then
    ok "micro-benchmarks run"
  else
    bad "micro-benchmarks run" "$(tail -5 "$WORK/micro.err")"
  fi
fi

# Report and compare on these 1-second figures.
if node bench/report.mjs --work "$WORK" --manifest "$WORK/data/bench/manifest.json" --scale tiny \
  --workers 4 --connections 4 --seconds 1 --out "$WORK/result.json" >"$WORK/report.out" 2>&1 &&
  node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
    const c360 = r.scenarios.find((s) => s.key === "360");
    process.exit(r.ceiling && r.scenarios.length === 9 && r.server.peak_rss_mb > 0 &&
      r.scenarios.find((s) => s.key === "phone").server.p99_ms > 0 &&
      c360.server_cpu_ms_per_request > 0 && c360.disk_read_kib_per_request >= 0 ? 0 : 1)' \
    "$WORK/result.json" &&
  node bench/compare.mjs "$WORK/result.json" "$WORK/result.json" >"$WORK/compare.out" 2>&1; then
  ok "results JSON and bench-compare"
else
  bad "results JSON and bench-compare" "$(tail -10 "$WORK/report.out" "$WORK/compare.out" 2>/dev/null)"
fi

# The side-by-side table of BENCH_BACKENDS (PostgreSQL is not run here: these same figures stand
# in for a second backend, which checks the report's columns and JSON, not the backend).
if node bench/report.mjs --work "$WORK" --manifest "$WORK/data/bench/manifest.json" --scale tiny \
  --workers 4 --connections 4 --seconds 1 --backend "postgresql=$WORK" --out "$WORK/result2.json" \
  >"$WORK/report2.out" 2>&1 &&
  grep -q "SQLite and postgresql side by side" "$WORK/report2.out" &&
  grep -qE "^read one record by id +[0-9]+ +[0-9]+ +1\.00×" "$WORK/report2.out" &&
  node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));
    process.exit(r.backends.postgresql.scenarios.length === 9 ? 0 : 1)' "$WORK/result2.json"; then
  ok "side-by-side backend report"
else
  bad "side-by-side backend report" "$(tail -15 "$WORK/report2.out" 2>/dev/null)"
fi
finish
