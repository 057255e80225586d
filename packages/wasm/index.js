// Loads the main wasm module once, in a browser or a worker: the .wasm is fetched from next to
// this file (bundlers such as vite rewrite the URL to an asset). Node uses index.node.js.
import init, * as bindings from './pkg/vat_core.js';

let ready;

/** @returns {Promise<typeof bindings>} */
export function loadWasm() {
  ready ??= init({ module_or_path: new URL('./pkg/vat_core_bg.wasm', import.meta.url) }).then(() => bindings);
  return ready;
}
