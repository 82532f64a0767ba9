#!/usr/bin/env bash
# Starts a throw-away PostgreSQL 15 cluster for tests: a temp dir, loopback only, a free port,
# trust authentication, fsync off. Prints two lines: the URL
# (postgresql://postgres@127.0.0.1:PORT/postgres) and the cluster's directory, which
# tests/pg/stop_pg.sh DIR stops and removes. initdb refuses to run as root, so as root the
# cluster runs as Debian's `postgres` system user (runuser). PG_BIN overrides the binaries' dir.
set -euo pipefail

bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [[ ! -x $bin/initdb ]]; then
  echo "start_pg.sh: $bin/initdb not found; install PostgreSQL 15 (scripts/bootstrap.sh --test)" >&2
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/rapport_pg.XXXXXX")
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi
fail() {
  echo "start_pg.sh: $1" >&2
  [[ -f $dir/$2 ]] && tail -n 20 "$dir/$2" >&2
  rm -rf "$dir"
  exit 1
}

"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 \
  --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || fail "initdb failed" initdb.log

# A port that nothing listens on now; a race with another process is caught by pg_ctl failing
# to start, and another port is tried.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
    2>/dev/null || echo $((20000 + RANDOM % 40000))
}
for _ in 1 2 3 4 5; do
  port=$(free_port)
  if "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null 2>&1; then
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    echo "$dir"
    exit 0
  fi
done
fail "pg_ctl start failed" server.log
