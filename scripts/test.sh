#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds, then runs
#   1. the gates: rustfmt, clippy (-D warnings), biome (format and lint of every TS/JS file);
#   2. cargo tests of the Rust core (host: the CPU kernels held to burn-flex's autodiff);
#   3. the builds (wasm modules, the native addon, TypeScript) and a type check of every package,
#      its tests included;
#   4. vitest in every package (the native addon and the real wasm: CPU, WebGPU through a
#      software adapter, the CLI, the web demo and the bench in headless Chromium).
set -euo pipefail
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/cargo-env.sh

echo "== gates: rustfmt, clippy, biome"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
pnpm exec biome check .

echo "== cargo test (vat-core: the CPU kernels and the burn graph)"
cargo test -p vat-core --locked

echo "== build (wasm modules, native addon, TypeScript) and type check"
pnpm run build
pnpm exec turbo run typecheck

echo "== vitest"
pnpm exec turbo run test --concurrency=1
