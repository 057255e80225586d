// The threaded CPU module: the CPU kernels on a pool of Web Workers over one shared memory
// (wasm-bindgen-rayon). Needs SharedArrayBuffer, so only in cross-origin isolated pages
// (COOP same-origin + COEP require-corp); wasm-bindgen-rayon does not run in Node.
import init, * as bindings from './pkg-threads/vat_core.js';

let instantiated;
let ready;
let started = 0;

function instantiate() {
  instantiated ??= init({ module_or_path: new URL('./pkg-threads/vat_core_bg.wasm', import.meta.url) }).then(() => bindings);
  return instantiated;
}

/**
 * The module without its pool, for calls that need no threads (resolveOptions): a page whose CPU
 * path is this module then never fetches the main one.
 * @returns {Promise<typeof bindings>}
 */
export function loadThreadedBindings() {
  return instantiate();
}

/**
 * Instantiates the module and starts its pool of `threads` workers, once per page or worker.
 * @param {number} threads
 * @returns {Promise<typeof bindings>}
 */
export function loadThreadedWasm(threads) {
  if (ready && threads !== started) {
    return Promise.reject(
      Object.assign(new Error(`the threaded module already runs ${started} threads in this page; reload it to use ${threads}`), {
        name: 'InvalidConfigError',
      }),
    );
  }
  started = threads;
  ready ??= instantiate()
    .then(() => bindings.initThreadPool(threads))
    .then(() => bindings);
  return ready;
}
