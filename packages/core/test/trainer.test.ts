import { availableParallelism } from 'node:os';

import { afterEach, describe, expect, it } from 'vitest';

import { sameBytes } from './helpers.js';

import {
  BackendUnavailableError,
  InvalidConfigError,
  InvalidInputError,
  NonFiniteLossError,
  Trainer,
  WeightsFormatError,
  gather,
  flatWeights,
  inspect,
  type TrainerOptions,
} from '../src/index.node.js';
import { loadMnist } from '../src/node.js';

const mnist = await loadMnist();
const rows = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const trainers: Trainer[] = [];
async function create(options: TrainerOptions): Promise<Trainer> {
  const t = await Trainer.create(options);
  trainers.push(t);
  return t;
}
afterEach(() => {
  for (const t of trainers.splice(0)) t.dispose();
});

describe('Trainer on the CPU backend (the native addon, as auto picks in Node)', () => {
  it('reports the backend, engine and threads it runs on', async () => {
    const t = await create({ backend: 'cpu' });
    expect(t.backend).toBe('cpu');
    expect(t.engine).toBe('native');
    expect(t.threads).toBe(availableParallelism());
    expect(t.adapter.description).toBe(`CPU: vat-core kernels, native addon, ${availableParallelism()} thread${availableParallelism() === 1 ? '' : 's'}`);
    expect(t.config).toMatchObject({ eps: 1, xi: 10, powerIterations: 1, optimizer: 'adadelta', model: { imageSize: 28 } });
  });

  it('learns MNIST digits in a few dozen steps', async () => {
    const t = await create({ backend: 'cpu', optimizer: 'adam', seed: 1 });
    const test = gather(mnist.test, rows(500));
    const before = await t.evaluate(test.x, test.y);
    for (let s = 0; s < 30; s++) {
      const b = gather(mnist.train, rows(32, s * 32));
      const stats = await t.trainStep(b.x, b.y, 0.002);
      expect(stats.lds).toBeGreaterThan(0);
      expect(stats.loss).toBeCloseTo(stats.ce + stats.lds, 5);
    }
    const after = await t.evaluate(test.x, test.y);
    expect(before.accuracy).toBeLessThan(0.3);
    expect(after.accuracy).toBeGreaterThan(0.8);
    expect(after.confusion.reduce((a, b) => a + b, 0)).toBe(500);
    expect(t.step).toBe(30);
  });

  it('same seed gives the same run; another seed does not', async () => {
    const b = gather(mnist.train, rows(16));
    const run = async (seed: number) => {
      const t = await create({ backend: 'cpu', seed, dropout: true });
      return [await t.trainStep(b.x, b.y, 1), await t.trainStep(b.x, b.y, 1)];
    };
    expect(await run(3)).toEqual(await run(3));
    expect(await run(3)).not.toEqual(await run(4));
  });

  it('rejects bad options and inputs with typed errors', async () => {
    await expect(Trainer.create({ backend: 'tpu' as never })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(Trainer.create({ eps: -1 })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(Trainer.create({ optimizer: 'sgd' as never })).rejects.toBeInstanceOf(InvalidConfigError);
    const t = await create({ backend: 'cpu' });
    const b = gather(mnist.train, rows(4));
    await expect(t.trainStep(b.x.subarray(1), b.y, 1)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(t.trainStep(b.x, Uint32Array.from([0, 1, 2, 12]), 1)).rejects.toThrow(/label 12/);
    await expect(t.trainStep(b.x, b.y, -1)).rejects.toBeInstanceOf(InvalidConfigError);
  });

  it('reports a diverging loss as NonFiniteLossError', async () => {
    const t = await create({ backend: 'cpu', optimizer: 'adam' });
    const b = gather(mnist.train, rows(8));
    // Adam moves every weight by about lr, so within a few steps at 1e38 the logits overflow.
    let err: unknown;
    for (let s = 0; s < 10 && !err; s++)
      err = await t.trainStep(b.x, b.y, 1e38).then(
        () => undefined,
        (e) => e,
      );
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect((err as Error).name).toBe('NonFiniteLossError');
  });

  it('weights round-trip through safetensors and load into a new trainer', async () => {
    const a = await create({ backend: 'cpu', seed: 5 });
    const b = gather(mnist.train, rows(16));
    await a.trainStep(b.x, b.y, 1);
    const weights = await a.exportWeights();
    const c = await create({ backend: 'cpu', seed: 6 });
    await c.importWeights(weights);
    expect(sameBytes(await c.predict(b.x), await a.predict(b.x))).toBe(true);
    expect(sameBytes(await c.exportWeights(), weights)).toBe(true);
  });

  it('rejects weights for another architecture and files that are not safetensors', async () => {
    const small = await create({ backend: 'cpu', hidden: 16 });
    const t = await create({ backend: 'cpu' });
    await expect(t.importWeights(await small.exportWeights())).rejects.toBeInstanceOf(WeightsFormatError);
    await expect(t.importWeights(new TextEncoder().encode('garbage'))).rejects.toThrow(/safetensors/);
  });

  it('a checkpoint restores the run exactly, with its loop state', async () => {
    const b = gather(mnist.train, rows(16));
    const a = await create({ backend: 'cpu', seed: 9, dropout: true, optimizer: 'adam' });
    await a.trainStep(b.x, b.y, 0.01);
    const ck = await a.exportCheckpoint({ epoch: 3 });
    const next = await a.trainStep(b.x, b.y, 0.01);
    const c = await create({ backend: 'cpu', seed: 9, dropout: true, optimizer: 'adam' });
    expect(await c.importCheckpoint(ck)).toEqual({ epoch: 3 });
    expect(c.step).toBe(1);
    expect(await c.trainStep(b.x, b.y, 0.01)).toEqual(next);
    // From the file alone: the same settings, weights, optimiser and RNG state.
    const d = await Trainer.fromCheckpoint(ck, { backend: 'cpu' });
    expect(d.resumed?.loopState).toEqual({ epoch: 3 });
    expect(await d.trainStep(b.x, b.y, 0.01)).toEqual(next);
    d.dispose();
  });

  it('refuses a checkpoint written with other settings, naming them', async () => {
    const a = await create({ backend: 'cpu', seed: 9 });
    const ck = await a.exportCheckpoint({});
    const other = await create({ backend: 'cpu', seed: 1 });
    await expect(other.importCheckpoint(ck)).rejects.toThrow(/seed \(checkpoint 9, here 1\)/);
  });

  it('throws after dispose', async () => {
    const t = await Trainer.create({ backend: 'cpu' });
    t.dispose();
    expect(() => t.step).toThrow(InvalidConfigError);
  });

  it('inspect returns r_adv of norm eps for each sample', async () => {
    const t = await create({ backend: 'cpu', seed: 2 });
    const weightsFile = await t.exportWeights();
    const b = gather(mnist.train, rows(3));
    const d = Float32Array.from({ length: b.x.length }, (_, i) => Math.sin(i));
    const w = flatWeights(weightsFile);
    const r = await inspect('cpu', { eps: 2.5 }, { weights: w, x: b.x, y: b.y, d, lr: 1 });
    for (let s = 0; s < 3; s++) {
      const part = r.rAdv.subarray(s * 784, (s + 1) * 784);
      expect(Math.hypot(...part)).toBeCloseTo(2.5, 4);
    }
    expect(r.loss).toBeCloseTo(r.ce + r.lds, 5);
    expect(r.grads.length).toBe(w.length);
  });
});

describe('engines and threads', () => {
  it('runs the CPU backend in the wasm engine on one thread when asked', async () => {
    const t = await create({ backend: 'cpu', engine: 'wasm' });
    expect([t.engine, t.threads]).toEqual(['wasm', 1]);
    expect(t.adapter.description).toBe('CPU: vat-core kernels, WebAssembly, 1 thread');
  });

  it('refuses what an engine cannot do, with typed errors', async () => {
    await expect(Trainer.create({ backend: 'cpu', engine: 'wasm', threads: 2 })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(Trainer.create({ backend: 'burn-cpu', engine: 'native' })).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(Trainer.create({ backend: 'burn-cpu', threads: 2 })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(Trainer.create({ engine: 'gpu' as never })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(Trainer.create({ threads: 0 })).rejects.toBeInstanceOf(InvalidConfigError);
  });

  it('gives the same weights for the same seed on any thread count, and close ones across engines', async () => {
    const b = gather(mnist.train, rows(24));
    const run = async (options: TrainerOptions) => {
      const t = await create({ backend: 'cpu', seed: 4, dropout: true, ...options });
      for (let s = 0; s < 2; s++) await t.trainStep(b.x, b.y, 1);
      return t.predict(b.x);
    };
    const one = await run({ engine: 'native', threads: 1 });
    expect(sameBytes(await run({ engine: 'native', threads: 2 }), one)).toBe(true);
    expect(sameBytes(await run({ engine: 'native', threads: 3 }), one)).toBe(true);
    // wasm has no FMA and its own exp and log, so it rounds differently.
    const wasm = await run({ engine: 'wasm' });
    for (let i = 0; i < one.length; i++) expect(Math.abs(wasm[i]! - one[i]!)).toBeLessThan(1e-4);
  });

  it('queues concurrent calls instead of re-entering the core', async () => {
    const t = await create({ backend: 'cpu', engine: 'wasm', seed: 8 });
    const b = gather(mnist.train, rows(16));
    const [s1, s2, p] = await Promise.all([t.trainStep(b.x, b.y, 1), t.trainStep(b.x, b.y, 1), t.predict(b.x)]);
    const u = await create({ backend: 'cpu', engine: 'wasm', seed: 8 });
    expect(await u.trainStep(b.x, b.y, 1)).toEqual(s1);
    expect(await u.trainStep(b.x, b.y, 1)).toEqual(s2);
    expect(sameBytes(await u.predict(b.x), p)).toBe(true);
  });

  it('runs burn-flex, the baseline, in the wasm engine', async () => {
    const t = await create({ backend: 'burn-cpu' });
    expect([t.backend, t.engine, t.threads]).toEqual(['burn-cpu', 'wasm', 1]);
    const b = gather(mnist.train, rows(8));
    const s = await t.trainStep(b.x, b.y, 1);
    expect(s.loss).toBeCloseTo(s.ce + s.lds, 5);
  });
});
