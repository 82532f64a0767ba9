#!/usr/bin/env bash
# What a durable create costs the server: runs the create scenario (bench/wrk/create.lua, 64
# connections) on a fresh copy of a data set made by rapport-gen and prints per create the server's
# CPU (utime + stime of /proc/PID/stat), its context switches (voluntary + nonvoluntary over
# /proc/PID/task/*/status), the WAL frames it wrote (the process's wchar − the checkpoint thread's
# − the response bytes wrk read, ÷ 4,120: a frame's 24-byte header and 4,096-byte page), the
# checkpoint thread's copies (its wchar) and the load average.
#   bench/create_cost.sh DATA_DIR RUN_DIR [SECONDS]   SECONDS default 8 (after a 1 s warm-up)
# BENCH_RAPPORT: the server binary (default build/release/src/rapport). Needs gdb (to find the
# checkpoint thread, whose stack is in SqliteStore::checkpoint_loop) and wrk. RUN_DIR is replaced
# by a copy of DATA_DIR and deleted afterwards. Other wrk.lua switches (BENCH_RANDOM_PHONES=1,
# BENCH_IDEMPOTENCY=1) pass through the environment.
set -euo pipefail
DATA=${1:?usage: bench/create_cost.sh DATA_DIR RUN_DIR [SECONDS]}
RUN=${2:?usage: bench/create_cost.sh DATA_DIR RUN_DIR [SECONDS]}
SECS=${3:-8}
RAPPORT=${BENCH_RAPPORT:-build/release/src/rapport}
[[ -f $DATA/rapport.db && -f $DATA/bench/token ]] || { echo "$DATA: no rapport-gen data set" >&2; exit 2; }
[[ $(realpath -m "$RUN") != $(realpath -m "$DATA") ]] || { echo "RUN_DIR must not be DATA_DIR" >&2; exit 2; }
WORK=$(mktemp -d /tmp/rapport-cost.XXXXXX)
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK" "$RUN"
}
trap cleanup EXIT

# shellcheck source=bench/serve_copy.sh
source "$(dirname "$0")/serve_copy.sh"
serve_copy "$DATA" "$RUN" "$WORK/server.log"
port=$PORT
ckpt=$(gdb -p "$SERVER_PID" -batch -ex 'thread apply all bt' 2>/dev/null |
  awk '/^Thread .*LWP/ { match($0, /LWP [0-9]+/); lwp = substr($0, RSTART + 4, RLENGTH - 4) }
       /checkpoint_loop/ { print lwp; exit }')
[[ -n $ckpt ]] || { echo "checkpoint thread not found" >&2; exit 1; }
URL="http://127.0.0.1:$port"
BENCH_DIR=$RUN/bench wrk -t2 -c16 -d1s -s bench/wrk/create.lua "$URL" >/dev/null

cpu() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
ctx() { cat /proc/"$SERVER_PID"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
wchar() { awk '/^wchar/ { print $2 }' "$1"; }
c0=$(cpu); x0=$(ctx); w0=$(wchar /proc/$SERVER_PID/io); k0=$(wchar /proc/$SERVER_PID/task/$ckpt/io)
load=$(cut -d' ' -f1 /proc/loadavg)
BENCH_DIR=$RUN/bench wrk -t2 -c64 -d"${SECS}s" -s bench/wrk/create.lua "$URL" >"$WORK/wrk.txt"
c1=$(cpu); x1=$(ctx); w1=$(wchar /proc/$SERVER_PID/io); k1=$(wchar /proc/$SERVER_PID/task/$ckpt/io)
load1=$(cut -d' ' -f1 /proc/loadavg)
grep -q 'Non-2xx\|Socket errors' "$WORK/wrk.txt" && { cat "$WORK/wrk.txt"; echo "errors" >&2; exit 1; }
python3 - "$WORK/wrk.txt" "$(getconf CLK_TCK)" "$c0" "$c1" "$x0" "$x1" "$w0" "$w1" "$k0" "$k1" \
  "$load" "$load1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r'(\d+) requests in ([\d.]+)s, ([\d.]+)([KMG]?B) read', text)
n, secs = int(m.group(1)), float(m.group(2))
read = float(m.group(3)) * {'B': 1, 'KB': 1024, 'MB': 1024**2, 'GB': 1024**3}[m.group(4)]
tck = int(sys.argv[2])
c0, c1, x0, x1, w0, w1, k0, k1 = map(int, sys.argv[3:11])
cpu_ms = (c1 - c0) / tck * 1000 / n
frames = ((w1 - w0) - (k1 - k0) - read) / 4120 / n
print(f"creates/s {n / secs:.0f}  cpu/create {cpu_ms:.3f} ms  ctx/create {(x1 - x0) / n:.2f}  "
      f"WAL frames/create {frames:.1f}  checkpoint KB/create {(k1 - k0) / n / 1024:.1f}  "
      f"load {sys.argv[11]}-{sys.argv[12]}")
PY
