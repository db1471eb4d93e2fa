#!/usr/bin/env bash
# bench/cluster.sh - the chat scenario across several Parley nodes (issue 8), against one node.
#
# Starts the throwaway PostgreSQL (scripts/pg.sh) and Redis (scripts/redis.sh), then runs the
# load generator's chat scenario three ways, each on a fresh schema and freshly started servers:
#   sqlite-1   one node on SQLite (the default deployment), for reference
#   pg-1       one node on PostgreSQL
#   pg-N       N nodes (default 3) on PostgreSQL + Redis; user i connects to node i % N, so in a
#              chat of 10 most recipients are on another node than the sender
# and prints the load generator's table (send-to-receive latency is cross-node for pg-N), each
# node's CPU over the measured window, and PostgreSQL's and Redis' CPU.
#
# Usage: bench/cluster.sh [--nodes N] [--users U] [--chat-size K] [--rate R] [--duration T]
#                         [--warmup S] [--only "sqlite-1 pg-1 pg-3"] [-- extra loadgen options]
set -euo pipefail
shopt -s lastpipe

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
PARLEY_BIN=${PARLEY_BIN:-$root/build/parley}
LOADGEN=${LOADGEN:-$here/build/loadgen}
nodes=3 users=1000 chat_size=10 rate=2000 duration=20 warmup=3 only="" extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes=$2; shift ;;
    --users) users=$2; shift ;;
    --chat-size) chat_size=$2; shift ;;
    --rate) rate=$2; shift ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --only) only=$2; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
configs=${only:-"sqlite-1 pg-1 pg-$nodes"}

[ -x "$PARLEY_BIN" ] || make -C "$root" build/parley
[ -x "$LOADGEN" ] || make -C "$here"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"$root/scripts/pg.sh" start >/dev/null
"$root/scripts/redis.sh" start >/dev/null
pg_url=$("$root/scripts/pg.sh" url)
redis_url=$("$root/scripts/redis.sh" url)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-cluster.XXXXXX")
pids=()
schema=""
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "$schema" ] || psql -q "$pg_url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pids_of() { pgrep -x "$1" | tr '\n' ' '; }

# start_nodes COUNT STORE BUS: starts COUNT nodes; sets ports[] and pids[].
start_nodes() {
  local count=$1 store=$2 bus=$3
  ports=()
  for i in $(seq 1 "$count"); do
    local port; port=$(pick_port)
    mkdir -p "$tmp/data$i"
    PARLEY_LISTEN="127.0.0.1:$port" PARLEY_DATA="$tmp/data$i" PARLEY_RATE_LIMITS=0 \
      PARLEY_LOG_LEVEL=warn PARLEY_STORE="$store" PARLEY_BUS="$bus" \
      "$PARLEY_BIN" >>"$tmp/node$i.log" 2>&1 &
    pids+=($!)
    ports+=("$port")
    for _ in $(seq 1 100); do
      curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
      kill -0 "${pids[-1]}" 2>/dev/null || { tail -n 20 "$tmp/node$i.log" >&2; exit 1; }
      sleep 0.1
    done
  done
}

stop_nodes() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

