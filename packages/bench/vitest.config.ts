import { defineConfig } from 'vitest/config';

// The bench and the accuracy harness, run for real at a tiny size: every implementation of the
// bench (Node, and headless Chromium on SwiftShader) and a real CLI run read by the harness.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 900_000,
    hookTimeout: 900_000,
    fileParallelism: false,
  },
});
