# bench/peers/peers.sh - the side-by-side part of bench/run.sh (sourced by it, not run alone).
#
# run.sh keeps Parley's own scenarios; this file adds, for `--servers "parley socketio xmpp"`:
#   any_start KIND / any_stop   start a fresh server of that kind on free loopback ports and stop
#                               it (parley: run.sh's start_server; socketio: one node process
#                               running peers/socketio/server.js; xmpp: ejabberd through
#                               peers/ejabberd/ejabberd.sh). They set server_pid (what is
#                               stopped), sample_pid (the process whose CPU and RSS the load
#                               generator samples: node, or ejabberd's beam.smp) and server_url.
#   chat_point KIND RATE LABEL  one chat run against a fresh server; the result row goes to
#                               $tmp/results.csv, and "kind,rate,rc,row" to $tmp/points.csv
#   peers_chat                  --servers mode: the chat scenario once on each peer
#   sweep_run                   --sweep mode: every offered rate on every server
#   peers_summary               per server: best deliveries/s with p99 under --p99-limit (sweep),
#                               memory per connection, and the Parley/peer ratios
# Uses run.sh's variables (here, tmp, users, chat_size, duration, warmup, extra, LOADGEN, ...)
# and functions (pick_port, start_server, stop_server).

server_kind=""
sample_pid=""
server_url=""
peer_dir=""

