import { defineConfig } from 'vitest/config';

// Smoke tests of the built CLI (dist/main.js), spawned as a user runs it.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
