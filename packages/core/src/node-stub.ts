// For browser bundles of @vat/core: bundlers alias the Node-only modules that @vat/core and
// @vat/wasm import on their Node path (`webgpu`, `node:fs`, `node:os`, `node:fs/promises`) to
// this module, so the native Dawn addon is never bundled. In a browser those paths are never
// taken (navigator.gpu is used and the .wasm is fetched), so these exports are never called.
function nodeOnly(): never {
  throw new Error('this module is Node-only; the browser build of @vat/core never calls it');
}
export const globals = {};
export const create = nodeOnly;
export const existsSync = nodeOnly;
export const mkdtempSync = nodeOnly;
export const tmpdir = nodeOnly;
export const readFile = nodeOnly;
export default {};
