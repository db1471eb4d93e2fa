#!/usr/bin/env bash
# bench/run.sh - runs Parley's benchmark scenarios against a freshly started release server.
#
# For each scenario it starts build/parley on a free loopback port with PARLEY_RATE_LIMITS=0 and a
# temporary data directory (the same one for every scenario, so the users signed up for the first
# scenario are reused by the next: signup is deliberately slow, argon2id), runs bench/build/loadgen
# with --server-pid, and stops the server with SIGTERM. The server is restarted between scenarios
# so each one's CPU and RSS figures are its own. At the end it prints one table of every scenario
# and appends the rows to bench/build/results.csv.
#
# Usage: bench/run.sh [--quick] [--scenarios "chat typing broadcast"] [--users N] [--chat-size K]
#                     [--rate R] [--typing-rate R] [--typing-hold MS] [--duration T] [--warmup S]
#                     [--window W] [--bcast-users N] [--bcast-rate R] [--csv FILE] [--keep]
#                     [--conn-users "N1 N2"] [--conns-per-user M] [--storm-users N]
#                     [--durable-window W] [--react-rate R] [-- extra loadgen options]
# Scenarios: chat typing broadcast streams (the default set), connections, storm, durable (the chat
# population in closed loop, each user keeping W sends unacknowledged, once with
# PARLEY_DURABILITY=normal and once with fsync: acknowledged sends/s), and the sustained ones
# (issue 15), which print a row every --report-every seconds (rates, refusals, delivery and reply
# p99, server RSS, the WAL's size):
#   soak      the chat population at 80% of [--capacity R] msgs/s for [--soak-duration S] (600)
#   overload  2x capacity for 60 s, then 50% for 30 s: refusals, reply times, recovery
#   joinstorm [--storm-chat N] (1000) users connect, join and subscribe to ONE chat at once:
#             set-up time and frames received per user (the O(n^2) presence cost), then a
#             light load (one message per user over the window)
#   streams   issue 19 (bench/streams.mjs, Node): [--streams N] (100) streamed messages of
#             [--delta-rate R] (50) deltas/s each into chats of --chat-size viewers, plus one
#             viewer per chat joining halfway; and in the same run plain msg.send at the same rate
#             into the same chats: delta p99 (append to each viewer, and to the slowest one) next
#             to the plain p99, and the integrity check (every viewer's text byte for byte)
#   bigchat   a chat at the 10,000-participant ceiling (filled in SQL); [--bigchat-users N] (200)
#             of them online join, subscribe and send [--bigchat-rate R] (200) msgs/s into it
#   reactions the chat population sending --rate msgs/s and, in the same run, toggling a reaction
#             on a recent message at [--react-rate R] (2000) reactions/s: delivery p99 of each
# [--capacity R] (BENCH_CAPACITY, 4000) is the chat rate this machine carries at p99 <= 10 ms;
# measure it with --sweep first.
# The same settings can come from the environment: BENCH_SCENARIOS, BENCH_USERS, BENCH_CHAT_SIZE,
# BENCH_RATE, BENCH_TYPING_RATE (default: the chat rate), BENCH_TYPING_HOLD (ms; default: the
# load generator's), BENCH_DURATION, BENCH_WARMUP, BENCH_WINDOW, BENCH_BCAST_USERS,
# BENCH_BCAST_RATE, BENCH_CONN_USERS ("10000 19000"), BENCH_CONNS_PER_USER (1), BENCH_STORM_USERS
# (11000: 1,000 chats of 11, 10,000 sockets dropped), BENCH_DURABLE_WINDOW (4), BENCH_REACT_RATE (2000), BENCH_CSV, PARLEY_BIN, LOADGEN; PARLEY_DURABILITY (normal) and
# PARLEY_LOG_LEVEL (warn) are passed to the server.
#
# Peers (bench/peers/, bench/README.md "Peers"): [--servers "parley socketio xmpp"] runs Parley's
# scenarios, then the chat scenario once on each peer (Socket.IO, ejabberd), each on a fresh
# server, all in the same run; [--sweep "500 1000 2000 4000 8000"] instead runs the chat scenario
# at each offered msgs/s on each of --servers and prints, per server, the highest deliveries/s
# whose p99 stayed under [--p99-limit MS] (10), memory per connection, and the Parley/peer ratios.
# BENCH_SERVERS, BENCH_SWEEP, BENCH_P99_LIMIT. peers/setup.sh installs what the peers need.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
PARLEY_BIN=${PARLEY_BIN:-$root/build/parley}
LOADGEN=${LOADGEN:-$here/build/loadgen}
scenarios=${BENCH_SCENARIOS:-chat typing broadcast streams}
streams=${BENCH_STREAMS:-100}
delta_rate=${BENCH_DELTA_RATE:-50}
users=${BENCH_USERS:-1000}
chat_size=${BENCH_CHAT_SIZE:-10}
rate=${BENCH_RATE:-2000}
typing_rate=${BENCH_TYPING_RATE:-}
typing_hold=${BENCH_TYPING_HOLD:-}
react_rate=${BENCH_REACT_RATE:-2000}
duration=${BENCH_DURATION:-20}
warmup=${BENCH_WARMUP:-3}
window=${BENCH_WINDOW:-64}
bcast_users=${BENCH_BCAST_USERS:-}
bcast_rate=${BENCH_BCAST_RATE:-0}
conn_users=${BENCH_CONN_USERS:-10000 19000}
conns_per_user=${BENCH_CONNS_PER_USER:-1}
storm_users=${BENCH_STORM_USERS:-11000}
durable_window=${BENCH_DURABLE_WINDOW:-4}
capacity=${BENCH_CAPACITY:-4000}
soak_duration=${BENCH_SOAK_DURATION:-600}
report_every=${BENCH_REPORT_EVERY:-}
storm_chat=${BENCH_STORM_CHAT:-1000}
bigchat_users=${BENCH_BIGCHAT_USERS:-200}
bigchat_rate=${BENCH_BIGCHAT_RATE:-200}
servers=${BENCH_SERVERS:-parley}
sweep=${BENCH_SWEEP:-}
p99_limit=${BENCH_P99_LIMIT:-10}
csv=${BENCH_CSV:-$here/build/results.csv}
keep=0
extra=()

