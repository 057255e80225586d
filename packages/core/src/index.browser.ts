// @vat/core in browsers and workers (package.json `exports` conditions "browser" and "default"):
// the wasm module, threaded in cross-origin isolated workers, and the browser's own WebGPU.
import './platform-browser.js';

export * from './index.js';
export { threadsUnavailable } from './platform-browser.js';
