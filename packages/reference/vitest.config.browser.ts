import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';

import { CHROMIUM, CHROMIUM_WEBGPU_FLAGS } from '../../test/support/chromium.js';

// The golden parity suite in headless Chromium (test/parity.browser.test.ts): the tfjs reference
// and burn's WebGPU backend on the browser's navigator.gpu. Debian's chromium exposes WebGPU only
// with --enable-unsafe-webgpu (SwiftShader without a GPU); nothing is downloaded, playwright
// drives the system browser. `pnpm test` runs this after the Node suite (vitest.config.ts).

const here = dirname(fileURLToPath(import.meta.url));
const workspaceRoot = resolve(here, '../..');
/** GOLDEN_DIR reads another copy of the cases, as in the Node suite. */
const goldenDir = process.env.GOLDEN_DIR ? resolve(process.env.GOLDEN_DIR) : resolve(workspaceRoot, 'test/golden/cases');

export default defineConfig({
  resolve: {
    alias: [
      // test/golden-browser.ts globs `@golden/*.json` and `@golden/*.bin`.
      { find: '@golden', replacement: goldenDir },
    ],
  },
  server: {
    // The cases live outside this package; the wasm module and node_modules are in the workspace.
    fs: { allow: [workspaceRoot, goldenDir] },
    // Cross-origin isolation for the threaded CPU module (SharedArrayBuffer), as the web demo has.
    headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
  },
  worker: { format: 'es' },
  optimizeDeps: {
    // Bundle tfjs before the first test, not on discovery (which would reload the page mid-run).
    include: ['@tensorflow/tfjs'],
    exclude: ['@vat/core', '@vat/wasm'],
  },
  test: {
    include: ['test/**/*.browser.test.ts'],
    // WebGPU on SwiftShader takes seconds per inspect call, and the real-size case runs tfjs-cpu.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    provide: {
      parityImpls: process.env.PARITY_IMPLS ?? '',
      parityReport: !!process.env.PARITY_REPORT,
      goldenDir,
    },
    browser: {
      enabled: true,
      headless: true,
      // Nothing visual is under test (and headless WebGPU canvases come out blank).
      screenshotFailures: false,
      provider: playwright({
        launchOptions: {
          executablePath: CHROMIUM,
          args: CHROMIUM_WEBGPU_FLAGS,
        },
      }),
      instances: [{ browser: 'chromium' }],
    },
  },
});
