import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
/** @vat/core's stand-in for the Node-only modules it and @vat/wasm import on their Node path. */
const stub = createRequire(import.meta.url).resolve('@vat/core/node-stub');

// The page (bench.html, src/page.ts) is served by vite's dev server, started by src/main.ts,
// which adds the bench data under /bench-data/.
export default defineConfig({
  root: here,
  logLevel: 'warn',
  resolve: {
    alias: [
      { find: /^webgpu$/, replacement: stub },
      { find: /^node:(fs|os|fs\/promises)$/, replacement: stub },
    ],
  },
  server: { fs: { allow: [path.resolve(here, '../..')] } },
  optimizeDeps: {
    // Bundle tfjs before the page runs, and never discover more at run time: a dependency found
    // while the page runs makes vite reload it, which would kill a measurement mid-run.
    noDiscovery: true,
    include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu'],
    // Served as they are, so `new URL('./pkg/vat_core_bg.wasm', import.meta.url)` in @vat/wasm
    // keeps pointing at the real file.
    exclude: ['@vat/core', '@vat/wasm'],
  },
});
