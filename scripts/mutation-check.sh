#!/usr/bin/env bash
# The mutation check: plants each of four classic VAT bugs in a scratch copy of the repository
# and asserts that the parity checks catch it. Both implementations of the step get each bug:
#   - the CPU kernels (crates/vat-core/src/cpu): the golden parity suite must fail on the native
#     addon built from the mutated copy (packages/reference, PARITY_IMPLS=vat-cpu-native-1t);
#   - the burn graph (crates/vat-core/src/{graph,vat}.rs): the Rust test that holds the kernels to
#     burn's autodiff must fail (the golden suite's burn rows need a wasm build per mutation,
#     about ten minutes each, so the graph is held to the reference through the kernels).
# The bugs: KL(q||p) instead of KL(p||q); no stop-gradient on p(y|x); one norm for the whole batch
# instead of one per sample; xi applied twice. 19 minutes on 2 cores the first time (burn compiles
# into its cache), less after; not part of the test
# command (its time budget), so run it after changing the step: bash scripts/mutation-check.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
# Its own build cache: the mutated crates must never land where the clone's builds are copied from.
# (Seeding it with a copy of the test command's cache was tried: cargo rebuilt burn anyway.) The
# cross-check builds with -D warnings, and each mutated copy allows warnings in the crate itself (a
# planted bug may leave a variable unused), so a build failure is never mistaken for a catch.
export CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/vat-cargo/mutation-check"
SCRATCH="$(mktemp -d)/vat-mutation"
git -C "$ROOT" worktree add --detach -q "$SCRATCH" HEAD
trap 'git -C "$ROOT" worktree remove --force "$SCRATCH" >/dev/null 2>&1 || true' EXIT
cd "$SCRATCH"
echo "[mutation] scratch copy of $(git rev-parse --short HEAD) in $SCRATCH" >&2
pnpm install --frozen-lockfile --offline --reporter=silent
# The unmutated copy must pass, or a failure below would prove nothing.
bash scripts/build-native.sh >/dev/null 2>&1
# The wasm modules are not run here, but @vat/core's types and loader import them.
cp -r "$ROOT/packages/wasm/pkg" "$ROOT/packages/wasm/pkg-threads" packages/wasm/
for p in core reference; do npx tsc -p "packages/$p"; done
parity() { (cd packages/reference && PARITY_IMPLS=tfjs-reference,vat-cpu-native-1t npx vitest run test/parity.test.ts >"$1" 2>&1); }
crosscheck() { RUSTFLAGS="-D warnings" cargo test -q -p vat-core --test vat cpu_kernels_agree_with_the_burn_graph >"$1" 2>&1; }
# A mutation that does not build proves nothing: only a test that ran and failed counts as caught.
ran_and_failed() { grep -q "test result: FAILED" "$1"; }
parity /tmp/vat-mutation-base.log || { echo "[mutation] the unmutated parity suite fails; see /tmp/vat-mutation-base.log" >&2; exit 1; }
crosscheck /tmp/vat-mutation-base-rust.log || { echo "[mutation] the unmutated cross-check fails" >&2; exit 1; }

failed_to_catch=0
for m in cpu:kl-q-p cpu:no-stop-gradient cpu:batch-norm cpu:xi-twice graph:kl-q-p graph:no-stop-gradient graph:batch-norm graph:xi-twice; do
  git checkout -q -- crates
  python3 "$ROOT/scripts/mutations.py" "$m"
  sed -i '1i #![allow(warnings)]' crates/vat-core/src/lib.rs
  log="/tmp/vat-mutation-${m/:/-}.log"
  if [ "${m%%:*}" = cpu ]; then
    bash scripts/build-native.sh >/dev/null 2>&1
    if parity "$log"; then
      echo "[mutation] $m: NOT caught (the parity suite passed)" >&2
      failed_to_catch=1
    else
      echo "[mutation] $m: caught, $(grep -Eo '[0-9]+ failed' "$log" | head -1) golden case(s) of vat-cpu-native-1t" >&2
    fi
  else
    if crosscheck "$log"; then
      echo "[mutation] $m: NOT caught (the kernels still agree with the graph)" >&2
      failed_to_catch=1
    elif ! ran_and_failed "$log"; then
      echo "[mutation] $m: did not build or run; see $log" >&2
      failed_to_catch=1
    else
      echo "[mutation] $m: caught: $(grep -Eo '^[a-z].*: [a-z_]+ differ by [^ ]+' "$log" | head -1)" >&2
    fi
  fi
done
exit "$failed_to_catch"
