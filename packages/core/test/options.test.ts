import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { InvalidConfigError, OPTIONS, PRESETS, resolveOptions } from '../src/index.node.js';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const README = path.resolve(PKG, '../../README.md');

describe('resolveOptions', () => {
  it("fills in the core's defaults, the optimiser's learning rate among them", async () => {
    const adam = await resolveOptions({ optimizer: 'adam' });
    expect(adam.loop.lr).toBe(0.002);
    expect(adam.trainer).toMatchObject({ optimizer: 'adam', seed: 42, eps: 1, xi: 10, imageSize: 28, backend: 'auto', engine: 'auto' });
    expect(adam.loop).toMatchObject({ epochs: 1, batchSize: 128, valSize: 5000, lrDecay: 1, evalBatchSize: 250, checkpointSeconds: 60 });
    expect((await resolveOptions({})).loop.lr).toBe(1);
  });

  it("applies a preset, then the caller's values; another optimiser brings its own learning rate", async () => {
    const seed = await resolveOptions({}, 'seed');
    expect([seed.loop.epochs, seed.loop.valSize, seed.trainer.optimizer, seed.loop.lr]).toEqual([12, 0, 'adadelta', 1]);
    const mine = await resolveOptions({ epochs: 2, optimizer: 'adam' }, 'seed');
    expect([mine.loop.epochs, mine.loop.lr]).toEqual([2, 0.002]);
    expect((await resolveOptions({ optimizer: 'adam', lr: 0.5 }, 'seed')).loop.lr).toBe(0.5);
  });

  it("takes the caller's model over the preset's, a spec over a preset name and a name over a spec", async () => {
    const modelSpec = { input: [1, 28, 28] as [number, number, number], classes: 10, layers: [{ type: 'dense' as const, units: 10, bias: true }] };
    const mine = await resolveOptions({ modelSpec }, 'paper-mlp-semi');
    expect(mine.trainer.modelSpec).toEqual(modelSpec);
    expect(mine.loop.labeled).toBe(100);
    const named = await resolveOptions({ model: 'mlp-1200-600-300-150' }, 'paper-mlp-semi');
    expect(named.trainer.modelSpec.layers.filter((l) => l.type === 'dense').map((l) => (l as { units: number }).units)).toEqual([1200, 600, 300, 150, 10]);
  });

  it('refuses unknown presets, names and values with typed errors', async () => {
    await expect(resolveOptions({}, 'nope')).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(resolveOptions({ epoch: 2 } as never)).rejects.toThrow(/unknown field `epoch`/);
    await expect(resolveOptions({ lrDecay: 2 })).rejects.toThrow(/lrDecay must be in \(0, 1\]/);
    await expect(resolveOptions({ threads: 0 })).rejects.toThrow(/threads must be a positive integer/);
  });

  it('has a spec for every option a preset sets', () => {
    // The model has no OPTIONS field: the CLI's --model (a preset name or a spec file) and the
    // page's model picker (the core's presets, or a spec file) choose it.
    for (const p of Object.values(PRESETS)) {
      for (const k of Object.keys(p.options)) {
        if (!['rho', 'epsilon', 'model'].includes(k)) expect(OPTIONS, k).toHaveProperty(k);
      }
    }
  });
});

describe("the README's API example", () => {
  it("runs as printed and trains the Adam trainer at Adam's learning rate, 0.002", async () => {
    const readme = await fs.readFile(README, 'utf8');
    const block = readme.split('## Using the TypeScript API')[1]!.match(/```ts\n([\s\S]*?)```/)![1]!;
    // Inside the package, so that '@vat/core' resolves to this package by its own exports.
    const file = path.join(PKG, '.readme-example.test-run.mjs');
    await fs.writeFile(file, `${block}\nconsole.log('LR', JSON.stringify(result.history.map((h) => h.lr)));\n`);
    try {
      const out = execFileSync(process.execPath, [file], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
      expect(out).toMatch(/^LR \[0\.002\]$/m);
      const accuracy = Number(out.trim().split('\n').at(-2));
      expect(accuracy).toBeGreaterThan(0.95);
    } finally {
      await fs.rm(file, { force: true });
    }
  }, 600_000);
});
