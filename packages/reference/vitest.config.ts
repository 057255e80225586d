import { configDefaults, defineConfig } from 'vitest/config';

// Node tests: the golden parity suite (tfjs reference, burn CPU and burn WebGPU through
// @vat/core, float64 loops) and the 30-step training parity run. The same parity suite in
// headless Chromium is vitest.config.browser.ts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, 'test/**/*.browser.test.ts'],
    // WebGPU on SwiftShader takes 3-15 s per inspect call, and the real-size case runs tfjs-cpu.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // One file at a time: the wasm CPU backend and tfjs-cpu are single-threaded; machines have 2 cores.
    fileParallelism: false,
  },
});
