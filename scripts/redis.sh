#!/usr/bin/env bash
# A throwaway redis-server for the tests and `make cluster`: loopback only, a fixed non-default
# port, no persistence, its pid file and log under build/redis/ (relative to the repository), no
# system service. Idempotent: `start` leaves a running one alone, `stop` is quiet when none runs.
#   scripts/redis.sh start|stop|restart|url|status
# PARLEY_REDIS_PORT overrides the port (default 16379).
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PARLEY_REDIS_PORT:-16379}"
dir="build/redis"
pidfile="$dir/redis-$port.pid"

running() { redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; }

start() {
  running && return 0
  command -v redis-server >/dev/null || { echo "redis.sh: redis-server is not installed (scripts/deps.sh)" >&2; exit 1; }
  mkdir -p "$dir"
  # Run as whoever we are (root in CI is fine: nothing is written but the pid file and log).
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
    --pidfile "$PWD/$pidfile" --logfile "$PWD/$dir/redis-$port.log" --dir "$PWD/$dir" \
    --protected-mode yes >/dev/null
  for _ in $(seq 1 200); do running && return 0; sleep 0.05; done
  echo "redis.sh: redis-server did not answer on 127.0.0.1:$port" >&2
  tail -n 20 "$dir/redis-$port.log" >&2 || true
  exit 1
}

stop() {
  if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    fi
    rm -f "$pidfile"
  fi
  # Started by someone else on our port (a stale run): ask it to go.
  if running; then redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  url) echo "redis://127.0.0.1:$port" ;;
  status) running && echo "running on 127.0.0.1:$port" || { echo "not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|restart|url|status" >&2; exit 2 ;;
esac
