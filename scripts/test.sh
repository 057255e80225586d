#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds, then runs
#   1. the gates: rustfmt and biome (format and lint of every TS/JS file);
#   2. cargo tests of the Rust core (host: the CPU kernels held to burn-flex's autodiff), built
#      through clippy (-D warnings), and clippy on the addon's crate;
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

echo "== gates: rustfmt, biome"
cargo fmt --all --check
pnpm exec biome check .

echo "== cargo test of vat-core (the CPU kernels and the burn graph), linted by clippy (-D warnings)"
# clippy-driver as the workspace's compiler: it lints every target of vat-core while building the
# tests, so burn compiles once here, not once for `cargo clippy` and again for `cargo test`
# (six minutes in a fresh clone). Dependencies keep their --cap-lints; only our crates are denied.
RUSTC_WORKSPACE_WRAPPER=clippy-driver RUSTFLAGS="-D warnings" cargo test -p vat-core --all-targets --locked
# The addon's crate has no burn: `cargo clippy` checks it in seconds.
cargo clippy -p vat-node --all-targets --locked -- -D warnings

echo "== build (wasm modules, native addon, TypeScript) and type check"
pnpm run build
pnpm exec turbo run typecheck

echo "== vitest"
pnpm exec turbo run test --concurrency=1
