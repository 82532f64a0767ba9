#!/usr/bin/env bash
# Installs exactly what Rapport needs on Debian 12, and nothing when it is already there.
# Idempotent; uses sudo when not root. Usage: scripts/bootstrap.sh [--test]  (--test adds the
# packages only the test suite needs: Chromium for browser tests, PostgreSQL, wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(build-essential cmake ninja-build ccache pkg-config
  libboost-dev libboost-system-dev rapidjson-dev liburiparser-dev libsqlite3-dev sqlite3
  libsodium-dev libphonenumber-dev libicu-dev libspdlog-dev libfmt-dev libcli11-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev libpq-dev libxlsxwriter-dev libtcmalloc-minimal4
  nodejs npm)
test_pkgs=(chromium fonts-noto-cjk postgresql wrk clang-14 libclang-rt-14-dev)

want=("${build_pkgs[@]}")
[[ "${1:-}" == "--test" ]] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  # node/npm may come from the machine image rather than Debian; accept any working install.
  if [[ $p == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# JavaScript packages from the committed lock files; skipped when node_modules is current.
npm_install() {
  local dir=$1
  [[ -f $dir/package-lock.json ]] || return 0
  if [[ ! -d $dir/node_modules || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_install web
[[ "${1:-}" == "--test" ]] && npm_install tests
exit 0