while [ $# -gt 0 ]; do
  case $1 in
    --quick) users=100; rate=200; duration=5; warmup=1 ;;
    --scenarios) scenarios=$2; scen_given=1; shift ;;
    --users) users=$2; shift ;;
    --chat-size) chat_size=$2; shift ;;
    --rate) rate=$2; shift ;;
    --typing-rate) typing_rate=$2; shift ;;
    --typing-hold) typing_hold=$2; shift ;;
    --react-rate) react_rate=$2; shift ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --window) window=$2; shift ;;
    --bcast-users) bcast_users=$2; shift ;;
    --bcast-rate) bcast_rate=$2; shift ;;
    --csv) csv=$2; shift ;;
    --conn-users) conn_users=$2; shift ;;
    --streams) streams=$2; shift ;;
    --delta-rate) delta_rate=$2; shift ;;
    --conns-per-user) conns_per_user=$2; shift ;;
    --storm-users) storm_users=$2; shift ;;
    --durable-window) durable_window=$2; shift ;;
    --capacity) capacity=$2; shift ;;
    --soak-duration) soak_duration=$2; shift ;;
    --report-every) report_every=$2; shift ;;
    --storm-chat) storm_chat=$2; shift ;;
    --bigchat-users) bigchat_users=$2; shift ;;
    --bigchat-rate) bigchat_rate=$2; shift ;;
    --servers) servers=$2; shift ;;
    --sweep) sweep=$2; shift ;;
    --p99-limit) p99_limit=$2; shift ;;
    --keep) keep=1 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
bcast_users=${bcast_users:-$users}
typing_rate=${typing_rate:-$rate}

[ -x "$PARLEY_BIN" ] || make -C "$root" build/parley
[ -x "$LOADGEN" ] || make -C "$here"
for s in $servers; do
  case $s in
    parley) ;;
    socketio | xmpp) peers_wanted=1 ;;
    *) echo "run.sh: unknown server $s in --servers (parley, socketio, xmpp)" >&2; exit 2 ;;
  esac
done
[ -z "${peers_wanted:-}" ] || "$here/peers/setup.sh"

# Both processes hold one socket per user.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")
server_pid=""
port=""
. "$here/peers/peers.sh"

