#!/usr/bin/env bash
# Installs what Parley needs, if anything is missing, in two sets:
#   scripts/deps.sh run    what `make run` needs: a compiler, the libraries, Debian's llhttp
#                          sources (scripts/llhttp.sh) and Node >= 20.19 for the web build
#                          (scripts/node.sh)
#   scripts/deps.sh test   all that, plus what `make test` runs: cmocka, clang and its runtime
#                          for the fuzz targets, valgrind, Redis, PostgreSQL (the default)
# Debian packages come from apt-get, as root directly (CI) or through sudo (a developer's
# machine). Idempotent and quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
set_name="${1:-test}"
run_pkgs=(build-essential pkg-config libuv1-dev libwslay-dev libssl-dev libjansson-dev
          libsqlite3-dev libsodium-dev libunistring-dev uthash-dev libhiredis-dev libpq-dev libcurl4-openssl-dev
          libgd-dev libwebp-dev)
test_pkgs=(libcmocka-dev sqlite3 clang libclang-rt-14-dev valgrind redis-server libexpat1-dev
           postgresql)
case "$set_name" in
  run) pkgs=("${run_pkgs[@]}") ;;
  test) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: scripts/deps.sh run|test" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
scripts/llhttp.sh
scripts/node.sh
