#!/usr/bin/env bash
# `pnpm run build` for the scripts that run something after it (train.sh, bench.sh, accuracy.sh):
# quiet when it succeeds, and its whole output, compiler errors included, when it fails.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "[build] the wasm modules, the native addon and the TypeScript packages (about 15 minutes the first time on 2 cores, seconds after that)" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! (cd "$ROOT" && pnpm run build) >"$log" 2>&1; then
  cat "$log" >&2
  echo "[build] failed: the output above says why" >&2
  exit 1
fi
