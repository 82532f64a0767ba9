#!/usr/bin/env bash
# make soak: builds the release binaries, takes a copy of the benchmark data set of BENCH_SCALE
# (generated like make bench when missing) and runs bench/soak.mjs on it: the mixed load with
# kill -9 and restart every SOAK_KILL_EVERY seconds for SOAK_SECONDS, then checks that every
# acknowledged create is there, no 5xx, integrity_check ok. Not part of make test.
#
#   SOAK_SECONDS=N      total length (default 300)
#   SOAK_KILL_EVERY=N   seconds between kills (default 30); 0: no kills, one server for the whole
#                       run, and the run fails when its RSS grows 10% or more after the warm-up
#   SOAK_WARMUP=N       kill-free mode: warm-up seconds before the first RSS reading
#                       (default a quarter of SOAK_SECONDS, 10–60)
#   SOAK_MAX_GROWTH=F   kill-free mode: allowed growth of RssAnon (the process's own memory) after the warm-up (default 0.10)
#   BENCH_SCALE=small   data set (default small)
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${BENCH_SCALE:-small}
PRESET=${PRESET:-release}
BUILD=build/$PRESET
DATA=bench/data/$SCALE
RUN=$(mktemp -d /tmp/rapport-soak.XXXXXX)
trap 'rm -rf "$RUN"' EXIT
command -v wrk >/dev/null || scripts/bootstrap.sh --test
command -v sqlite3 >/dev/null || scripts/bootstrap.sh --test

cmake --preset "$PRESET" >/dev/null
cmake --build "$BUILD" -j 2 --target rapport rapport-gen >"$RUN/build.log" 2>&1 || { tail -40 "$RUN/build.log"; exit 1; }
key=$(cat bench/gen/gen.cc src/modules/*/entities/*.json | sha1sum | cut -c1-16)
if [[ ! -f $DATA/bench/manifest.json || $(cat "$DATA/bench/key" 2>/dev/null) != "$key" ]]; then
  echo "== generating the $SCALE data set (cached in $DATA)"
  rm -rf "$DATA" "$DATA.tmp"
  mkdir -p bench/data
  "$BUILD/bench/rapport-gen" --data "$DATA.tmp" --scale "$SCALE" >"$RUN/gen.out"
  echo "$key" >"$DATA.tmp/bench/key"
  mv "$DATA.tmp" "$DATA"
fi
cp -r --reflink=auto "$DATA" "$RUN/data"
node bench/soak.mjs --rapport "$BUILD/src/rapport" --data "$RUN/data" \
  --seconds "${SOAK_SECONDS:-300}" --kill-every "${SOAK_KILL_EVERY:-30}" \
  ${SOAK_WARMUP:+--warmup "$SOAK_WARMUP"} ${SOAK_MAX_GROWTH:+--max-growth "$SOAK_MAX_GROWTH"}
