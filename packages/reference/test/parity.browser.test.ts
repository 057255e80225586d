// The golden parity suite in headless Chromium (vitest browser mode, vitest.config.browser.ts):
// the tfjs reference and burn's WebGPU backend on the browser's own navigator.gpu, against the
// same cases, tolerances and exclusion list as the Node suite (parity-suite.ts). The cases are
// fetched from the vite dev server (golden-browser.ts).
//
// Environment, passed in through the config's `provide`:
//   PARITY_IMPLS=burn-webgpu-chromium      run only these implementations (others are skipped)
//   GOLDEN_DIR=/path/to/cases              read the cases from another directory
//   PARITY_REPORT=1                        print the largest deviation per case and field

import { startWebGpu, Trainer } from '@vat/core';
import { describe, expect, inject, it } from 'vitest';

import { browserCases } from './golden-browser.js';
import { browserImplementations } from './implementations.js';
import { defineParitySuite } from './parity-suite.js';

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExportsInTest: a module augmentation (vitest's typed `inject`), not an export
  export interface ProvidedContext {
    parityImpls: string;
    parityReport: boolean;
    goldenDir: string;
  }
}

describe('WebGPU in headless Chromium', () => {
  // Runs before the parity tests (tests in a file run in order). It fails rather than letting
  // burn-webgpu-chromium run on anything but the browser's own WebGPU.
  it("burn runs on the browser's WebGPU adapter", async () => {
    expect(typeof process === 'undefined' || !process.versions?.node, 'this runs in a browser, not Node').toBe(true);
    expect(navigator.gpu, 'navigator.gpu (Chromium needs --enable-unsafe-webgpu)').toBeDefined();
    const adapter = await navigator.gpu.requestAdapter();
    expect(adapter, 'navigator.gpu.requestAdapter()').not.toBeNull();
    // cubecl-wgpu needs timestamp-query on wasm.
    expect(adapter!.features.has('timestamp-query'), 'adapter feature timestamp-query').toBe(true);

    const probe = await startWebGpu();
    expect(probe.backend).toBe('webgpu');

    // The adapter that burn's wgpu runtime itself started: on the browser WebGPU API, not the
    // CPU backend and not WebGL.
    const trainer = await Trainer.create({ backend: 'webgpu', imageSize: 8, convFilters: 3, hidden: 5, classes: 4 });
    try {
      expect(trainer.backend).toBe('webgpu');
      expect(trainer.adapter.description).toMatch(/\[wgpu: .*\(BrowserWebGpu, /);
      // One adapter: the trainer runs on the one the probe described (wgpu starts once).
      expect(trainer.adapter.description).toBe(probe.description);
      const info = (adapter as GPUAdapter & { info: GPUAdapterInfo }).info;
      console.log(
        [
          `browser: ${navigator.userAgent}`,
          `navigator.gpu adapter: vendor '${info.vendor}', architecture '${info.architecture}', device '${info.device}', description '${info.description}'`,
          `@vat/core: ${trainer.adapter.description}`,
          `software adapter: ${probe.isFallbackAdapter ? 'yes (no GPU on this machine)' : 'no'}`,
        ].join('\n'),
      );
    } finally {
      trainer.dispose();
    }
  });
});

const only = inject('parityImpls');
defineParitySuite(browserCases, browserImplementations(navigator.hardwareConcurrency), {
  only: only ? only.split(',').map((s) => s.trim()) : undefined,
  report: inject('parityReport'),
});
