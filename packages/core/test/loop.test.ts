import { describe, expect, it } from 'vitest';

import { sameBytes } from './helpers.js';

import { type CheckpointStore, InvalidConfigError, type LoopOptions, Trainer, type TrainerOptions, resumedData, train } from '../src/index.node.js';
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

const trainerOptions: TrainerOptions = { backend: 'cpu', seed: 4, optimizer: 'adam', dropout: true };
const options: LoopOptions = { epochs: 2, trainSize: 96, valSize: 50, batchSize: 32, lr: 0.002, lrDecay: 0.5, checkpointSeconds: 1e9 };

describe('training loop', () => {
  it('runs epochs, validates, and scores the test set', async () => {
    const t = await Trainer.create(trainerOptions);
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
    const full = await Trainer.create(trainerOptions);
    await train(full, data, options);
    const expected = await full.exportWeights();
    full.dispose();

    const store = new MemoryStore();
    const controller = new AbortController();
    const first = await Trainer.create(trainerOptions);
    const partial = await train(first, data, options, { onStep: (p) => p.step === 4 && controller.abort() }, { store, signal: controller.signal });
    expect(partial.interrupted).toBe(true);
    expect(partial.step).toBe(4);
    first.dispose();

    // Nothing but the checkpoint: its settings (the seed, dropout, Adam), weights and loop state.
    const second = await Trainer.fromCheckpoint(store.bytes!, { backend: 'cpu' });
    expect(second.options).toMatchObject({ seed: 4, dropout: true, optimizer: 'adam' });
    const rest = await train(second, data, {}, {}, { store, resume: true });
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
    const t = await Trainer.create(trainerOptions);
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
    const semi: LoopOptions = { ...options, labeled: 20, batchSize: 10, unlabeledBatchSize: 48 };
    const t = await Trainer.create({ ...trainerOptions, entmin: true, dropout: false });
    const seen: number[] = [];
    const r = await train(t, data, semi, { onStep: (p) => void seen.push(p.stats.batch) });
    expect(seen).toEqual([10, 10, 10, 10]); // 96 unlabeled / 48 per step = 2 steps per epoch
    expect(r.history[0]!.entropy).toBeGreaterThan(0);
    t.dispose();
  });

  it("takes the default learning rate from the trainer's optimiser, and the data order from its seed", async () => {
    const { lr: _, ...noLr } = options;
    const adam = await Trainer.create({ ...trainerOptions, seed: 7 });
    const adadelta = await Trainer.create({ ...trainerOptions, optimizer: 'adadelta', seed: 7 });
    const a = await train(adam, data, { ...noLr, epochs: 1 });
    const b = await train(adadelta, data, { ...noLr, epochs: 1 });
    expect([a.history[0]!.lr, b.history[0]!.lr]).toEqual([0.002, 1]);
    // Another seed on the trainer gives another data order, hence another first loss.
    const first = async (seed: number) => {
      const t = await Trainer.create({ ...trainerOptions, seed, dropout: false });
      let loss = 0;
      await train(
        t,
        data,
        { ...options, epochs: 1 },
        {
          onStep: (p) => {
            if (p.step === 1) loss = p.stats.loss;
          },
        },
      );
      t.dispose();
      return loss;
    };
    expect(await first(7)).toBe(await first(7));
    expect(await first(7)).not.toBe(await first(8));
    adam.dispose();
    adadelta.dispose();
  });

  it("refuses the trainer's options in train() and the loop's in Trainer.create(), naming them", async () => {
    const t = await Trainer.create(trainerOptions);
    const trainerKeys = { optimizer: 'adam', seed: 3 } as unknown as LoopOptions;
    await expect(train(t, data, { ...options, ...trainerKeys })).rejects.toThrow(/optimizer, seed are options of the trainer: pass them to Trainer.create/);
    await expect(Trainer.create({ ...trainerOptions, lr: 0.1 } as TrainerOptions)).rejects.toThrow(/lr is an option of the loop: pass it to train/);
    t.dispose();
  });

  it('refuses a resume that asks for other settings, naming them, unless overrides are allowed', async () => {
    const store = new MemoryStore();
    const controller = new AbortController();
    const first = await Trainer.create(trainerOptions);
    await train(first, data, options, { onStep: (p) => p.step === 2 && controller.abort() }, { store, signal: controller.signal });
    first.dispose();
    await expect(Trainer.fromCheckpoint(store.bytes!, { backend: 'cpu', overrides: { eps: 3 } })).rejects.toThrow(/eps \(checkpoint 1\.0, asked 3\.0\)/);
    await expect(Trainer.fromCheckpoint(store.bytes!, { backend: 'cpu', overrides: { hidden: 64 }, allowOverrides: true })).rejects.toThrow(
      /a resume cannot change hidden/,
    );
    const t = await Trainer.fromCheckpoint(store.bytes!, { backend: 'cpu', overrides: { eps: 3 }, allowOverrides: true });
    expect([t.options.eps, t.resumed?.overridden]).toEqual([3, ['eps']]);
    await expect(train(t, data, { lr: 0.01 }, {}, { store, resume: true })).rejects.toThrow(/lr \(checkpoint 0\.002, asked 0\.01\)/);
    await expect(train(t, data, { batchSize: 16 }, {}, { store, resume: true, allowOverrides: true })).rejects.toThrow(/cannot change batchSize/);
    const r = await train(t, data, { lr: 0.01 }, {}, { store, resume: true, allowOverrides: true });
    expect(r.history.at(-1)!.lr).toBe(0.01 * 0.5);
    t.dispose();
  });

  it('records what it trained on in the checkpoint, and refuses to resume on other data', async () => {
    const store = new MemoryStore();
    const controller = new AbortController();
    const first = await Trainer.create(trainerOptions);
    await train(first, { ...data, source: 'set A' }, options, { onStep: (p) => p.step === 2 && controller.abort() }, { store, signal: controller.signal });
    first.dispose();
    const t = await Trainer.fromCheckpoint(store.bytes!, { backend: 'cpu' });
    expect(resumedData(t)).toMatchObject({ source: 'set A', train: { count: 60000, rows: 28, cols: 28, hash: expect.stringMatching(/^[0-9a-f]{16}$/) } });
    const labels = data.train.labels.slice();
    labels[0] = (labels[0]! + 1) % 10;
    const other = { train: { ...data.train, labels }, test: data.test, source: 'set B' };
    await expect(train(t, other, {}, {}, { store, resume: true })).rejects.toThrow(
      /not the data the run was trained on \(training set: checkpoint 60000 images of 28x28, hash [0-9a-f]{16}, here 60000 images of 28x28, hash [0-9a-f]{16}\): the run's came from "set A", this from "set B"/,
    );
    const r = await train(t, data, {}, {}, { store, resume: true });
    expect(r.interrupted).toBe(false);
    t.dispose();
  });

  it('refuses data whose images are not the shape the model takes, naming both', async () => {
    const t = await Trainer.create(trainerOptions);
    const big = { ...data.train, rows: 32, cols: 32 };
    await expect(train(t, { train: big, test: data.test }, options)).rejects.toThrow(
      /the training images are 1x32x32, but the model takes 1x28x28 images; build the trainer for the data \(inputShape \[1, 32, 32\]/,
    );
    const colour = { ...data.test, channels: 3 };
    await expect(train(t, { train: data.train, test: colour }, options)).rejects.toThrow(/the test images are 3x28x28, but the model takes 1x28x28/);
    t.dispose();
  });

  it('times a resumed epoch whole, not from the resume', async () => {
    // A clock that moves one second per step.
    let t = 0;
    const now = () => t;
    const tick = () => {
      t += 1;
    };
    const whole = await Trainer.create(trainerOptions);
    const a = await train(whole, data, options, { onStep: tick }, { now });
    whole.dispose();
    const store = new MemoryStore();
    const controller = new AbortController();
    const first = await Trainer.create(trainerOptions);
    await train(
      first,
      data,
      options,
      {
        onStep: (p) => {
          tick();
          if (p.step === 2) controller.abort();
        },
      },
      { store, signal: controller.signal, now },
    );
    first.dispose();
    const t2 = await Trainer.fromCheckpoint(store.bytes!, { backend: 'cpu' });
    const b = await train(t2, data, {}, { onStep: tick }, { store, resume: true, now });
    t2.dispose();
    expect(b.history.map((e) => e.trainSeconds)).toEqual(a.history.map((e) => e.trainSeconds));
  });

  it('stops during the final test evaluation when asked, and a resume runs only the test', async () => {
    const store = new MemoryStore();
    const controller = new AbortController();
    const t = await Trainer.create(trainerOptions);
    const r = await train(t, data, options, { onEpoch: (e) => void (e.epoch === 2 && controller.abort()) }, { store, signal: controller.signal });
    expect([r.interrupted, r.test, r.history.length]).toEqual([true, undefined, 2]);
    const step = t.step;
    t.dispose();
    const again = await Trainer.fromCheckpoint(store.bytes!, { backend: 'cpu' });
    const done = await train(again, data, {}, {}, { store, resume: true });
    expect([done.interrupted, done.test?.count, again.step]).toEqual([false, 300, step]);
    again.dispose();
  });

  it("re-estimates batch norm's statistics over the training images after the last epoch when asked, and refuses without batch norm", async () => {
    const modelSpec: TrainerOptions['modelSpec'] = {
      input: [1, 28, 28],
      classes: 10,
      layers: [{ type: 'dense', units: 16, bias: false }, { type: 'batchNorm' }, { type: 'relu' }, { type: 'dense', units: 10 }],
    };
    const run = async (reestimateBn: boolean) => {
      const t = await Trainer.create({ ...trainerOptions, dropout: false, modelSpec });
      const seen: number[] = [];
      const r = await train(t, data, { ...options, reestimateBn }, { onBatchNorm: (n) => void seen.push(n) });
      const weights = await t.exportWeights();
      t.dispose();
      return { r, seen, weights };
    };
    const [plain, again] = [await run(false), await run(true)];
    expect([plain.seen, plain.r.batchNormImages]).toEqual([[], undefined]);
    // Every training image once (96 here: the validation rows are held out).
    expect([again.seen, again.r.batchNormImages]).toEqual([[96], 96]);
    expect(again.r.history).toEqual(
      plain.r.history.map((e, i) => ({ ...e, seconds: again.r.history[i]!.seconds, trainSeconds: again.r.history[i]!.trainSeconds })),
    );
    expect(sameBytes(plain.weights, again.weights)).toBe(false);
    const seed = await Trainer.create(trainerOptions);
    await expect(train(seed, data, { ...options, reestimateBn: true })).rejects.toThrow(/no batch norm layers/);
    seed.dispose();
  });

  it('refuses to resume without a checkpoint', async () => {
    const t = await Trainer.create(trainerOptions);
    await expect(train(t, data, options, {}, { store: new MemoryStore(), resume: true })).rejects.toBeInstanceOf(InvalidConfigError);
    t.dispose();
  });
});
