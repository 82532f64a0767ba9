#!/usr/bin/env bash
# Runs every test suite and ends with one line "N passed, N failed".
# Suites: GoogleTest unit tests (CTest), API tests against the real binary (node:test),
# web unit tests (Vitest), browser tests in Debian's Chromium (node:test + playwright-core).
set -uo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-release}
JOBS=${JOBS:-$(nproc)}
BUILD=build/$PRESET
# SUITES limits the run (make test-asan: "unit api"); default every suite.
SUITES=${SUITES:-all}
want() { [[ $SUITES == all || " $SUITES " == *" $1 "* ]]; }
LOGS=tests/artifacts/logs
mkdir -p "$LOGS"
passed=0
failed=0
add() { passed=$((passed + $1)); failed=$((failed + $2)); echo "  -> $3: $1 passed, $2 failed"; }

echo "== build ($PRESET)"
if ! { cmake --preset "$PRESET" >/dev/null && cmake --build "$BUILD" -j "$JOBS"; } >"$LOGS/build.log" 2>&1; then
  tail -50 "$LOGS/build.log"
  echo "0 passed, 1 failed"
  exit 1
fi
ln -sfn "$PRESET/src/rapport" build/rapport

# --- PostgreSQL cluster (issue #6): one throw-away cluster for the storage unit tests and the
# API suite's second run; stopped on exit. ---
PG_URL=
PG_DIR=
stop_pg() { if [[ -n $PG_DIR ]]; then tests/pg/stop_pg.sh "$PG_DIR" || true; PG_DIR=; fi; }
trap stop_pg EXIT
if pg_out=$(tests/pg/start_pg.sh 2>"$LOGS/pg-start.log"); then
  PG_URL=$(sed -n 1p <<<"$pg_out")
  PG_DIR=$(sed -n 2p <<<"$pg_out")
  echo "== PostgreSQL test cluster at $PG_URL"
else
  cat "$LOGS/pg-start.log"
  add 0 1 postgresql-cluster
fi
# --- end PostgreSQL cluster ---

echo "== unit tests (ctest)"
(cd "$BUILD" && RAPPORT_TEST_PG_URL=$PG_URL ctest --output-on-failure -j "$JOBS") >"$LOGS/ctest.log" 2>&1
grep -E "tests passed|tests failed|\*\*\*Failed" "$LOGS/ctest.log" | tail -20
total=$(grep -oE "out of [0-9]+" "$LOGS/ctest.log" | tail -1 | grep -oE "[0-9]+" || echo 0)
nfail=$(grep -oE "[0-9]+ tests failed" "$LOGS/ctest.log" | tail -1 | grep -oE "^[0-9]+" || echo 0)
[[ -z $total || $total == 0 ]] && { total=1; nfail=1; echo "ctest ran nothing"; }
add $((total - nfail)) "$nfail" ctest

node_suite() {  # name, files...
  local name=$1; shift
  local log="$LOGS/$name.log"
  RAPPORT_BIN="$PWD/build/rapport" node --test --test-reporter=tap "$@" >"$log" 2>&1
  local p f
  p=$(grep -E "^# pass [0-9]+" "$log" | tail -1 | awk '{print $3}')
  f=$(grep -E "^# fail [0-9]+" "$log" | tail -1 | awk '{print $3}')
  [[ -z $p ]] && { p=0; f=1; tail -30 "$log"; }
  if [[ $f != 0 ]]; then grep -E -B2 -A25 "^\s*not ok" "$log" | head -150; fi
  add "$p" "$f" "$name"
}

if ! want fuzz; then
  :
