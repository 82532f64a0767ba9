#!/usr/bin/env bash
# Stops a cluster started by tests/pg/start_pg.sh and removes its directory. Usage: stop_pg.sh DIR
set -euo pipefail

dir=${1:?usage: stop_pg.sh DIR (the second line printed by start_pg.sh)}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [[ ! -f $dir/data/PG_VERSION ]]; then
  echo "stop_pg.sh: $dir is not a cluster started by start_pg.sh" >&2
  exit 1
fi
as_pg=()
[[ $(id -u) -eq 0 ]] && as_pg=(runuser -u postgres --)
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
rm -rf "$dir"
