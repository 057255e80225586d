import { defineConfig } from 'vitest/config';

// End-to-end tests of the built page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core from Node; nothing is downloaded). WebGPU there is SwiftShader on the CPU.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The training test took 285 s on a quiet 2-core VM and 505 s with two other jobs running.
    testTimeout: 900_000,
    hookTimeout: 600_000,
    // One file at a time: training on SwiftShader uses both cores of the CI machines.
    fileParallelism: false,
  },
});
