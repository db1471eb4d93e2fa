#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and local runs: `scripts/pg.sh start|stop|status|url`.
#
# The cluster lives in build/pg (or $PARLEY_PG_DIR), listens on 127.0.0.1 only, on a fixed
# non-default port ($PARLEY_PG_PORT, default 55432), with trust authentication for the `parley`
# role and a database `parley`; no system service is involved. PostgreSQL refuses to run as root,
# so when run as root the server runs as the `postgres` user (runuser), which then owns the
# folder. `start` is idempotent: a running cluster is left as it is. `url` prints the URL to put
# in PARLEY_STORE (or PARLEY_TEST_PG / PARLEY_TEST_STORE for the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

PGBIN=${PARLEY_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PORT=${PARLEY_PG_PORT:-55432}
DIR=${PARLEY_PG_DIR:-build/pg}
URL="postgres://parley@127.0.0.1:$PORT/parley"

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The postgres user must reach the folder; a repository under a private home may not allow it,
# and then the cluster goes to $TMPDIR instead.
pick_dir() {
  mkdir -p "$DIR"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(cd "$DIR" && pwd)" 2>/dev/null; then
    DIR="${TMPDIR:-/tmp}/parley-pg-$PORT"
    mkdir -p "$DIR"
  fi
  DIR="$(cd "$DIR" && pwd)"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DIR"
  chmod 700 "$DIR"
}

running() {
  [ -f "$DIR/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

wait_ready() {
  for _ in $(seq 1 100); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && return 0
    sleep 0.1
  done
  echo "pg.sh: PostgreSQL did not accept connections on port $PORT" >&2
  return 1
}

start() {
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    scripts/deps.sh
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  pick_dir
  if running; then
    wait_ready
    return 0
  fi
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    rm -rf "$DIR/data"
    as_owner "$PGBIN/initdb" -D "$DIR/data" -U parley --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
    cat >>"$DIR/data/postgresql.conf" <<EOF
# scripts/pg.sh: loopback only, no Unix socket, on its own port.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
max_connections = 200
EOF
  fi
  # The port is given again on the command line: a cluster made earlier with another
  # PARLEY_PG_PORT keeps that one in its postgresql.conf.
  as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 -o "-p $PORT" start \
    >/dev/null ||
    { tail -n 20 "$DIR/server.log" >&2; exit 1; }
  wait_ready
  if ! "$PGBIN/psql" -qAt "postgres://parley@127.0.0.1:$PORT/postgres" \
      -c "SELECT 1 FROM pg_database WHERE datname = 'parley'" | grep -q 1; then
    "$PGBIN/psql" -q "postgres://parley@127.0.0.1:$PORT/postgres" -c "CREATE DATABASE parley" \
      >/dev/null
  fi
}

stop() {
  pick_dir
  if running; then
    as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) pick_dir; running && echo "running on 127.0.0.1:$PORT ($DIR)" || { echo stopped; exit 3; } ;;
  url) echo "$URL" ;;
  *) echo "usage: scripts/pg.sh start|stop|status|url" >&2; exit 2 ;;
esac
