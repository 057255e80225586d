#!/usr/bin/env bash
# Builds crates/vat-core to packages/wasm/pkg with wasm-pack: one module with both backends
# (burn-flex for `cpu`, burn-wgpu for `webgpu`), `--target web` so the same files load in
# Node and in browsers, and generated .d.ts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
if [ "$(cat "$ROOT/.toolchain/wasm-route" 2>/dev/null)" = debian ]; then
  # Debian's rustc 1.96 has the wasm32 std we built; wasm-pack checks the first rustc on PATH.
  export PATH="/usr/bin:$PATH"
fi
cd "$ROOT"
wasm-pack build crates/vat-core --release --target web \
  --out-dir ../../packages/wasm/pkg --out-name vat_core --no-pack --mode no-install \
  -- --features webgpu
