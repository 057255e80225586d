import type * as bindings from './pkg/vat_node.js';
export type * from './pkg/vat_node.js';
export type VatNative = typeof bindings;
/** Loads the addon once and returns its exports; throws when it was not built for this machine. */
export declare function loadNative(): VatNative;