stop_server() {
  [ -n "$server_pid" ] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    local t0; t0=$(date +%s%N)
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null ||
      echo "  shutdown: the server exited $(( ($(date +%s%N) - t0) / 1000000 )) ms after SIGTERM"
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "run.sh: server $server_pid ignored SIGTERM for 10 s; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

cleanup() {
  any_stop
  if [ "$keep" = 1 ]; then echo "run.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_server() {
  port=$(pick_port) || { echo "run.sh: no free port found" >&2; exit 1; }
  mkdir -p "$tmp/data"
  # Logging per connection would be measured too; warnings and errors still reach the log.
  PARLEY_LISTEN="127.0.0.1:$port" PARLEY_DATA="$tmp/data" PARLEY_RATE_LIMITS=0 \
    PARLEY_LOG_LEVEL="${PARLEY_LOG_LEVEL:-warn}" \
    PARLEY_DURABILITY="${1:-${PARLEY_DURABILITY:-normal}}" \
    "$PARLEY_BIN" >>"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "run.sh: the server exited at start-up; its log:" >&2
      tail -n 30 "$tmp/server.log" >&2
      exit 1
    fi
    if curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then return 0; fi
    sleep 0.1
  done
  echo "run.sh: the server did not answer /healthz within 10 s; its log:" >&2
  tail -n 30 "$tmp/server.log" >&2
  exit 1
}

echo "Parley benchmark: scenarios [$scenarios], servers [$servers]${sweep:+, sweep [$sweep] msgs/s}, server $PARLEY_BIN, $(nproc) CPUs"
# connections runs once per size: "connections" becomes "connections@10000 connections@19000".
expanded=""
for scen in $scenarios; do
  if [ "$scen" = connections ]; then
    for n in $conn_users; do expanded="$expanded connections@$n"; done
  elif [ "$scen" = durable ]; then
    expanded="$expanded durable@normal durable@fsync"
  else
    expanded="$expanded $scen"
  fi
done
# Several sockets per account need the server's per-user cap raised to match.
if [ "$conns_per_user" -gt 20 ]; then export PARLEY_MAX_CONNS_PER_USER=$conns_per_user; fi
status=0
# Sweep mode runs only the chat sweep, unless --scenarios named some (then they run first, on the
# same accounts: signups are the slow part); Parley's scenarios run when Parley is among --servers.
if { [ -n "$sweep" ] && [ -z "${scen_given:-}" ]; } || [[ " $servers " != *" parley "* ]]; then expanded=""; fi
# The server's own view of the run: the latency summaries of /metrics (last one to two minutes).
server_metrics() {
  curl -sf "http://127.0.0.1:$port/metrics" | awk '
    /^parley_(delivery_seconds|store_commit_latency_seconds|store_request_seconds|loop_turn_seconds)\{quantile="0\.(5|99)"\}/ {
      split($1, a, "{"); q = ($1 ~ /"0\.5"/) ? "p50" : "p99"; v[a[1] " " q] = $2 * 1000 }
    /^parley_loop_turn_max_seconds / { tmax = $2 * 1000 }
    /^parley_store_wal_bytes / { wal = $2 }
    /^parley_store_checkpoints_total\{result="(ok|restart|forced)"\}/ { split($1, c, "\""); ck[c[2]] = $2 }
    /^parley_store_(batches|requests|wal_frames)_total / { st[$1] = $2 }
    /^parley_store_checkpoint_hold_seconds_(sum|count) / { hold[$1] = $2 }
    /^parley_store_search_(flush|merge)_(seconds_sum|seconds_count|max_seconds) / { fl[$1] = $2 }
    END { if (length(v)) printf "  server-side (ms): delivery p50 %.3f p99 %.3f; store request p50 %.3f p99 %.3f; commit p50 %.3f p99 %.3f\n",
            v["parley_delivery_seconds p50"], v["parley_delivery_seconds p99"],
            v["parley_store_request_seconds p50"], v["parley_store_request_seconds p99"],
            v["parley_store_commit_latency_seconds p50"], v["parley_store_commit_latency_seconds p99"]
          if (length(v)) printf "  loop work per turn (ms, thread CPU): p50 %.3f p99 %.3f, max %.3f\n",
            v["parley_loop_turn_seconds p50"], v["parley_loop_turn_seconds p99"], tmax
          if (length(ck)) printf "  WAL file %.1f MB; checkpoints: %d passive, %d restart, %d forced\n",
            wal / 1048576, ck["ok"] - ck["restart"], ck["restart"], ck["forced"]
          if (hold["parley_store_checkpoint_hold_seconds_count"] > 0) printf "  writer held for a RESTART: %d times, %.3f ms on average\n",
            hold["parley_store_checkpoint_hold_seconds_count"],
            hold["parley_store_checkpoint_hold_seconds_sum"] * 1000 / hold["parley_store_checkpoint_hold_seconds_count"]
          if (fl["parley_store_search_flush_seconds_count"] > 0) printf "  search index flushes: %d, %.3f ms on average, the longest %.3f ms\n",
            fl["parley_store_search_flush_seconds_count"],
            fl["parley_store_search_flush_seconds_sum"] * 1000 / fl["parley_store_search_flush_seconds_count"],
            fl["parley_store_search_flush_max_seconds"] * 1000
          if (fl["parley_store_search_merge_seconds_count"] > 0) printf "  search index merge steps: %d, %.3f ms on average\n",
            fl["parley_store_search_merge_seconds_count"],
            fl["parley_store_search_merge_seconds_sum"] * 1000 / fl["parley_store_search_merge_seconds_count"]
          if (st["parley_store_batches_total"] > 0) printf "  store (whole run): %d requests in %d transactions (%.2f each); %d WAL frames (%.2f a request)\n",
            st["parley_store_requests_total"], st["parley_store_batches_total"],
            st["parley_store_requests_total"] / st["parley_store_batches_total"], st["parley_store_wal_frames_total"],
            st["parley_store_wal_frames_total"] / st["parley_store_requests_total"] }' || true
}

for scen in $expanded; do
  case $scen in
    durable@*) start_server "${scen#*@}" ;;
    *) start_server ;;
  esac
  echo
  echo "== $scen (server pid $server_pid on 127.0.0.1:$port) =="
  case $scen in
    chat)
      args=(--scenario chat --users "$users" --chat-size "$chat_size" --rate "$rate") ;;
    typing)
      args=(--scenario typing --users "$users" --chat-size "$chat_size" --rate "$typing_rate")
      [ -z "$typing_hold" ] || args+=(--typing-hold "$typing_hold") ;;
    reactions)
      # Messages at --rate and reaction toggles at --react-rate, in the same run.
      args=(--scenario reactions --users "$users" --chat-size "$chat_size" --rate "$rate"
            --react-rate "$react_rate") ;;
    broadcast)
      args=(--scenario broadcast --users "$bcast_users" --window "$window" --rate "$bcast_rate") ;;
    connections@*)
      # N idle subscribed sockets; 10 probe chats send 100 msgs/s in total meanwhile.
      args=(--scenario connections --users "${scen#*@}" --chat-size "$chat_size"
            --conns-per-user "$conns_per_user") ;;
    durable@*)
      # Closed loop: every user keeps --durable-window sends unacknowledged; acks/s is the figure.
      args=(--scenario chat --users "$users" --chat-size "$chat_size" --rate 0
            --window "$durable_window") ;;
    soak)
      # 80% of capacity for a long window: p99, RSS and the WAL must stay flat over time.
      args=(--scenario chat --users "$users" --chat-size "$chat_size"
            --schedule "$((capacity * 8 / 10)):$soak_duration" --report-every "${report_every:-30}"
            --wal-file "$tmp/data/parley.db-wal") ;;
    overload)
      # Past capacity, then back under it: every send answered (acknowledged or refused) within
      # a bounded time, memory and the WAL bounded, and the p99 back down once the load drops.
      args=(--scenario chat --users "$users" --chat-size "$chat_size" --drain 10
            --schedule "$((capacity * 2)):60,$((capacity / 2)):30" --report-every "${report_every:-5}"
            --wal-file "$tmp/data/parley.db-wal") ;;
    bigchat)
      # A chat at the 10,000-participant ceiling: the first account creates it (a one-second
      # chat run of one user), the server stops, SQL fills the seats but --bigchat-users, the
      # server starts again and those users join, subscribe and send into it (each message
      # reaches the online ones; every join and leave is news for all 10,000).
      "$LOADGEN" --url "ws://127.0.0.1:$port" --scenario chat --users 1 --chat-size 1 --rate 1 \
        --duration 1 --warmup 0 --users-file "$tmp/users.txt" --runid bigc --quiet >/dev/null
      stop_server
      big_slug=$(sqlite3 "$tmp/data/parley.db" "
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $((10000 - bigchat_users)))
        INSERT OR IGNORE INTO users (username, display_name, pwhash, created_at)
          SELECT 'bigfill' || i, 'Filler', 'x', 0 FROM n;
        INSERT OR IGNORE INTO participants (chat_id, user_id, role, joined_at)
          SELECT c.id, u.id, 'member', 0 FROM chats c, users u
          WHERE c.id = (SELECT max(id) FROM chats WHERE title = 'bench bigc group 0')
            AND u.username LIKE 'bigfill%';
        SELECT slug || ' ' || participant_count FROM chats
          WHERE id = (SELECT max(id) FROM chats WHERE title = 'bench bigc group 0');")
      echo "  big chat: ${big_slug#* } participants before the joins (slug ${big_slug% *})"
      start_server
      args=(--scenario chat --chat "${big_slug% *}" --users "$bigchat_users" --rate "$bigchat_rate") ;;
    joinstorm)
      args=(--scenario chat --users "$storm_chat" --chat-size "$storm_chat" --connect-concurrency 1000
            --setup-concurrency 1000 --rate "$(( storm_chat / 10 > 0 ? storm_chat / 10 : 1 ))") ;;
    storm)
      # chats of 11: each chat's first member keeps sending, the 10 others drop and resume.
      args=(--scenario storm --users "$storm_users" --chat-size 11
            --conns-per-user "$conns_per_user") ;;
    streams)
      # A Node script (the loadgen has no stream ops): it prints its own table.
      if ! node "$here/streams.mjs" --url "http://127.0.0.1:$port" --streams "$streams" \
          --viewers "$chat_size" --rate "$delta_rate" --duration "$duration" --warmup "$warmup"; then
        echo "run.sh: the streams scenario failed; last lines of the server log:" >&2
        tail -n 20 "$tmp/server.log" >&2
        status=1
      fi
      server_metrics
      stop_server
      continue ;;
    *) echo "run.sh: unknown scenario $scen" >&2; exit 2 ;;
  esac
  if ! "$LOADGEN" --url "ws://127.0.0.1:$port" "${args[@]}" --duration "$duration" \
      --warmup "$warmup" --server-pid "$server_pid" --users-file "$tmp/users.txt" \
      --csv "$tmp/results.csv" --label "${scen/@/-}" ${extra[@]+"${extra[@]}"}; then
    echo "run.sh: the $scen scenario failed; last lines of the server log:" >&2
    tail -n 20 "$tmp/server.log" >&2
    status=1
  fi
  server_metrics
  stop_server
