// Loads the main wasm module once in Node: the bytes are read from disk next to this file.
import { readFile } from 'node:fs/promises';

import init, * as bindings from './pkg/vat_core.js';

let ready;

/** @returns {Promise<typeof bindings>} */
export function loadWasm() {
  ready ??= readFile(new URL('./pkg/vat_core_bg.wasm', import.meta.url))
    .then((bytes) => init({ module_or_path: bytes }))
    .then(() => bindings);
  return ready;
}
