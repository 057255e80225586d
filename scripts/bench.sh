#!/usr/bin/env bash
# `pnpm bench` (README, docs/results.md): installs what is missing (Chromium included), builds,
# and measures ms/step, img/s and peak memory for every implementation. Arguments go to
# packages/bench/src/main.ts (--help lists them).
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh --test
bash scripts/quiet-build.sh
exec node packages/bench/dist/main.js "$@"
