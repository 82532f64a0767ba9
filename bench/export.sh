#!/usr/bin/env bash
# Export throughput and memory: GET /api/v1/<plural>/export.{csv,vcf,xlsx} of a whole list from a
# data set made by rapport-gen (or any data directory with bench/token), one format after another.
#   bench/export.sh DATA_DIR [PLURAL] [FORMATS]   PLURAL default accounts, FORMATS default "csv vcf xlsx"
# For each format prints rows, MB, seconds, rows/s (client wall time), the server's CPU seconds and
# its peak RSS during that export (VmHWM, reset before each export through /proc/PID/clear_refs).
# CSV and vCard stream page by page, so their peak RSS should not grow with the list; xlsx is
# built in a temporary file first (refused above 1,048,575 rows). The data directory is used in
# place (the server may migrate or index it at start). Needs build/release.
set -euo pipefail
DATA=${1:?usage: bench/export.sh DATA_DIR [PLURAL] [FORMATS]}
PLURAL=${2:-accounts}
FORMATS=${3:-csv vcf xlsx}
BUILD=${BUILD:-build/release}
WORK=$(mktemp -d /tmp/rapport-export.XXXXXX)
SERVER_PID=
cleanup() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
TOKEN=$(cat "$DATA/bench/token")
: >"$WORK/server.log"
"${RAPPORT:-$BUILD/src/rapport}" serve --data "$DATA" --port 0 --io-threads 2 --workers 4 --scan-every 0 \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=
for _ in $(seq 6000); do  # a large data set may build indexes at start: up to 10 minutes
  PORT=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$WORK/server.log")
  [[ -n $PORT ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
[[ -n $PORT ]] || { cat "$WORK/server.log"; exit 1; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"; }
rss() { awk "/$1/ { print int(\$2 / 1024) }" "/proc/$SERVER_PID/status"; }
echo "server RSS before: $(rss VmRSS) MB (peak since start $(rss VmHWM) MB); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for fmt in $FORMATS; do
  echo 5 >"/proc/$SERVER_PID/clear_refs"  # peak RSS := current RSS
  cpu0=$(cpu)
  start=$(date +%s.%N)
  code=$(curl -s -o "$WORK/export.$fmt" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/api/v1/$PLURAL/export.$fmt")
  end=$(date +%s.%N)
  cpu1=$(cpu)
  [[ $code == 200 ]] || { echo "export.$fmt: HTTP $code"; head -c 2000 "$WORK/export.$fmt"; echo; continue; }
  case $fmt in
    csv) rows=$(($(grep -c $'\r$' "$WORK/export.csv") - 1)) ;;  # CRLF line ends; quoted newlines in cells are bare LF
    vcf) rows=$(grep -c '^BEGIN:VCARD' "$WORK/export.vcf") ;;
    *) rows=$(python3 -c 'import sys, zipfile, re
z = zipfile.ZipFile(sys.argv[1]); print(len(re.findall(rb"<row ", z.read("xl/worksheets/sheet1.xml"))) - 1)' "$WORK/export.xlsx") ;;
  esac
  bytes=$(stat -c %s "$WORK/export.$fmt")
  awk -v f="$fmt" -v n="$rows" -v b="$bytes" -v s="$start" -v e="$end" -v c0="$cpu0" -v c1="$cpu1" -v rss="$(rss VmHWM)" \
    'BEGIN { printf "export %s: %d rows, %.1f MB, %.2f s, %d rows/s; server CPU %.2f s, %d rows per CPU-second; server peak RSS during it %d MB\n",
      f, n, b / 1e6, e - s, n / (e - s), c1 - c0, n / (c1 - c0 > 0 ? c1 - c0 : 0.01), rss }'
  rm -f "$WORK/export.$fmt"
done
