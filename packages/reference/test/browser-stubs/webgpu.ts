// Stands in for the npm package `webgpu` (Dawn for Node, a native addon) in the browser bundle.
// @vat/core imports it only in Node (installNodeWebGpu); a browser uses its own navigator.gpu.
// vitest.config.browser.ts aliases `webgpu` to this file, so vite never tries to bundle the addon.
export const globals = {};
export function create(): never {
  throw new Error("the 'webgpu' package is Node-only; in a browser, @vat/core uses navigator.gpu");
}