elif command -v clang++-14 >/dev/null; then
  echo "== fuzz targets (bounded runs)"
  scripts/fuzz.sh 100000 >"$LOGS/fuzz.log" 2>&1
  fline=$(grep -E "^fuzz: " "$LOGS/fuzz.log" | tail -1)
  fp=$(echo "$fline" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+" || echo 0)
  ff=$(echo "$fline" | grep -oE "[0-9]+ failed" | grep -oE "[0-9]+" || echo 1)
  [[ -z $fline ]] && { fp=0; ff=1; tail -20 "$LOGS/fuzz.log"; }
  [[ $ff != 0 ]] && tail -20 "$LOGS/fuzz.log"
  add "${fp:-0}" "${ff:-1}" fuzz
else
  echo "clang++-14 missing: the bootstrap installs clang-14"; add 0 1 fuzz
fi

if want api && ls tests/api/*.test.mjs >/dev/null 2>&1; then
  echo "== API tests against the real binary"
  RAPPORT_TEST_PG_URL= node_suite api tests/api/*.test.mjs
  # --- API suite again on PostgreSQL (issue #6): every server and CLI command of the harness
  # gets a fresh database on the test cluster; SQLite-only tests skip themselves. ---
  if [[ -n $PG_URL ]]; then
    echo "== API tests on PostgreSQL"
    RAPPORT_TEST_PG_URL=$PG_URL node_suite api-postgresql tests/api/*.test.mjs
  fi
  # --- end API suite on PostgreSQL ---
fi

# --- reliability and hostile-input suites (issue 5): kill -9 crash consistency (SQLite; 20 rounds
# with RAPPORT_LONG=1), limits and slow clients, security headers, injection payloads.
# tests/security/sqlmap.sh (minutes) is run by hand. ---
if want reliability && ls tests/reliability/*.test.mjs >/dev/null 2>&1; then
  echo "== reliability and security tests"
  RAPPORT_TEST_PG_URL= node_suite reliability tests/reliability/*.test.mjs tests/security/*.test.mjs
fi
# --- end reliability ---

if want web && [[ -f web/package.json ]]; then
  echo "== web unit tests (vitest)"
  (cd web && NO_COLOR=1 FORCE_COLOR=0 npx vitest run --reporter=default) >"$LOGS/vitest.log" 2>&1
  # strip any ANSI colour codes before reading the summary line
  vline=$(sed 's/\x1b\[[0-9;]*m//g' "$LOGS/vitest.log" | grep -E "^\s*Tests\s+" | tail -1)
  vp=$(echo "$vline" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+" || true)
  vf=$(echo "$vline" | grep -oE "[0-9]+ failed" | grep -oE "[0-9]+" || true)
  [[ -z $vp && -z $vf ]] && { vf=1; tail -30 "$LOGS/vitest.log"; }
  [[ -n $vf && $vf != 0 ]] && tail -60 "$LOGS/vitest.log"
  add "${vp:-0}" "${vf:-0}" vitest
  echo "== web build"
  if (cd web && npm run build) >"$LOGS/web-build.log" 2>&1; then add 1 0 web-build
  else tail -30 "$LOGS/web-build.log"; add 0 1 web-build; fi
fi

if want browser && ls tests/browser/*.test.mjs >/dev/null 2>&1; then
  echo "== browser tests (Chromium)"
  RAPPORT_WEB_DIST="$PWD/web/dist" node_suite browser tests/browser/*.test.mjs
fi

# --- bench smoke (owned by the benchmark harness, issue #5) ---
if want bench && [[ -x bench/smoke.sh ]]; then
  echo "== bench smoke (generator + every wrk scenario for 1 s, no timings asserted)"
  BUILD=$BUILD bench/smoke.sh >"$LOGS/bench-smoke.log" 2>&1
  bline=$(grep -E "^bench smoke: [0-9]+ passed, [0-9]+ failed" "$LOGS/bench-smoke.log" | tail -1)
  bp=$(echo "$bline" | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+" || true)
  bf=$(echo "$bline" | grep -oE "[0-9]+ failed" | grep -oE "[0-9]+" || true)
  [[ -z $bline ]] && { bp=0; bf=1; }
  [[ $bf != 0 ]] && grep -E -A3 "FAIL" "$LOGS/bench-smoke.log" | head -40
  add "$bp" "$bf" bench-smoke
fi
# --- end bench smoke ---

echo
echo "make test took ${SECONDS}s"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
