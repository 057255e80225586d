// WebGPU in Node through the `webgpu` package (Dawn). On machines without a GPU it runs on
// SwiftShader (Debian's chromium package), which scripts/bootstrap.sh installs.
import { describe, expect, it } from 'vitest';

import { type ModelSpec, Trainer, gather, platform, startWebGpu } from '../src/index.node.js';
import { loadMnist } from '../src/node.js';

describe('Trainer on WebGPU (Node, webgpu package)', () => {
  // First in this file, so that WebGPU is not up yet in this process.
  it('brings up one adapter: the one the probe describes is the one that trains', async () => {
    const gpu = (await platform().gpu())!;
    const request = gpu.requestAdapter;
    let requests = 0;
    gpu.requestAdapter = (options) => {
      requests += 1;
      return request.call(gpu, options);
    };
    try {
      const probe = await startWebGpu();
      expect(probe.description).toMatch(/^WebGPU: .*\[wgpu: .*BrowserWebGpu/);
      const t = await Trainer.create({ backend: 'webgpu', imageSize: 8, convFilters: 3, hidden: 5, classes: 4 });
      expect(t.adapter.description).toBe(probe.description);
      expect(await startWebGpu()).toEqual(probe);
      t.dispose();
      expect(requests).toBe(1);
    } finally {
      gpu.requestAdapter = request;
    }
  });

  it('trains and agrees with the CPU backend step for step', async () => {
    const { train } = await loadMnist();
    const b = gather(
      train,
      Array.from({ length: 16 }, (_, i) => i),
    );
    const options = { seed: 11, optimizer: 'adam' as const, dropout: true };
    const gpu = await Trainer.create({ ...options, backend: 'webgpu' });
    const cpu = await Trainer.create({ ...options, backend: 'cpu' });
    expect(gpu.backend).toBe('webgpu');
    console.log(`adapter: ${gpu.adapter.description}`);
    for (let s = 0; s < 3; s++) {
      const g = await gpu.trainStep(b.x, b.y, 0.002);
      const c = await cpu.trainStep(b.x, b.y, 0.002);
      // Same seed, same host-side draws: only float summation order differs.
      expect(g.ce).toBeCloseTo(c.ce, 3);
      expect(g.lds).toBeCloseTo(c.lds, 3);
      expect(g.correct).toBe(c.correct);
    }
    const pg = await gpu.predict(b.x);
    const pc = await cpu.predict(b.x);
    for (let i = 0; i < pg.length; i++) expect(Math.abs(pg[i]! - pc[i]!)).toBeLessThan(1e-3);
    gpu.dispose();
    cpu.dispose();
  });

  it('trains a model spec (batch norm, semi-supervised VAT+EntMin) and tracks the CPU backend', async () => {
    const { train } = await loadMnist();
    const labeled = gather(
      train,
      Array.from({ length: 10 }, (_, i) => i),
    );
    const unlabeled = gather(
      train,
      Array.from({ length: 20 }, (_, i) => 100 + i),
    );
    // The paper's MLP pattern (dense without bias, batch norm, relu), narrow enough for SwiftShader.
    const modelSpec: ModelSpec = {
      input: [1, 28, 28],
      classes: 10,
      layers: [{ type: 'dense', units: 64, bias: false }, { type: 'batchNorm' }, { type: 'relu' }, { type: 'dense', units: 10 }],
    };
    const options = { seed: 5, optimizer: 'adam' as const, modelSpec, eps: 2, xi: 0.01, entmin: true };
    const gpu = await Trainer.create({ ...options, backend: 'webgpu' });
    const cpu = await Trainer.create({ ...options, backend: 'cpu' });
    expect(gpu.backend).toBe('webgpu');
    for (let s = 0; s < 3; s++) {
      const g = await gpu.trainStep(labeled.x, labeled.y, 0.002, unlabeled.x);
      const c = await cpu.trainStep(labeled.x, labeled.y, 0.002, unlabeled.x);
      // The same draws; float summation order differs, and Adam's steps carry it on.
      const digits = s === 0 ? 4 : 2;
      expect(g.ce).toBeCloseTo(c.ce, digits);
      expect(g.lds).toBeCloseTo(c.lds, digits);
      expect(g.entropy).toBeCloseTo(c.entropy, digits);
      expect(g.lds).toBeGreaterThan(0);
    }
    // Evaluation uses the running statistics, which only the labeled passes moved.
    const pg = await gpu.predict(unlabeled.x);
    const pc = await cpu.predict(unlabeled.x);
    for (let i = 0; i < pg.length; i++) expect(Math.abs(pg[i]! - pc[i]!)).toBeLessThan(1e-2);
    gpu.dispose();
    cpu.dispose();
  });
});
