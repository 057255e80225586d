#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds, then runs
#   1. cargo tests of the Rust core (host, CPU backend),
#   2. vitest in every package (the real wasm: CPU, WebGPU through a software adapter, the CLI).
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/cargo-env.sh

echo "== cargo test (vat-core, CPU backend)"
cargo test -p vat-core --locked

echo "== build (wasm + TypeScript)"
pnpm run build

echo "== vitest"
pnpm exec turbo run test --concurrency=1
