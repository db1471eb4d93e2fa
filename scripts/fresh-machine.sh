#!/usr/bin/env bash
# The README's promise, checked on a machine that has nothing: bootstraps a minimal Debian 12
# (debootstrap --variant=minbase, from the Debian mirror this machine's apt uses), gives it only
# what the README says a fresh machine needs beforehand (make), copies in the committed tree,
# runs `make run` there and waits until GET /healthz and GET / answer on a loopback port. Then it
# stops the server, unmounts everything and deletes the root. Nothing is cached between runs: a
# missing install step in the Makefile or scripts/deps.sh fails here, not on a new user's machine.
#
#   scripts/fresh-machine.sh            # checks HEAD (as root; CI calls it from .ci/run)
#   FRESH_REV=<commit> scripts/fresh-machine.sh
#   FRESH_TARGET=test scripts/fresh-machine.sh   # `make test` to its end instead (~25 min; not in CI)
#
# The chroot shares this machine's network namespace, so its server is reachable on 127.0.0.1.
# Only this machine's network set-up is copied in (resolv.conf, trusted certificates, the Node
# CA variable): the things every machine of this workplace has before anything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${FRESH_REV:-HEAD}"
step_timeout="${FRESH_TIMEOUT_S:-1200}" # for `make run` to serve, install and build included
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
t0=$SECONDS
say() { printf 'fresh-machine: [%3ds] %s\n' $((SECONDS - t0)) "$*"; }

export DEBIAN_FRONTEND=noninteractive
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The Debian mirror(s) of this machine's apt, as "URI suite" pairs for bookworm*, from one-line
# .list files and deb822 .sources files alike.
sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                                      if ($(i + 1) ~ /^bookworm/) print $i, $(i + 1) }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no")
                                             for (u in uris) for (s in suites) if (s ~ /^bookworm/) print u, s
                                           types = ""; enabled = ""; delete uris; delete suites }
                        /^[ \t]*$/ { flush(); next }
                        /^Types:/ { types = $0 }
                        /^Enabled:/ { enabled = tolower($2) }
                        /^URIs:/ { for (i = 2; i <= NF; i++) uris[$i] = 1 }
                        /^Suites:/ { for (i = 2; i <= NF; i++) suites[$i] = 1 }
                        END { flush() }' "$f"
  done
}
mapfile -t pairs < <(sources | sort -u)
mirror=""
for p in "${pairs[@]}"; do [ "${p#* }" = bookworm ] && { mirror="${p% *}"; break; }; done
[ -n "$mirror" ] || { echo "fresh-machine: no Debian 12 (bookworm) mirror in /etc/apt/sources.list*" >&2; exit 1; }

port="${FRESH_PORT:-18080}"
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

root="$(mktemp -d /tmp/parley-fresh.XXXXXX)"
chmod 755 "$root" # it is the root's "/": users other than root (postgres) must get through it
log="$root.log"
pgid=""
mounted=()
cleanup() {
  local rc=$? m i
  if [ -n "$pgid" ] && kill -0 "$pgid" 2>/dev/null; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pgid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  # Whatever still runs inside the root (a database a test script started) goes with it.
  for i in /proc/[0-9]*; do
    [ "$(readlink "$i/root" 2>/dev/null)" = "$root" ] && kill -KILL "${i#/proc/}" 2>/dev/null
  done
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m="${mounted[i]}"
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  # Never delete through a mount point that is still there (a bound /dev).
  if grep -q " $root/" /proc/mounts; then
    echo "fresh-machine: mounts left under $root, not deleting it" >&2
  else
    rm -rf --one-file-system "$root"
  fi
  rm -f "$log"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "fresh-machine: FAILED: $*" >&2
  if [ -s "$log" ]; then echo "--- last lines of make run's output ---" >&2; tail -n 40 "$log" >&2; fi
  exit 1
}

say "debootstrap bookworm (minbase) from $mirror into $root"
timeout 900 debootstrap --variant=minbase bookworm "$root" "$mirror" >"$log" 2>&1 ||
  fail "debootstrap"
