#!/usr/bin/env bash
# Puts Debian's llhttp C sources (package node-llhttp) under build/deps/node-llhttp, where the
# Makefile compiles them from (LLHTTP, LLHTTP_INC). The package is downloaded and unpacked, not
# installed: installing it would pull in Debian's nodejs 18 (through node-debug and node-semver)
# over a newer Node the machine may have. The sources stay Debian's and never enter this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=build/deps/node-llhttp
[ -f "$dest/usr/share/llhttp/llhttp.c" ] && exit 0
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
# As root, apt would fetch as its sandbox user, who cannot write here.
sandbox=(); [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fetch() { (cd "$tmp" && apt-get download -qq "${sandbox[@]}" node-llhttp) >/dev/null 2>&1; }
if ! fetch; then
  # A machine whose package lists were never fetched (or are stale) knows no node-llhttp yet.
  echo "llhttp: apt-get update (for node-llhttp)"
  $sudo apt-get update -qq
  fetch || { echo "llhttp: cannot download Debian's node-llhttp (apt-get download node-llhttp)" >&2; exit 1; }
fi
rm -rf "$dest" && mkdir -p "$dest"
dpkg-deb -x "$tmp"/node-llhttp_*.deb "$dest"
[ -f "$dest/usr/share/llhttp/llhttp.c" ] || { echo "llhttp: node-llhttp has no usr/share/llhttp/llhttp.c" >&2; exit 1; }
echo "llhttp: Debian's node-llhttp $(dpkg-deb -f "$tmp"/node-llhttp_*.deb Version) unpacked into $dest"
