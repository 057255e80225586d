# Sourced by the build and test scripts. A Rust build cache outside the clone, keyed by
# Cargo.lock, the toolchain and the flags, so a second clone on the same machine reuses the
# compiled dependencies (burn takes minutes). A fresh machine builds into it from nothing, exactly
# as without it. VAT_CARGO_CACHE=0 builds into the clone's own target/ instead.
if [ "${VAT_CARGO_CACHE:-1}" != 0 ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  __key="$( { cat "$ROOT/Cargo.lock" "$ROOT/.cargo/config.toml" "$ROOT/rust-toolchain.toml" 2>/dev/null; rustc -V; /usr/bin/rustc -V 2>/dev/null; echo "${RUSTFLAGS:-}"; } | sha256sum | cut -c1-16)"
  __dir="${XDG_CACHE_HOME:-$HOME/.cache}/vat-cargo/$__key"
  if mkdir -p "$__dir" 2>/dev/null; then export CARGO_TARGET_DIR="$__dir"; fi
  unset __key __dir
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