# Waits until something accepts connections on 127.0.0.1:$1 while pid $2 lives (10 s at most).
wait_port() {
  for _ in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

any_start() {
  server_kind=$1
  case $1 in
    parley)
      start_server
      sample_pid=$server_pid
      server_url="ws://127.0.0.1:$port" ;;
    socketio)
      port=$(pick_port) || { echo "run.sh: no free port found" >&2; exit 1; }
      node "$here/peers/socketio/server.js" "$port" >>"$tmp/socketio.log" 2>&1 &
      server_pid=$!
      if ! wait_port "$port" "$server_pid"; then
        echo "run.sh: the Socket.IO server did not start; its log:" >&2
        tail -n 20 "$tmp/socketio.log" >&2
        exit 1
      fi
      sample_pid=$server_pid
      server_url="ws://127.0.0.1:$port" ;;
    xmpp)
      local http dist
      port=$(pick_port) && http=$(pick_port) && dist=$(pick_port) ||
        { echo "run.sh: no free port found" >&2; exit 1; }
      peer_dir=$("$here/peers/ejabberd/ejabberd.sh" prepare "$port" "$http" "$dist")
      "$here/peers/ejabberd/ejabberd.sh" run "$peer_dir" >>"$tmp/ejabberd.log" 2>&1 &
      server_pid=$!
      if ! "$here/peers/ejabberd/ejabberd.sh" wait "$peer_dir" "$port" "$server_pid" ||
         ! sample_pid=$("$here/peers/ejabberd/ejabberd.sh" beam "$server_pid"); then
        echo "run.sh: ejabberd did not start; its logs:" >&2
        tail -n 20 "$tmp/ejabberd.log" "$peer_dir"/logs/*.log >&2 || true
        any_stop
        exit 1
      fi
      server_url="xmpp://127.0.0.1:$port" ;;
    *) echo "run.sh: unknown server $1 (parley, socketio, xmpp)" >&2; exit 2 ;;
  esac
}

any_stop() {
  if [ "$server_kind" = xmpp ] && [ -n "$server_pid" ]; then
    "$here/peers/ejabberd/ejabberd.sh" stop "$peer_dir" "$server_pid" || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    peer_dir=""
  fi
  stop_server # SIGTERM to parley or node
  server_kind=""
}

# Server log to show when a run failed.
any_log() {
  case $1 in
    parley) tail -n 20 "$tmp/server.log" ;;
    socketio) tail -n 20 "$tmp/socketio.log" ;;
    xmpp) tail -n 20 "$tmp/ejabberd.log" ;;
  esac
}

chat_point() {
  local kind=$1 r=$2 label=$3 rc=0 before=0 after=0
  any_start "$kind"
  echo
  echo "== chat on $kind, $r msgs/s offered (server pid $sample_pid, $server_url) =="
  local a=(--server "$kind" --url "$server_url" --scenario chat --users "$users"
           --chat-size "$chat_size" --rate "$r" --duration "$duration" --warmup "$warmup"
           --server-pid "$sample_pid" --csv "$tmp/results.csv" --label "$label")
  [ "$kind" != parley ] || a+=(--users-file "$tmp/users.txt")
  [ -s "$tmp/results.csv" ] && before=$(wc -l <"$tmp/results.csv")
  if "$LOADGEN" "${a[@]}" ${extra[@]+"${extra[@]}"}; then rc=0; else rc=$?; fi
  [ -s "$tmp/results.csv" ] && after=$(wc -l <"$tmp/results.csv")
  if [ "$after" -gt "$before" ]; then echo "$kind,$r,$rc,$after" >>"$tmp/points.csv"; fi
  if [ "$rc" != 0 ]; then
    echo "run.sh: chat on $kind at $r msgs/s failed (loadgen exit $rc); last lines of its log:" >&2
    any_log "$kind" >&2 || true
  fi
  any_stop
  return "$rc"
}

# A column of row $2 of $tmp/results.csv, by header name $1.
row_field() {
  awk -F, -v name="$1" -v row="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
    NR == row { print (c ? $c : ""); exit }' "$tmp/results.csv"
}

peers_chat() {
  local kind
  for kind in $servers; do
    [ "$kind" != parley ] || continue # Parley's chat ran with its other scenarios
    chat_point "$kind" "$rate" chat || status=1
  done
}

# Each server goes through the offered rates in increasing order; after two points in a row that
# failed or whose p99 was above the limit, its higher rates are skipped (saturated: they only
# take time and pile up latency).
sweep_run() {
  local kind r bad row p99
  for kind in $servers; do
    bad=0
    for r in $sweep; do
      if [ "$bad" -ge 2 ]; then
        echo "run.sh: $kind saturated below $r msgs/s offered; its higher rates are skipped"
        break
      fi
      if chat_point "$kind" "$r" sweep; then
        row=$(tail -n 1 "$tmp/points.csv" | cut -d, -f4)
        p99=$(row_field p99_ms "$row")
        if awk -v p="$p99" -v l="$p99_limit" 'BEGIN { exit !(p <= l) }'; then bad=0; else bad=$((bad + 1)); fi
      else
        bad=$((bad + 1))
      fi
    done
  done
}

# Per server: the chat rows of this run ("sweep" rows in --sweep mode). A row is clean when the
# load generator exited 0 (from points.csv) and the row shows no errors, closes, gaps or missing
# deliveries. Sweep: the highest deliveries/s of a clean row with p99 <= the limit. Memory per
# connection is averaged over the server's rows. Then the ratios Parley/peer.
peers_summary() {
  [ -s "$tmp/results.csv" ] || return 0
  case " $servers " in *" socketio "* | *" xmpp "*) ;; *) return 0 ;; esac
  echo
  if [ -n "$sweep" ]; then
    echo "== servers side by side: best deliveries/s with p99 <= $p99_limit ms (clean runs only);" \
      "memory per connection = (RSS with all users joined - RSS before connecting) / users =="
  else
    echo "== servers side by side at $rate msgs/s offered; memory per connection = (RSS with all" \
      "users joined - RSS before connecting) / users =="
  fi
  touch "$tmp/points.csv"
  awk -F, -v limit="$p99_limit" -v sweep="${sweep:+1}" -v order="$servers" -v pts="$tmp/points.csv" '
    BEGIN { while ((getline l < pts) > 0) { split(l, q, ","); rc[q[4]] = q[3] } }
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
      if ($col["scenario"] != "chat" || (sweep && $col["label"] != "sweep")) next
      kind = $col["server"]; d = $col["deliveries_per_s"] + 0; p = $col["p99_ms"] + 0
      kb = $col["server_kb_per_conn"] + 0
      clean = (!(NR in rc) || rc[NR] == 0) && $col["errors"] + $col["closes"] + $col["seq_gaps"] + $col["missing"] == 0
      runs[kind]++
      if (kb > 0) { kbsum[kind] += kb; kbn[kind]++ }
      if (sweep ? (clean && p <= limit && d >= best[kind]) : 1) {
        best[kind] = d; bestp[kind] = p; bestr[kind] = $col["offered"]; ok[kind] = clean
        bcpu[kind] = $col["server_cpu_pct"]; blg[kind] = $col["loadgen_cpu_pct"]
      }
    }
    END {
      printf "%-9s %5s %9s %11s %8s %8s %7s %9s\n", "server", "runs", "offered", "deliv/s",
        "p99ms", "srvCPU%", "lgCPU%", "KB/conn"
      n = split(order, ks, " ")
      for (i = 1; i <= n; i++) {
        k = ks[i]; if (!(k in runs)) continue
        kbm[k] = kbn[k] ? kbsum[k] / kbn[k] : -1
        if (k in best)
          printf "%-9s %5d %9s %11.0f %8.3f %8s %7s %9.1f%s\n", k, runs[k], bestr[k], best[k],
            bestp[k], bcpu[k], blg[k], kbm[k], ok[k] ? "" : "  (integrity problems)"
        else
          printf "%-9s %5d %9s %11s %8s %8s %7s %9.1f  (no clean run with p99 <= %g ms)\n", k,
            runs[k], "-", "-", "-", "-", "-", kbm[k], limit
      }
      if (!("parley" in runs)) exit
      for (i = 1; i <= n; i++) {
        k = ks[i]; if (k == "parley" || !(k in runs)) continue
        line = sprintf("Parley/%s:", k)
        if (sweep) {
          if (("parley" in best) && (k in best) && best[k] > 0)
            line = line sprintf(" deliveries/s at p99 <= %g ms %.2fx;", limit, best["parley"] / best[k])
          else
            line = line " deliveries/s ratio n/a (a server had no clean run under the limit);"
        } else if (("parley" in best) && (k in best) && bestp["parley"] > 0) {
          line = line sprintf(" p99 %.3f vs %.3f ms (Parley/peer %.2f);", bestp["parley"], bestp[k],
                              bestp["parley"] / bestp[k])
        }
        if (kbm["parley"] > 0 && kbm[k] > 0)
          line = line sprintf(" memory per connection %.3f (the peer uses %.1fx Parley'"'"'s)",
                              kbm["parley"] / kbm[k], kbm[k] / kbm["parley"])
        print line
      }
    }' "$tmp/results.csv"
}
