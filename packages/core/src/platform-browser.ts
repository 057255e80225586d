// The browser environment: the wasm module fetched next to @vat/wasm. The CPU backend runs on
// several threads only in a Web Worker of a cross-origin isolated page (SharedArrayBuffer needs
// COOP same-origin + COEP require-corp, and the pool's callers must be able to block); elsewhere
// it runs on one thread and says why.

import { type EngineChoice, type EngineName, type Platform, oneThreadOnly, registerPlatform } from './engine.js';
import { BackendUnavailableError, InvalidConfigError } from './errors.js';

/** Why this context cannot run the threaded module, or undefined when it can. */
export function threadsUnavailable(): string | undefined {
  const g = globalThis as { crossOriginIsolated?: boolean; WorkerGlobalScope?: new () => unknown };
  if (!g.crossOriginIsolated) return 'the page is not cross-origin isolated (it needs COOP same-origin and COEP require-corp headers)';
  if (!(g.WorkerGlobalScope && globalThis instanceof g.WorkerGlobalScope)) return 'threads need a Web Worker (the page thread cannot wait on them)';
  return undefined;
}

export const browserPlatform: Platform = {
  async engine(name: EngineName, backend: string, threads: number | undefined): Promise<EngineChoice> {
    if (name === 'native') throw new BackendUnavailableError("the native engine exists only in Node; use engine 'wasm' (or 'auto') here");
    let reason: string | undefined;
    if (backend === 'cpu') {
      const want = threads ?? Math.max(1, navigator.hardwareConcurrency || 1);
      const why = threadsUnavailable();
      if (want > 1 && !why) {
        const { loadThreadedWasm } = await import('@vat/wasm/threads');
        return { engine: 'wasm', bindings: await loadThreadedWasm(want), threads: want, label: 'WebAssembly, threaded' };
      }
      if (threads !== undefined && threads > 1) throw new InvalidConfigError(`${threads} threads are not available: ${why}; use threads: 1`);
      if (want > 1) reason = `one thread: ${why}`;
    } else {
      oneThreadOnly(backend, threads);
    }
    const { loadWasm } = await import('@vat/wasm');
    return { engine: 'wasm', bindings: await loadWasm(), threads: 1, label: 'WebAssembly', reason };
  },
  async bindings() {
    // Where the threaded module will run the CPU backend, it answers these calls too, so a page
    // that trains on the CPU never fetches the 26 MB main module.
    if (!threadsUnavailable()) {
      const { loadThreadedBindings } = await import('@vat/wasm/threads');
      return loadThreadedBindings();
    }
    const { loadWasm } = await import('@vat/wasm');
    return loadWasm();
  },
  async gpu() {
    return typeof navigator !== 'undefined' ? (navigator as Navigator).gpu : undefined;
  },
  noGpuAdvice: 'this browser has no WebGPU (navigator.gpu is missing); use a browser with WebGPU enabled, or the CPU backend',
};

registerPlatform(browserPlatform);
