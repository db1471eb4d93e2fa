#!/usr/bin/env bash
# Builds the web app into web/dist, which the server serves. Until the React client exists
# (web/package.json), the placeholder page is installed instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f web/package.json ]; then
  (cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run build)
else
  mkdir -p web/dist
  cp web/placeholder/index.html web/dist/index.html
fi
