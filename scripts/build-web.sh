#!/usr/bin/env bash
# Builds the web app (web/: React + TypeScript + Vite) into web/dist, which the server serves
# (PARLEY_WEB_DIR). npm packages are installed from web/package-lock.json when missing or stale.
# The app imports the project's SDK from clients/js/src directly (Vite compiles its TypeScript),
# so clients/js needs no build of its own here. Vite needs Node >= 20.19: scripts/node.sh stops
# with a one-line message, or installs one into build/node, before any of it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/node.sh
PATH="$PWD/build/node/bin:$PATH"
cd web
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
