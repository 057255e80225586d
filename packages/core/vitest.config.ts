import { defineConfig } from 'vitest/config';

// Node tests of the typed API on the real wasm module (CPU backend, and WebGPU through the
// `webgpu` package on a software adapter). Browser tests live in packages/web.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // One file at a time: the wasm CPU backend is single-threaded and the machines have 2 cores.
    fileParallelism: false,
  },
});
