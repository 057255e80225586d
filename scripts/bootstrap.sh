#!/usr/bin/env bash
# Installs everything a fresh machine needs to build and test this repository.
# Idempotent: each step checks first and is skipped when its result is already there,
# so a second run takes seconds. Called by `pnpm train`, `pnpm test` and .ci/run.
#
# Steps (each prints one line when it acts):
#   1. pnpm at package.json's packageManager version (with npm; corepack's download fails its
#      signature check on our machines)
#   2. a Rust toolchain with the wasm32-unknown-unknown target, and std's sources for the
#      threaded wasm module (which rebuilds std with atomics, -Zbuild-std):
#        - `rustup target add` and `rustup component add rust-src` where rustup can download;
#        - otherwise Debian's rustc-web 1.96 with a std for wasm32 built offline from
#          rust-web-src (docs/platform.md has the recipe, checked on Debian 12).
#   3. wasm-bindgen-cli at exactly the version Cargo.lock pins for the crate, and wasm-pack
#   4. with --test: Debian's chromium and the Vulkan loader (WebGPU tests on SwiftShader), and a
#      Python venv in .toolchain/py with numpy and safetensors (the independent weights check)
#   5. `pnpm install` when node_modules is missing or older than the lockfile
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.toolchain"          # git-ignored; records which wasm route was taken
mkdir -p "$STATE"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[bootstrap] %s\n' "$*" >&2; }
need_apt_update=1
apt_install() {
  if ! command -v apt-get >/dev/null; then
    log "apt-get is missing; install these packages by hand: $*"; exit 1
  fi
  if [ "$need_apt_update" = 1 ]; then
    log "apt-get update"
    apt-get update -qq >/dev/null
    need_apt_update=0
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

WITH_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    *) log "unknown option '$arg' (known: --test)"; exit 2 ;;
  esac
done

# 1. pnpm ---------------------------------------------------------------------------------
PNPM_VERSION="$(node -p "require('$ROOT/package.json').packageManager.split('@')[1]")"
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  log "installing pnpm $PNPM_VERSION with npm"
  npm i -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1
fi

# 2. Rust for wasm32 ------------------------------------------------------------------------
# The route is written to .toolchain/wasm-route: "rustup" or "debian".
wasm_rustc_ok() { # $1 = rustc binary
  local libdir
  libdir="$("$1" --print target-libdir --target wasm32-unknown-unknown 2>/dev/null)" || return 1
  ls "$libdir"/libstd-*.rlib >/dev/null 2>&1
}
# VAT_WASM_ROUTE=debian forces the Debian route (to test it where rustup works).
route=""
if [ -f "$STATE/wasm-route" ]; then route="$(cat "$STATE/wasm-route")"; fi
if [ -n "${VAT_WASM_ROUTE:-}" ] && [ "$route" != "$VAT_WASM_ROUTE" ]; then route=""; fi
if [ "$route" = rustup ] && wasm_rustc_ok "$(command -v rustc)"; then :;
elif [ "$route" = debian ] && wasm_rustc_ok /usr/bin/rustc; then :;
else
  if [ "${VAT_WASM_ROUTE:-}" != debian ] && command -v rustup >/dev/null \
     && timeout 90 rustup target add wasm32-unknown-unknown >/dev/null 2>&1 \
     && timeout 120 rustup component add rust-src >/dev/null 2>&1 \
     && wasm_rustc_ok "$(command -v rustc)"; then
    route=rustup
    log "wasm32 target and std sources installed with rustup"
  else
    log "rustup cannot download the wasm32 target here; using Debian's rustc-web and building std for wasm32 offline"
    [ -x /usr/bin/rustc ] && [ -d /usr/src/rustc-1.96.0/library ] && [ -e /usr/bin/rust-lld ] \
      || apt_install rustc-web cargo-web rust-web-src lld-22
    if ! wasm_rustc_ok /usr/bin/rustc; then
      src=/usr/src/rustc-1.96.0/library
      work="$(mktemp -d)"
      mkdir -p "$work/src" "$work/.cargo"
      cat > "$work/Cargo.toml" <<TOML
[package]
name = "wasm-std-builder"
version = "0.0.0"
edition = "2021"
[lib]
path = "src/lib.rs"
[profile.release]
opt-level = 3
TOML
      echo '' > "$work/src/lib.rs"
      cat > "$work/.cargo/config.toml" <<TOML
[source.crates-io]
replace-with = "vendored"
[source.vendored]
directory = "$src/vendor"
TOML
      log "building std for wasm32 (about a minute)"
      (cd "$work" && PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo build --offline --release -Zbuild-std=std,panic_abort \
        --target wasm32-unknown-unknown -q)
      dest="$(/usr/bin/rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib"
      mkdir -p "$dest"
      cp "$work"/target/wasm32-unknown-unknown/release/deps/*.rlib "$dest/"
      rm -rf "$work"
      wasm_rustc_ok /usr/bin/rustc || { log "std for wasm32 did not install into $dest"; exit 1; }
    fi
    route=debian
  fi
  echo "$route" > "$STATE/wasm-route"
fi

# 3. wasm-bindgen-cli (exact version from Cargo.lock) and wasm-pack ----------------------------
WBG_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[" ]/,"",$0); sub("version=","",$0); print; exit}' "$ROOT/Cargo.lock")"
if [ -z "$WBG_VERSION" ]; then log "Cargo.lock pins no wasm-bindgen"; exit 1; fi
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WBG_VERSION" ]; then
  log "installing wasm-bindgen-cli $WBG_VERSION (a few minutes, once)"
  # Without --locked: its lockfile pins a webpki-roots release that the registry no longer serves.
  cargo install -q wasm-bindgen-cli --version "$WBG_VERSION" --force
fi
if ! command -v wasm-pack >/dev/null; then
  log "installing wasm-pack (a few minutes, once)"
  cargo install -q wasm-pack --version 0.15.1 --locked
fi

# 4. test dependencies ---------------------------------------------------------------------------
# chromium also brings SwiftShader, the software Vulkan driver that the Node WebGPU tests use;
# libvulkan1 is the Vulkan loader that Dawn opens.
if [ "$WITH_TEST" = 1 ]; then
  if ! [ -x /usr/bin/chromium ] || ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
    apt_install chromium libvulkan1
  fi
  req="$ROOT/test/independent/requirements.txt"
  if ! cmp -s "$req" "$STATE/py/requirements.txt"; then
    log "python venv for the independent numpy check"
    python3 -m venv "$STATE/py"
    "$STATE/py/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$STATE/py/requirements.txt"
  fi
fi

# 5. JS dependencies -----------------------------------------------------------------------------
if [ ! -d "$ROOT/node_modules" ] || [ "$ROOT/pnpm-lock.yaml" -nt "$ROOT/node_modules/.modules.yaml" ]; then
  log "pnpm install"
  (cd "$ROOT" && pnpm install --frozen-lockfile --reporter=silent)
fi
