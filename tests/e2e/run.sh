#!/usr/bin/env bash
# Browser tests: playwright-core drives Debian's chromium (never a downloaded browser) against the
# real server binary serving the freshly built web app. Installs what is missing first: the
# chromium package, npm packages (tests/e2e for playwright-core, the root for `ws`, which the
# shared protocol test client uses), the server binary.
#
#   tests/e2e/run.sh                      # every file in tests/e2e
#   tests/e2e/run.sh tests/e2e/02-phone.test.mjs
#
# PARLEY_BIN picks the server binary (default build/parley-asan when built, else build/parley).
# Screenshots go to tests/artifacts/ (gitignored); a failing test also saves what each browser
# showed there.
set -euo pipefail
cd "$(dirname "$0")/../.."

sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Emoji in screenshots; optional, so only if the package exists.
dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q "install ok installed" || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm_fresh() { # dir: npm ci when node_modules is missing or older than the lock file
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_fresh tests/e2e
[ -f node_modules/ws/package.json ] || npm install --no-audit --no-fund --loglevel=error

if [ -z "${PARLEY_BIN:-}" ] && [ ! -x build/parley-asan ] && [ ! -x build/parley ]; then
  make build/parley
fi

rm -f tests/artifacts/failure-*.png
scripts/build-web.sh
(cd web && npm run --silent typecheck)

if [ $# -eq 0 ]; then set -- tests/e2e/; fi
exec node --test --test-concurrency=1 "$@"
