#!/usr/bin/env bash
# Builds crates/vat-core with wasm-pack into two modules, each with generated .d.ts:
#   packages/wasm/pkg          the main module: the CPU kernels on one thread (`cpu`), burn-flex
#                              (`burn-cpu`) and burn-wgpu (`webgpu`); loads in Node and in browsers
#   packages/wasm/pkg-threads  the CPU kernels alone, with threads: built with atomics and a shared
#                              memory, for cross-origin isolated pages (wasm-bindgen-rayon's pool)
# `--target web` so the same files load in Node and in browsers.
# Usage: build-wasm.sh [main|threads|all] (default all).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
if [ "$(cat "$ROOT/.toolchain/wasm-route" 2>/dev/null)" = debian ]; then
  # Debian's rustc 1.96 has the wasm32 std we built; wasm-pack checks the first rustc on PATH.
  export PATH="/usr/bin:$PATH"
fi
cd "$ROOT"
source scripts/cargo-env.sh
which="${1:-all}"

if [ "$which" = main ] || [ "$which" = all ]; then
  echo "[build-wasm] main module (cpu, burn-cpu, webgpu)" >&2
  wasm-pack build crates/vat-core --release --target web \
    --out-dir ../../packages/wasm/pkg --out-name vat_core --no-pack --mode no-install \
    -- --no-default-features --features burn-cpu,webgpu
  # The name section (function names for stack traces, a fifth of the module) goes to a file of
  # its own beside the module; the page never fetches it (docs/results.md: sizes).
  node scripts/wasm-split-names.mjs packages/wasm/pkg/vat_core_bg.wasm
fi

if [ "$which" = threads ] || [ "$which" = all ]; then
  echo "[build-wasm] threaded CPU module" >&2
  # Threads in wasm need atomics for real, which stable rustc grants only with RUSTC_BOOTSTRAP=1,
  # and a std rebuilt with them (-Zbuild-std, from rustup's rust-src or Debian's rust-web-src).
  # RUSTFLAGS replaces .cargo/config.toml's flags for this build, so it repeats simd128. Its own
  # target dir: cargo caches target info across RUSTC_BOOTSTRAP toggles and then fails oddly.
  export RUSTC_BOOTSTRAP=1
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-threads"
  export RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+simd128 \
-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=2147483648 \
-C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
-C link-arg=--export=__tls_align -C link-arg=--export=__tls_base -C link-arg=--export=__heap_base"
  # release-lto (Cargo.toml): whole-program optimisation, 17% faster steps here, seconds to build.
  wasm-pack build crates/vat-core --profile release-lto --target web \
    --out-dir ../../packages/wasm/pkg-threads --out-name vat_core --no-pack --mode no-install \
    -- --no-default-features --features threads -Zbuild-std=panic_abort,std
  node scripts/wasm-split-names.mjs packages/wasm/pkg-threads/vat_core_bg.wasm
  # wasm-bindgen-rayon's worker script imports the module as the directory `../../..`, which
  # bundlers (vite) resolve through a package.json there; --no-pack writes none.
  printf '%s\n' '{ "name": "vat-core-threads", "private": true, "type": "module", "main": "vat_core.js", "module": "vat_core.js", "types": "vat_core.d.ts", "sideEffects": ["./snippets/*"] }' \
    > packages/wasm/pkg-threads/package.json
fi