: >"$log"
{
  for p in "${pairs[@]}"; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${p% *} ${p#* } main"
  done
} >"$root/etc/apt/sources.list"
for f in /etc/apt/apt.conf.d/*; do # how apt reaches the mirror here (e.g. a snapshot's dates)
  grep -qiE 'Check-Valid-Until|Check-Date|proxy' "$f" 2>/dev/null && cp "$f" "$root/etc/apt/apt.conf.d/"
done
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then
  # The same trust as this machine (it may reach the registries through a TLS proxy); under
  # /usr/local/share too, so that installing ca-certificates in the root keeps it.
  mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
  cp "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
  cp "$ca" "$root/usr/local/share/ca-certificates/host.crt"
fi

mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount -t sysfs sysfs "$root/sys" && mounted+=("$root/sys")
mount --bind /dev "$root/dev" && mounted+=("$root/dev")
mount -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null && mounted+=("$root/dev/pts") || true
mount -t tmpfs tmpfs "$root/dev/shm" 2>/dev/null && mounted+=("$root/dev/shm") || true

say "installing what the README asks for beforehand: make"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends make' >"$log" 2>&1 ||
  fail "apt-get install make"
: >"$log"

mkdir -p "$root/root/parley"
git archive "$rev" | tar -x -C "$root/root/parley"
say "tree $(git rev-parse --short "$rev") copied"

env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
     TERM=dumb PORT="$port")
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && env+=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
for v in PARLEY_PG_PORT PARLEY_REDIS_PORT PARLEY_TEST_CLUSTER_REDIS_PORT; do # shared network
  [ -n "${!v:-}" ] && env+=("$v=${!v}")
done
stamp() { local l; while IFS= read -r l; do printf '[%3ds] %s\n' $((SECONDS - t0)) "$l"; done; }
if [ "${FRESH_TARGET:-run}" = test ]; then
  say "make test"
  timeout "${FRESH_TEST_TIMEOUT_S:-3600}" chroot "$root" /usr/bin/env -i "${env[@]}" \
    sh -c 'cd /root/parley && exec make test' </dev/null > >(stamp | tee "$log") 2>&1 ||
    fail "make test"
  say "passed: a fresh Debian 12 with only make ran \`make test\`"
  exit 0
fi
say "make run on port $port"
setsid chroot "$root" /usr/bin/env -i "${env[@]}" sh -c 'cd /root/parley && exec make run' \
  </dev/null > >(stamp >"$log") 2>&1 &
pgid=$!

url="http://127.0.0.1:$port"
deadline=$((SECONDS + step_timeout))
until curl -fsS -o /dev/null --max-time 5 "$url/healthz" 2>/dev/null; do
  kill -0 "$pgid" 2>/dev/null || { wait "$pgid" || true; fail "make run exited before serving"; }
  [ $SECONDS -lt $deadline ] || fail "make run did not serve $url/healthz within ${step_timeout}s"
  sleep 2
done
say "GET /healthz answers"
page="$(curl -fsS --max-time 10 "$url/")" || fail "GET / did not answer"
grep -qi '<div id="root"' <<<"$page" || fail "GET / is not the web app: $(head -c 300 <<<"$page")"
say "GET / serves the web app"
grep -q "Parley is serving $url" "$log" || fail "make run did not print the URL to open (\"Parley is serving $url\")"
echo "--- the steps of make run (seconds since the start of this check) ---"
grep -E '^\[ *[0-9]+s\] (deps|llhttp|node|Parley):|built in|^\[ *[0-9]+s\] cc -o build/parley' "$log" |
  sed -E 's/(cc -o build\/parley).*/\1 .../' || true

kill -INT -- "-$pgid"
for i in $(seq 50); do kill -0 "$pgid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$pgid" 2>/dev/null && fail "make run did not stop on Ctrl-C (SIGINT) within 10 s"
pgid=""
say "passed: a fresh Debian 12 with only make ran \`make run\` and served $url"
