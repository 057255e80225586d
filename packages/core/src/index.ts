// @vat/core: the typed API over the vat-core crate (the wasm module or the native addon).
// Import '@vat/core': its package exports pick index.node.ts or index.browser.ts, which register
// their environment's engines and re-export this. Node-only file helpers are in '@vat/core/node'.
export * from './errors.js';
export * from './engine.js';
export * from './options.js';
export * from './backend.js';
export * from './idx.js';
export * from './formats.js';
export * from './data.js';
export * from './rng.js';
export * from './trainer.js';
export * from './loop.js';
export * from './safetensors.js';
export * from './presets.js';
