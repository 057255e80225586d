// Loads the wasm module once, in Node (bytes read from disk) or in a browser/worker (fetched
// next to this file, which bundlers such as vite rewrite to an asset URL).
import init, * as bindings from './pkg/vat_core.js';

let ready;

/** @returns {Promise<typeof bindings>} */
export function loadWasm() {
  if (!ready) {
    ready = (async () => {
      const url = new URL('./pkg/vat_core_bg.wasm', import.meta.url);
      if (typeof process !== 'undefined' && process.versions && process.versions.node && url.protocol === 'file:') {
        const { readFile } = await import(/* @vite-ignore */ 'node:fs/promises');
        await init({ module_or_path: await readFile(url) });
      } else {
        await init({ module_or_path: url });
      }
      return bindings;
    })();
  }
  return ready;
}
