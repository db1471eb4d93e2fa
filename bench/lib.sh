# bench/lib.sh - shell helpers shared by bench/run.sh and bench/cluster.sh (sourced, not run).

# A port nobody listens on, below the ephemeral range the load generator's sockets use.
pick_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# Sum of utime+stime ticks of a process (all threads); 0 once it is gone.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
