#!/usr/bin/env bash
# Start one raftkv node configured from the environment (see README). Builds first when needed,
# then execs node so that signals (SIGTERM, SIGINT, SIGHUP) reach the process directly.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then npm ci --no-audit --no-fund >&2; fi
if [ ! -f dist/src/main.js ] || [ -n "$(find src -newer dist/src/main.js -name '*.ts' -print -quit)" ]; then
  npx tsc -p tsconfig.json >&2
fi
exec node dist/src/main.js "$@"
