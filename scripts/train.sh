#!/usr/bin/env bash
# The main job (README): installs what is missing, builds, and trains on the bundled MNIST.
# Arguments go to `vat train` (e.g. --preset seed --epochs 1); see `--help`.
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
bash scripts/quiet-build.sh
exec pnpm --silent --filter cli train "$@"
