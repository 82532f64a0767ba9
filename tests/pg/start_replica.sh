#!/usr/bin/env bash
# Starts a streaming replica of a test cluster (tests/pg/start_pg.sh) for read-replica tests:
# pg_basebackup -R from PRIMARY_URL into a temp dir, hot standby on loopback, a free port.
# Usage: start_replica.sh PRIMARY_URL. Prints two lines: the replica's URL (the same user and
# database as PRIMARY_URL) and its directory, which tests/pg/stop_pg.sh DIR stops and removes.
# As root the replica runs as the `postgres` system user (runuser), as start_pg.sh does.
set -euo pipefail

primary=${1:?usage: start_replica.sh PRIMARY_URL}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
dir=$(mktemp -d "${TMPDIR:-/tmp}/rapport_pg_replica.XXXXXX")
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi
fail() {
  echo "start_replica.sh: $1" >&2
  [[ -f $dir/$2 ]] && tail -n 20 "$dir/$2" >&2
  rm -rf "$dir"
  exit 1
}

# -R writes standby.signal and primary_conninfo; -X stream copies the WAL needed to start.
"${as_pg[@]}" "$bin/pg_basebackup" -d "$primary" -D "$dir/data" -R -X stream -c fast \
  --no-sync >"$dir/basebackup.log" 2>&1 || fail "pg_basebackup failed" basebackup.log

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
    2>/dev/null || echo $((20000 + RANDOM % 40000))
}
for _ in 1 2 3 4 5; do
  port=$(free_port)
  if "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c hot_standby=on" \
    start >/dev/null 2>&1; then
    # The primary's URL with the replica's port.
    python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); host = p.hostname or "127.0.0.1"
auth = (p.username + "@") if p.username else ""
print(u.urlunsplit((p.scheme, auth + host + ":" + sys.argv[2], p.path, p.query, p.fragment)))' \
      "$primary" "$port"
    echo "$dir"
    exit 0
  fi
done
fail "pg_ctl start failed" server.log
