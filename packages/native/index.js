// Loads the native addon built from crates/vat-node (scripts/build-native.sh puts it in pkg/).
import { createRequire } from 'node:module';

let addon;

/** The addon's exports; throws when it was not built for this machine. */
export function loadNative() {
  addon ??= createRequire(import.meta.url)('./pkg/vat_node.node');
  return addon;
}