done
if [ -n "$sweep" ]; then sweep_run; else peers_chat; fi

if [ -s "$tmp/results.csv" ]; then
  echo
  echo "== summary (latency in ms, server CPU in % of one core, RSS in MB) =="
  # Columns by header name, so the CSV can grow new ones.
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i
             print "server scenario users chat offered sends/s deliv/s p50 p99 p999 max errors closes srvCPU% srvRSS lgCPU% KB/conn"; next }
           { printf "%s %s %s %s %s %s %s %s %s %s %s %d %s %s %s %s %s\n", $c["server"], $c["label"],
             $c["users"], $c["chat_size"], $c["offered"], $c["sends_per_s"], $c["deliveries_per_s"],
             $c["p50_ms"], $c["p99_ms"], $c["p999_ms"], $c["max_ms"], $c["errors"] + $c["rate_limited"],
             $c["closes"], $c["server_cpu_pct"], $c["server_rss_mb"], $c["loadgen_cpu_pct"],
             $c["server_kb_per_conn"] }' "$tmp/results.csv" | column -t
  peers_summary
  mkdir -p "$(dirname "$csv")"
  # A results file written before the CSV gained columns is kept aside, not mixed.
  if [ -s "$csv" ] && [ "$(head -n 1 "$csv")" != "$(head -n 1 "$tmp/results.csv")" ]; then
    mv "$csv" "$csv.old-$(date +%Y%m%d-%H%M%S)"
    echo "(the columns changed: the previous $csv was renamed to $csv.old-*)"
  fi
  if [ -s "$csv" ]; then tail -n +2 "$tmp/results.csv" >>"$csv"; else cp "$tmp/results.csv" "$csv"; fi
  echo "(rows appended to $csv)"
fi
if grep -qiE "asan|sanitizer|segfault|assert" "$tmp/server.log" 2>/dev/null; then
  echo "run.sh: the server log mentions a crash or assertion; see $tmp/server.log (--keep)" >&2
fi
exit $status
