#!/usr/bin/env bash
# bench/peers/ejabberd/ejabberd.sh - runs Debian's ejabberd as the XMPP peer of the chat benchmark,
# as a plain foreground process on loopback ports, in a temporary folder owned by the ejabberd
# user (ejabberdctl always switches to that user, so config, spool and logs must be its own).
#
#   ejabberd.sh prepare C2S_PORT HTTP_PORT DIST_PORT   creates the folder, prints its path
#   ejabberd.sh run DIR              execs ejabberdctl ... foreground as the ejabberd user (run it
#                                    in the background; its pid leads to beam.smp through erl)
#   ejabberd.sh wait DIR PORT PID    waits (30 s at most) until ejabberd is started and the c2s
#                                    port accepts connections; fails at once if PID exits
#   ejabberd.sh beam PID             prints the pid of the beam.smp below PID (the real server,
#                                    for CPU and RSS sampling)
#   ejabberd.sh stop DIR PID         stops the node cleanly with ejabberdctl stop, waits for PID
#                                    (SIGTERM to beam.smp after 20 s), removes DIR
# The distribution port is fixed and bound to 127.0.0.1 (ERL_DIST_PORT), so no epmd daemon is
# started or left behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

ctl() { local dir=$1; shift; ejabberdctl --ctl-config "$dir/ejabberdctl.cfg" --config "$dir/ejabberd.yml" \
  --spool "$dir/spool" --logs "$dir/logs" "$@"; }

# Descendants of a pid, breadth first (pgrep -P one level at a time).
descendants() {
  local queue=("$1") p kids
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}")
    kids=$(pgrep -P "$p" || true)
    for k in $kids; do echo "$k"; queue+=("$k"); done
  done
}

beam_of() {
  local p
  for p in $(descendants "$1"); do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = beam.smp ]; then echo "$p"; return 0; fi
  done
  return 1
}

case ${1:-} in
  prepare)
    c2s=$2 http=$3 dist=$4
    dir=$(mktemp -d "${TMPDIR:-/tmp}/parley-ejabberd.XXXXXX")
    mkdir -p "$dir/spool" "$dir/logs" "$dir/modules.d"
    sed -e "s/@C2S_PORT@/$c2s/g" -e "s/@HTTP_PORT@/$http/g" "$here/ejabberd.yml.in" >"$dir/ejabberd.yml"
    sed -e "s|@DIR@|$dir|g" -e "s/@NODE@/parleybench$c2s@localhost/g" -e "s/@DIST_PORT@/$dist/g" \
      "$here/ejabberdctl.cfg.in" >"$dir/ejabberdctl.cfg"
    chown -R ejabberd:ejabberd "$dir"
    chmod 700 "$dir"
    echo "$dir" ;;
  run)
    dir=$2
    cd "$dir"
    # Become the ejabberd user with setpriv rather than letting ejabberdctl use su: su goes
    # through PAM (pam_limits), which puts the open-files limit back to 1024, and ejabberd then
    # fails accept() with "too many open files" past about 1,000 clients. setpriv keeps the
    # limit the caller raised (run.sh: ulimit -n to the hard limit).
    home=$(getent passwd ejabberd | cut -d: -f6)
    exec setpriv --reuid=ejabberd --regid=ejabberd --init-groups -- env HOME="$home" \
      ejabberdctl --ctl-config "$dir/ejabberdctl.cfg" --config "$dir/ejabberd.yml" \
      --spool "$dir/spool" --logs "$dir/logs" foreground ;;
  wait)
    dir=$2 port=$3 pid=$4
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || { echo "ejabberd.sh: ejabberd exited at start-up" >&2; exit 1; }
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
         ctl "$dir" status >/dev/null 2>&1; then exit 0; fi
      sleep 0.1
    done
    echo "ejabberd.sh: ejabberd did not start within 30 s; see $dir/logs" >&2
    exit 1 ;;
  beam)
    for _ in $(seq 1 100); do beam_of "$2" && exit 0; sleep 0.1; done
    exit 1 ;;
  stop)
    dir=$2 pid=$3
    beam=$(beam_of "$pid" || true)
    ctl "$dir" stop >/dev/null 2>&1 || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null && [ -n "$beam" ]; then
      echo "ejabberd.sh: ejabberd did not stop within 20 s; SIGTERM to beam.smp $beam" >&2
      kill -TERM "$beam" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir" ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