echo "Parley cluster benchmark: [$configs], $users users in chats of $chat_size, $rate msg/s, $(nproc) CPUs"
status=0
for cfg in $configs; do
  kind=${cfg%-*} count=${cfg#*-}
  store="" bus=""
  if [ "$kind" = pg ]; then
    schema="bench_$(date +%s)_$RANDOM"
    psql -q "$pg_url" -c "CREATE SCHEMA $schema" >/dev/null
    store="$pg_url?options=-csearch_path%3D$schema"
    [ "$count" -gt 1 ] && bus=$redis_url
  fi
  start_nodes "$count" "$store" "$bus"
  others=$(IFS=,; echo "${ports[*]:1}")
  echo
  echo "== $cfg: nodes on ${ports[*]} =="
  # CPU of every node, PostgreSQL and Redis over the measured window (sampled by this script).
  : >"$tmp/lg.log"
  (
    # The measured window starts `warmup` after the load generator's "load:" line.
    until grep -q "^  load:" "$tmp/lg.log" 2>/dev/null; do sleep 0.05; done
    sleep "$warmup"
    declare -A t0
    for p in "${pids[@]}" $(pids_of postgres) $(pids_of redis-server); do t0[$p]=$(ticks "$p"); done
    sleep "$duration"
    hz=$(getconf CLK_TCK)
    line="  CPU over the window (% of one core):"
    for i in "${!pids[@]}"; do
      p=${pids[$i]}; line="$line node$((i + 1)) $(( ( $(ticks "$p") - ${t0[$p]} ) * 100 / hz / duration ))%"
    done
    pg=0; for p in $(pids_of postgres); do pg=$(( pg + $(ticks "$p") - ${t0[$p]:-$(ticks "$p")} )); done
    rd=0; for p in $(pids_of redis-server); do rd=$(( rd + $(ticks "$p") - ${t0[$p]:-$(ticks "$p")} )); done
    echo "$line; postgres $(( pg * 100 / hz / duration ))%; redis $(( rd * 100 / hz / duration ))%"
  ) &
  sampler=$!
  if ! "$LOADGEN" --url "ws://127.0.0.1:${ports[0]}" ${others:+--nodes "$others"} \
      --scenario chat --users "$users" --chat-size "$chat_size" --rate "$rate" \
      --duration "$duration" --warmup "$warmup" --server-pid "${pids[0]}" \
      --users-file "$tmp/users-$cfg.txt" --csv "$tmp/results.csv" --label "$cfg" \
      --setup-timeout 1800 ${extra[@]+"${extra[@]}"} 2>&1 | tee "$tmp/lg.log"; then
    echo "cluster.sh: $cfg failed; last lines of node 1's log:" >&2
    tail -n 20 "$tmp/node1.log" >&2
    status=1
  fi
  grep -q "^  load:" "$tmp/lg.log" || kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  for port in "${ports[@]}"; do
    curl -sf "http://127.0.0.1:$port/metrics" | awk -v port="$port" '
      /^parley_delivery_seconds\{quantile="0\.(5|99)"\}/ { q = ($1 ~ /"0\.5"/) ? "p50" : "p99"; v[q] = $2 * 1000 }
      /^parley_store_commit_latency_seconds\{quantile="0\.(5|99)"\}/ { q = ($1 ~ /"0\.5"/) ? "p50" : "p99"; cm[q] = $2 * 1000 }
      /^parley_store_batches_total / { batches = $2 }
      /^parley_store_requests_total / { reqs = $2 }
      /^parley_catch_ups_total / { cu = $2 }
      END { printf "  node :%s server-side delivery p50 %.3f ms, p99 %.3f ms; store commit p50 %.3f ms, p99 %.3f ms; %.1f requests/batch; %d catch-ups\n", port, v["p50"], v["p99"], cm["p50"], cm["p99"], batches ? reqs / batches : 0, cu }' || true
  done
  stop_nodes
  if [ -n "$schema" ]; then
    psql -q "$pg_url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    schema=""
  fi
done

if [ -s "$tmp/results.csv" ]; then
  echo
  echo "== summary (latency in ms; srvCPU is node 1 only, see the CPU lines above) =="
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i
             print "config users chat offered sends/s deliv/s p50 p99 p999 max errors missing lgCPU%"; next }
           { printf "%s %s %s %s %s %s %s %s %s %s %d %s %s\n", $c["label"], $c["users"], $c["chat_size"],
             $c["offered"], $c["sends_per_s"], $c["deliveries_per_s"], $c["p50_ms"], $c["p99_ms"],
             $c["p999_ms"], $c["max_ms"], $c["errors"] + $c["rate_limited"], $c["missing"],
             $c["loadgen_cpu_pct"] }' "$tmp/results.csv" | column -t
  mkdir -p "$here/build"
  tail -n +2 "$tmp/results.csv" >>"$here/build/cluster.csv" 2>/dev/null || true
fi
exit $status
