# Sourced by bench/create_cost.sh and bench/wal_frames.sh: a server on a fresh copy of a data set.
#   serve_copy DATA RUN LOG   replaces RUN by a copy of DATA (the caller has checked that DATA is
#                             a rapport-gen data set and RUN is not DATA), starts $RAPPORT serve on it (port 0,
#                             2 I/O threads, 4 workers, no scheduled duplicate scan) logging to
#                             LOG, and waits until it listens: sets SERVER_PID and PORT.
serve_copy() {
  local data=$1 run=$2 log=$3
  rm -rf "$run"
  cp -r "$data" "$run"
  "$RAPPORT" serve --data "$run" --port 0 --io-threads 2 --workers 4 --scan-every 0 >"$log" 2>&1 &
  SERVER_PID=$!
  PORT=
  for _ in $(seq 1 6000); do
    PORT=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$log")
    [[ -n $PORT ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $PORT ]] || { tail -20 "$log"; echo "server did not start" >&2; exit 1; }
}
