#!/usr/bin/env bash
# Builds crates/vat-node (the CPU backend as a napi addon, threaded) into packages/native/pkg:
# vat_node.node, and vat_node.d.ts rendered from the type definitions napi-derive writes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"
source scripts/cargo-env.sh
PKG="$ROOT/packages/native/pkg"
TYPES="$CARGO_TARGET_DIR/napi-types"
mkdir -p "$PKG" "$TYPES"
build() { NAPI_TYPE_DEF_TMP_FOLDER="$TYPES" cargo build --release --locked -p vat-node; }
rm -f "$TYPES/vat-node"
build
# napi-derive writes the type definitions only while it compiles the crate; a fresh build
# directory with an up-to-date binary writes none, so compile the crate itself once more.
if [ ! -s "$TYPES/vat-node" ]; then
  touch crates/vat-node/src/lib.rs
  build
fi
case "$(uname -s)" in
  Darwin) lib=libvat_node.dylib ;;
  MINGW* | MSYS* | CYGWIN*) lib=vat_node.dll ;;
  *) lib=libvat_node.so ;;
esac
cp "$CARGO_TARGET_DIR/release/$lib" "$PKG/vat_node.node.tmp"
mv "$PKG/vat_node.node.tmp" "$PKG/vat_node.node"
node "$ROOT/scripts/napi-dts.mjs" "$TYPES/vat-node" > "$PKG/vat_node.d.ts.tmp"
mv "$PKG/vat_node.d.ts.tmp" "$PKG/vat_node.d.ts"
echo "[build-native] $PKG/vat_node.node ($(du -h "$PKG/vat_node.node" | cut -f1))" >&2
