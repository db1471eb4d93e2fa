#!/usr/bin/env bash
# Installs the Debian packages Parley needs to build and test, if any are missing. Runs as root
# directly (CI) or through sudo (a developer's machine). Idempotent and quiet when all is there.
set -euo pipefail
pkgs=(build-essential pkg-config libuv1-dev node-llhttp libwslay-dev libssl-dev libjansson-dev
      libsqlite3-dev libsodium-dev libunistring-dev libcmocka-dev uthash-dev sqlite3
      clang libclang-rt-14-dev valgrind redis-server libhiredis-dev libexpat1-dev
      postgresql libpq-dev nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from outside Debian (as on the CI image); only install them if absent.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
