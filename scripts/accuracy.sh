#!/usr/bin/env bash
# `pnpm accuracy` (docs/results.md): installs what is missing, builds, and runs the accuracy
# harness (packages/bench/src/accuracy.ts). Hours on 2 cores; run it in the background:
#   nohup pnpm accuracy > runs/accuracy.log 2>&1 &
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
bash scripts/quiet-build.sh
exec node packages/bench/dist/accuracy.js "$@"
