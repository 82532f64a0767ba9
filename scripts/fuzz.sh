#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) and runs each over its committed corpus.
# Usage: scripts/fuzz.sh [RUNS]   — bounded run (make test uses 100000 runs per target);
#        scripts/fuzz.sh long     — 5 minutes per target (make fuzz).
# New crashing inputs are written to fuzz/crashes/; copy them into fuzz/corpus/<target>/ once fixed
# so they stay as regression inputs. Prints "fuzz: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-100000}
CXX=clang++-14 cmake -S fuzz -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null || exit 1
cmake --build build/fuzz -j "${JOBS:-$(nproc)}" >build/fuzz/build.log 2>&1 ||
  { grep -E "error|undefined" build/fuzz/build.log | head -20; echo "fuzz: 0 passed, 1 failed (build)"; exit 1; }
mkdir -p fuzz/crashes
passed=0
failed=0
for dir in fuzz/corpus/*/; do
  t=$(basename "$dir")
  work=$(mktemp -d)
  cp "$dir"* "$work"/ 2>/dev/null
  if [[ $mode == long ]]; then limit=(-max_total_time=300); else limit=(-runs="$mode"); fi
  if build/fuzz/fuzz_"$t" "${limit[@]}" -max_len=4096 -timeout=10 -artifact_prefix=fuzz/crashes/"$t"- \
      "$work" >"build/fuzz/$t.log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    grep -E "ERROR|SUMMARY|runtime error" "build/fuzz/$t.log" | head -5
  fi
  rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
