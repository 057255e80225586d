import { describe, expect, it } from 'vitest';

import { sameBytes } from './helpers.js';

import { type CheckpointStore, InvalidConfigError, type RunOptions, Trainer, train } from '../src/index.node.js';
import { loadMnist } from '../src/node.js';

const mnist = await loadMnist();
const data = { train: mnist.train, test: { ...mnist.test, count: 300 } };

class MemoryStore implements CheckpointStore {
  bytes?: Uint8Array;
  saves = 0;
  async save(b: Uint8Array) {
    this.bytes = b;
    this.saves++;
  }
  async load() {
    return this.bytes;
  }
}

const options: RunOptions = {
  backend: 'cpu',
  seed: 4,
  epochs: 2,
  trainSize: 96,
  valSize: 50,
  batchSize: 32,
  optimizer: 'adam',
  lr: 0.002,
  lrDecay: 0.5,
  dropout: true,
  checkpointSeconds: 1e9,
};

describe('training loop', () => {
  it('runs epochs, validates, and scores the test set', async () => {
    const t = await Trainer.create(options);
    const epochs: number[] = [];
    let steps = 0;
    const r = await train(t, data, options, { onStep: () => steps++, onEpoch: (e) => void epochs.push(e.epoch) });
    expect(steps).toBe(6);
    expect(epochs).toEqual([1, 2]);
    expect(r.history.map((e) => e.lr)).toEqual([0.002, 0.001]);
    expect(r.test!.count).toBe(300);
    t.dispose();
  });

  it('resumes an interrupted run to exactly the weights of an uninterrupted one', async () => {
    const full = await Trainer.create(options);
    await train(full, data, options);
    const expected = await full.exportWeights();
    full.dispose();

    const store = new MemoryStore();
    const controller = new AbortController();
    const first = await Trainer.create(options);
    const partial = await train(first, data, options, { onStep: (p) => p.step === 4 && controller.abort() }, { store, signal: controller.signal });
    expect(partial.interrupted).toBe(true);
    expect(partial.step).toBe(4);
    first.dispose();

    const second = await Trainer.create({ ...options, seed: 99 }); // everything comes from the checkpoint
    const rest = await train(second, data, { ...options, seed: 99 }, {}, { store, resume: true });
    expect(rest.interrupted).toBe(false);
    expect(rest.step).toBe(6);
    expect(rest.history.map((e) => e.epoch)).toEqual([1, 2]);
    expect(sameBytes(await second.exportWeights(), expected)).toBe(true);
    second.dispose();
  });

  it('finishes what the checkpoint callback persists before an interrupted run returns', async () => {
    // The web demo writes the run's metadata to IndexedDB in this callback and announces
    // "paused" when the run returns; the two must not race.
    const store = new MemoryStore();
    const controller = new AbortController();
    const t = await Trainer.create(options);
    let persisted: number | undefined;
    const r = await train(
      t,
      data,
      options,
      {
        onStep: (p) => p.step === 2 && controller.abort(),
        onCheckpoint: async (step) => {
          await new Promise((resolve) => setTimeout(resolve, 50));
          persisted = step;
        },
      },
      { store, signal: controller.signal },
    );
    expect(r.interrupted).toBe(true);
    expect(persisted).toBe(2);
    expect(store.saves).toBe(1);
    t.dispose();
  });

  it('semi-supervised runs take labeled and unlabeled batches', async () => {
    const semi: RunOptions = { ...options, labeled: 20, batchSize: 10, unlabeledBatchSize: 48, entmin: true, dropout: false };
    const t = await Trainer.create(semi);
    const seen: number[] = [];
    const r = await train(t, data, semi, { onStep: (p) => void seen.push(p.stats.batch) });
    expect(seen).toEqual([10, 10, 10, 10]); // 96 unlabeled / 48 per step = 2 steps per epoch
    expect(r.history[0]!.entropy).toBeGreaterThan(0);
    t.dispose();
  });

  it('refuses to resume without a checkpoint', async () => {
    const t = await Trainer.create(options);
    await expect(train(t, data, options, {}, { store: new MemoryStore(), resume: true })).rejects.toBeInstanceOf(InvalidConfigError);
    t.dispose();
  });
});
