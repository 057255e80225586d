import type * as bindings from './pkg-threads/vat_core.js';
export type VatWasmThreads = typeof bindings;
/** Instantiates the threaded module and starts its pool of `threads` workers (once per page). */
export declare function loadThreadedWasm(threads: number): Promise<VatWasmThreads>;
/** The threaded module without its pool, for calls that need no threads (resolveOptions). */
export declare function loadThreadedBindings(): Promise<VatWasmThreads>;
