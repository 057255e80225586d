// @vat/core in Node (package.json `exports` condition "node"): the native addon, the wasm module
// read from disk, and WebGPU through the `webgpu` package. File helpers: '@vat/core/node'.
import './platform-node.js';

export * from './index.js';
export { installNodeWebGpu } from './platform-node.js';
