#!/usr/bin/env bash
# SQL injection scan (issue 5, "Hostile input"): starts rapport with demo data, makes an API
# token and runs Debian's sqlmap (apt-get install sqlmap) against the list and search endpoints
# with the bearer header: GET /api/v1/accounts ?filter= (the whole parameter, and injection
# markers inside the JSON: a filter value and a field name), ?sort=, ?q=, ?cursor=, and
# GET /api/v1/search?q=. --batch --level=2 --risk=1; each run bounded by SQLMAP_RUN_TIMEOUT
# seconds (default 300).
# Exit status: 0 no injection found; 1 sqlmap reported an injectable parameter; 2 a run could not
# complete (timeout, server gone, sqlmap missing). Not part of make test (several minutes).
#   tests/security/sqlmap.sh                  # uses build/rapport or $RAPPORT_BIN
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${RAPPORT_BIN:-$PWD/build/rapport}
RUN_TIMEOUT=${SQLMAP_RUN_TIMEOUT:-300}
command -v sqlmap >/dev/null || { echo "sqlmap missing: apt-get install sqlmap"; exit 2; }
[[ -x $BIN ]] || { echo "no rapport binary at $BIN (set RAPPORT_BIN)"; exit 2; }

WORK=$(mktemp -d /tmp/rapport-sqlmap.XXXXXX)
SERVER_PID=
cleanup() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; if [[ -n ${SQLMAP_KEEP:-} ]]; then echo "logs in $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

"$BIN" demo --data "$WORK/data" --accounts 200 >"$WORK/demo.log" 2>&1 || { cat "$WORK/demo.log"; exit 2; }
"$BIN" user add sqlmap --password secret-password-1 --role Administrator --data "$WORK/data" >/dev/null || exit 2
TOKEN=$("$BIN" token create sqlmap --data "$WORK/data" | tail -1 | tr -d '[:space:]')
"$BIN" serve --data "$WORK/data" --port 0 --static "$WORK/none" --log-level error >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL=
for _ in $(seq 100); do
  URL=$(grep -oE "http://[0-9.]+:[0-9]+" "$WORK/server.log" | head -1)
  [[ -n $URL ]] && break
  sleep 0.1
done
[[ -n $URL ]] || { echo "server did not start:"; cat "$WORK/server.log"; exit 2; }
echo "rapport at $URL, sqlmap $(sqlmap --version 2>/dev/null | head -1)"

# One sqlmap run: name, url, extra args.
found=0
incomplete=0
run() {
  local name=$1 url=$2; shift 2
  local log="$WORK/$name.log"
  local t0=$SECONDS
  timeout "$RUN_TIMEOUT" sqlmap -u "$url" -H "Authorization: Bearer $TOKEN" --batch --level=2 --risk=1 \
    --flush-session --output-dir "$WORK/out" --disable-coloring --threads 2 --timeout 10 --retries 1 "$@" >"$log" 2>&1
  local rc=$?
  local verdict
  if grep -qE "is vulnerable|identified the following injection point|appears to be .*injectable" "$log"; then
    verdict="INJECTABLE"; found=1
    grep -E -A8 "identified the following injection point|is vulnerable|appears to be" "$log" | head -40
  elif [[ $rc == 124 ]]; then
    verdict="TIMEOUT after ${RUN_TIMEOUT}s"; incomplete=1
  elif grep -qE "all tested parameters do not appear to be injectable|does not seem to be injectable" "$log"; then
    verdict="not injectable"
  else
    verdict="inconclusive (exit $rc)"; incomplete=1
    tail -15 "$log"
  fi
  printf '%-24s %-28s %4ss\n' "$name" "$verdict" $((SECONDS - t0))
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server died during $name"; tail -20 "$WORK/server.log"; exit 2; }
}

enc() { python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1], safe="*"))' "$1"; }
A="$URL/api/v1/accounts"
# Values that match some demo rows, so the answers depend on them (boolean-based tests need that).
run accounts-params "$A?filter=$(enc '{"field":"name","op":"contains","value":"Foods"}')&sort=name&q=lakeside&limit=5" \
  -p "filter,sort,q" --answers="inject inside=Y"
run accounts-filter-value "$A?filter=$(enc '{"field":"name","op":"contains","value":"Foods*"}')&limit=5"
run accounts-filter-in "$A?filter=$(enc '{"field":"city","op":"in","value":["Nanjing*","深圳"]}')&limit=5"
run accounts-filter-field "$A?filter=$(enc '{"field":"name*","op":"=","value":"x"}')&limit=5"
CURSOR=$(curl -s -H "Authorization: Bearer $TOKEN" "$A?sort=name&limit=2" | python3 -c 'import json,sys;print(json.load(sys.stdin)["next_cursor"])')
run accounts-cursor "$A?sort=name&limit=2&cursor=$CURSOR" -p cursor
run search-q "$URL/api/v1/search?q=lakeside&limit=5" -p q

# The server logs at error level: anything there (a handler that threw, a 5xx) is worth a look.
if [[ -s $WORK/server.log ]] && grep -qvE "listening on|log in as" "$WORK/server.log"; then
  echo "server errors during the scan:"; grep -vE "listening on|log in as" "$WORK/server.log" | head -20
fi
if [[ $found != 0 ]]; then echo "sqlmap: INJECTION FOUND"; exit 1; fi
if [[ $incomplete != 0 ]]; then echo "sqlmap: no injection found, but some runs did not complete"; exit 2; fi
echo "sqlmap: no injectable parameter found"
