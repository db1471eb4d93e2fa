#!/usr/bin/env bash
# bench/peers/setup.sh - installs what the peer servers of the side-by-side benchmark need, if
# missing: Debian's ejabberd (the XMPP MUC peer) and libexpat1-dev (the load generator's XMPP
# parser), and the pinned Socket.IO in bench/peers/socketio/node_modules (npm ci from the lock
# file). Called by bench/run.sh when a peer is requested; not part of `make test`. Needs root for
# apt-get (only when a package is missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need=()
command -v ejabberdctl >/dev/null 2>&1 || need+=(ejabberd)
dpkg-query -W -f='${Status}' libexpat1-dev 2>/dev/null | grep -q "install ok installed" ||
  need+=(libexpat1-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "peers/setup.sh: installing ${need[*]} with apt-get" >&2
  # The package's own service must not start: the benchmark runs ejabberd itself, on its own
  # ports, and a system instance would hold 5222. policy-rc.d tells invoke-rc.d not to start it.
  prc=/usr/sbin/policy-rc.d
  made_prc=0
  if [ ! -e "$prc" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$prc" && chmod +x "$prc" && made_prc=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends "${need[@]}" >&2; }
  [ "$made_prc" = 0 ] || rm -f "$prc"
fi

if [ ! -d "$here/socketio/node_modules/socket.io" ]; then
  echo "peers/setup.sh: npm ci in bench/peers/socketio" >&2
  (cd "$here/socketio" && npm ci --no-audit --no-fund >&2)
fi
