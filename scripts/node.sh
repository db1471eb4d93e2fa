#!/usr/bin/env bash
# Makes sure a Node.js >= 20.19 (what the web app's Vite needs) is first on the Makefile's PATH.
# The machine's own node is used when it is new enough. Otherwise a pinned Node from the npm
# registry (package node-linux-<arch>, which ships the binary) and a pinned npm go into
# build/node, which the Makefile and scripts/build-web.sh put first on PATH; the machine's Node
# is left as it is. To fetch them, any npm will do: Debian's is installed only when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_PIN=20.19.5 # the oldest Node the web build supports (Vite 8: ^20.19 || >=22.12)
NPM_PIN=10.9.3
PATH="$PWD/build/node/bin:$PATH"
new_enough() { # node binary: exit 0 if its version is >= 20.19
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null
}
command -v node >/dev/null && new_enough node && exit 0

have="none"; command -v node >/dev/null && have="$(node --version 2>/dev/null || echo unknown)"
die() { echo "node: Parley needs Node.js >= 20.19 (found: $have) and could not put one in build/node: $*" >&2; exit 1; }
case "$(uname -m)" in
  x86_64) arch=x64 ;; aarch64) arch=arm64 ;; ppc64le) arch=ppc64le ;; s390x) arch=s390x ;;
  *) die "no node-linux package for $(uname -m); install Node >= 20.19 yourself" ;;
esac
echo "node: Node.js >= 20.19 needed (found: $have); installing Node $NODE_PIN and npm $NPM_PIN into build/node"
if ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "node: no npm to fetch them with; installing Debian's npm"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null || die "apt-get install npm failed"
fi
tmp="$(mktemp -d build/node.XXXXXX 2>/dev/null || { mkdir -p build && mktemp -d build/node.XXXXXX; })"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --no-audit --no-fund "node-linux-$arch@$NODE_PIN" "npm@$NPM_PIN" >/dev/null) ||
  die "npm pack node-linux-$arch@$NODE_PIN npm@$NPM_PIN failed"
mkdir -p "$tmp/node/lib/node_modules/npm"
tar -xzf "$tmp/node-linux-$arch-$NODE_PIN.tgz" -C "$tmp/node" --strip-components=1
tar -xzf "$tmp/npm-$NPM_PIN.tgz" -C "$tmp/node/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/node/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/node/bin/npx"
new_enough "$tmp/node/bin/node" || die "the node of node-linux-$arch@$NODE_PIN does not run here"
rm -rf build/node && mv "$tmp/node" build/node
echo "node: $(build/node/bin/node --version) and npm $(build/node/bin/npm --version) in build/node"
