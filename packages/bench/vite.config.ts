import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

// The page (bench.html, src/page.ts) is served by vite's dev server, started by src/main.ts,
// which adds the bench data under /bench-data/. Cross-origin isolated (COOP + COEP), as the
// web demo is, so the threaded CPU module can run in the page's worker.
export default defineConfig({
  root: here,
  logLevel: 'warn',
  server: {
    fs: { allow: [path.resolve(here, '../..')] },
    headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
  },
  worker: { format: 'es' },
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
