// @vat/core: the typed API over the burn/wasm VAT core. Runs in Node and in browsers;
// Node-only file helpers are in '@vat/core/node'.
export * from './errors.js';
export * from './backend.js';
export * from './idx.js';
export * from './data.js';
export * from './rng.js';
export * from './trainer.js';
export * from './loop.js';
export * from './safetensors.js';
export * from './presets.js';
export { loadWasm } from '@vat/wasm';
