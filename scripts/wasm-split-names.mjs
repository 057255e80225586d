// Moves the `name` custom section (function names, for stack traces and profilers) out of a
// wasm module into `<module>.names`, a wasm file holding only that section, which tools such as
// `wasm-objdump` or a symboliser read beside the stripped module. Nothing else in the module
// changes, so the code is byte for byte what rustc and wasm-bindgen made.
// Usage: node scripts/wasm-split-names.mjs path/to/module.wasm
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/wasm-split-names.mjs module.wasm');
  process.exit(2);
}
const bytes = readFileSync(file);
const header = bytes.subarray(0, 8);
if (header.readUInt32LE(0) !== 0x6d736100) {
  console.error(`${file} is not a wasm module`);
  process.exit(2);
}
/** An unsigned LEB128 at `at`: [value, next offset]. */
function leb(at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [value, at];
  }
}
const kept = [header];
const names = [];
for (let at = 8; at < bytes.length; ) {
  const start = at;
  const id = bytes[at];
  const [size, body] = leb(at + 1);
  const end = body + size;
  let isNames = false;
  if (id === 0) {
    const [len, nameAt] = leb(body);
    isNames = bytes.subarray(nameAt, nameAt + len).toString() === 'name';
  }
  (isNames ? names : kept).push(bytes.subarray(start, end));
  at = end;
}
if (names.length) {
  writeFileSync(`${file}.names.tmp`, Buffer.concat([header, ...names]));
  renameSync(`${file}.names.tmp`, `${file}.names`);
  writeFileSync(`${file}.tmp`, Buffer.concat(kept));
  renameSync(`${file}.tmp`, file);
}
const mb = (n) => (n / 2 ** 20).toFixed(1);
console.error(
  `[wasm-split-names] ${file}: ${mb(bytes.length)} MiB -> ${mb(Buffer.concat(kept).length)} MiB (${mb(names.reduce((a, b) => a + b.length, 0))} MiB of names in ${file}.names)`,
);
