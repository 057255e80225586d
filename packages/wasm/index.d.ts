import type * as bindings from './pkg/vat_core.js';
export type * from './pkg/vat_core.js';
export type VatWasm = typeof bindings;
/** Instantiates the wasm module once and returns its exports. */
export declare function loadWasm(): Promise<VatWasm>;
