// The training loop: epochs of batches, per-epoch learning-rate decay, validation, checkpoints
// written through a store (files in Node, IndexedDB in the browser) and exact resume.

import { all, balancedSubset, epochOrder, gather, streamBatch, trainValSplit, type Subset } from './data.js';
import { InvalidConfigError } from './errors.js';
import type { ImageSet } from './idx.js';
import type { EvalStats, StepStats, Trainer, TrainerOptions } from './trainer.js';

export interface RunOptions extends TrainerOptions {
  /** Default 1. */
  epochs?: number;
  /** Labeled examples per step. Default 128 (the seed's). */
  batchSize?: number;
  /** Unlabeled examples per step in semi-supervised mode. Default 250 (the paper's). */
  unlabeledBatchSize?: number;
  /** Semi-supervised: keep this many labels (balanced per class); VAT runs on unlabeled batches. */
  labeled?: number;
  /** Use only this many training examples (after the validation hold-out). */
  trainSize?: number;
  /** Hold out this many training examples for validation; 0 validates on the test set, as the seed did. Default 5000. */
  valSize?: number;
  /** Learning rate. Default 1.0 for Adadelta (Keras's), 0.002 for Adam (the paper's). */
  lr?: number;
  /** Multiply the learning rate by this after every epoch. Default 1. */
  lrDecay?: number;
  /** Batch size for evaluation. Default 250. */
  evalBatchSize?: number;
  /** Write a checkpoint at least this often, in seconds (and at every epoch end). Default 60. */
  checkpointSeconds?: number;
}

export interface EpochStats {
  epoch: number;
  step: number;
  lr: number;
  loss: number;
  ce: number;
  lds: number;
  entropy: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  /** Wall time of the epoch's training steps. */
  trainSeconds: number;
  /** Wall time of the epoch including validation. */
  seconds: number;
}

export interface StepProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  step: number;
  stats: StepStats;
  /** Mean loss over the epoch so far. */
  runningLoss: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

export interface CheckpointStore {
  save(bytes: Uint8Array): Promise<void>;
  load(): Promise<Uint8Array | undefined>;
}

export interface RunCallbacks {
  onStep?(p: StepProgress): void;
  onEpoch?(e: EpochStats, history: EpochStats[]): void | Promise<void>;
  /** Awaited before training goes on, so what it persists is in place when the run returns. */
  onCheckpoint?(step: number): void | Promise<void>;
}

export interface RunResult {
  history: EpochStats[];
  test?: EvalStats;
  interrupted: boolean;
  seconds: number;
  step: number;
}

/** Loop position and partial-epoch sums, stored inside each checkpoint. */
interface LoopState {
  version: 1;
  epoch: number;
  batch: number;
  history: EpochStats[];
  sums: Sums;
  seconds: number;
  options: RunOptions;
}

interface Sums {
  loss: number;
  ce: number;
  lds: number;
  entropy: number;
  correct: number;
  seen: number;
  steps: number;
}
const zeroSums = (): Sums => ({ loss: 0, ce: 0, lds: 0, entropy: 0, correct: 0, seen: 0, steps: 0 });

/**
 * Lets pending events (a SIGINT, a worker's "stop" message) run. The CPU backend's async calls
 * complete as microtasks, so without this a whole run would never reach the event loop.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  if (g.setImmediate) return new Promise((r) => g.setImmediate!(r));
  return new Promise((r) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      r();
    };
    port2.postMessage(null);
  });
}

/** Fills in defaults and rejects values no run can use. */
export function resolveRunOptions(
  o: RunOptions,
): Required<Pick<RunOptions, 'epochs' | 'batchSize' | 'unlabeledBatchSize' | 'valSize' | 'lr' | 'lrDecay' | 'evalBatchSize' | 'checkpointSeconds'>> &
  RunOptions {
  const r = {
    ...o,
    epochs: o.epochs ?? 1,
    batchSize: o.batchSize ?? 128,
    unlabeledBatchSize: o.unlabeledBatchSize ?? 250,
    valSize: o.valSize ?? 5000,
    lr: o.lr ?? ((o.optimizer ?? 'adadelta') === 'adam' ? 0.002 : 1.0),
    lrDecay: o.lrDecay ?? 1,
    evalBatchSize: o.evalBatchSize ?? 250,
    checkpointSeconds: o.checkpointSeconds ?? 60,
  };
  const positiveInts = ['epochs', 'batchSize', 'unlabeledBatchSize', 'evalBatchSize'] as const;
  for (const k of positiveInts) {
    if (!(Number.isInteger(r[k]) && r[k] > 0)) throw new InvalidConfigError(`${k} must be a positive integer, got ${r[k]}`);
  }
  if (!(Number.isInteger(r.valSize) && r.valSize >= 0)) throw new InvalidConfigError(`valSize must be an integer >= 0, got ${r.valSize}`);
  if (!(r.lr > 0 && Number.isFinite(r.lr))) throw new InvalidConfigError(`lr must be a positive number, got ${r.lr}`);
  if (!(r.lrDecay > 0 && r.lrDecay <= 1)) throw new InvalidConfigError(`lrDecay must be in (0, 1], got ${r.lrDecay}`);
  if (r.labeled !== undefined && !(Number.isInteger(r.labeled) && r.labeled > 0)) {
    throw new InvalidConfigError(`labeled must be a positive integer, got ${r.labeled}`);
  }
  if (r.trainSize !== undefined && !(Number.isInteger(r.trainSize) && r.trainSize > 0)) {
    throw new InvalidConfigError(`trainSize must be a positive integer, got ${r.trainSize}`);
  }
  return r;
}

/**
 * Trains on `data.train`, validates every epoch, and scores `data.test` at the end.
 * With a `store`, a checkpoint is written every `checkpointSeconds` and at each epoch end, and
 * a run started with `resume` continues from the stored checkpoint exactly. `signal` stops the
 * run after the current step, with a checkpoint.
 */
export async function train(
  trainer: Trainer,
  data: { train: ImageSet; test: ImageSet },
  options: RunOptions,
  callbacks: RunCallbacks = {},
  io: { store?: CheckpointStore; resume?: boolean; signal?: AbortSignal; now?: () => number } = {},
): Promise<RunResult> {
  // A resumed run continues with the options it was started with (they decide the data order).
  let state: LoopState | undefined;
  if (io.resume) {
    const bytes = await io.store?.load();
    if (!bytes) throw new InvalidConfigError('there is no checkpoint to resume from in this output directory');
    const loaded = (await trainer.importCheckpoint(bytes)) as LoopState | null;
    if (loaded?.version !== 1) throw new InvalidConfigError('the checkpoint holds no loop state this version can resume');
    state = loaded;
  }
  const o = resolveRunOptions(state?.options ?? options);
  const seed = o.seed ?? 42;
  const now = io.now ?? (() => performance.now() / 1000);
  const { train: trainSubset, val: valSubset } = trainValSplit(data.train, seed, o.valSize, o.trainSize);
  const val: Subset = o.valSize > 0 ? valSubset : all(data.test);
  const semi = o.labeled !== undefined;
  const labeledSubset = semi ? balancedSubset(trainSubset, o.labeled!, seed, Number(trainer.config.model.classes)) : trainSubset;
  const labeledBatch = semi ? Math.min(o.batchSize, o.labeled!) : o.batchSize;
  // An epoch is one pass over the training set: labeled examples when supervised, unlabeled
  // ones when semi-supervised (labeled batches then cycle through their small set).
  const epochRows = trainSubset.indices.length;
  const perStep = semi ? o.unlabeledBatchSize : o.batchSize;
  const batches = Math.ceil(epochRows / perStep);
  state ??= { version: 1, epoch: 0, batch: 0, history: [], sums: zeroSums(), seconds: 0, options: o };

  const valData = gather(val.set, val.indices);
  const result: RunResult = { history: state.history, interrupted: false, seconds: state.seconds, step: trainer.step };
  const started = now() - state.seconds;
  let lastCheckpoint = now();
  let imagesThisRun = 0;
  const runStart = now();
  const stepsTotal = o.epochs * batches;

  const checkpoint = async () => {
    if (!io.store) return;
    state.seconds = now() - started;
    await io.store.save(await trainer.exportCheckpoint(state));
    lastCheckpoint = now();
    await callbacks.onCheckpoint?.(trainer.step);
  };

  for (; state.epoch < o.epochs; state.epoch++, state.batch = 0, state.sums = zeroSums()) {
    const lr = o.lr * o.lrDecay ** state.epoch;
    const epochStart = now();
    const order = epochOrder(trainSubset, seed, semi ? 'unlabeled' : 'labeled', state.epoch);
    for (; state.batch < batches; state.batch++) {
      await yieldToEventLoop();
      if (io.signal?.aborted) {
        await checkpoint();
        result.interrupted = true;
        result.seconds = now() - started;
        result.step = trainer.step;
        return result;
      }
      const rows = order.subarray(state.batch * perStep, Math.min((state.batch + 1) * perStep, epochRows));
      let stats: StepStats;
      if (semi) {
        const lrows = streamBatch(labeledSubset, seed, 'labeled', labeledBatch, state.epoch * batches + state.batch);
        const l = gather(data.train, lrows);
        const u = gather(data.train, rows);
        stats = await trainer.trainStep(l.x, l.y, lr, u.x);
        imagesThisRun += rows.length;
      } else {
        const l = gather(data.train, rows);
        stats = await trainer.trainStep(l.x, l.y, lr);
        imagesThisRun += rows.length;
      }
      const s = state.sums;
      s.loss += stats.loss;
      s.ce += stats.ce;
      s.lds += stats.lds;
      s.entropy += stats.entropy;
      s.correct += stats.correct;
      s.seen += stats.batch;
      s.steps += 1;
      const elapsed = now() - runStart;
      const done = state.epoch * batches + state.batch + 1;
      const rate = imagesThisRun / Math.max(elapsed, 1e-9);
      callbacks.onStep?.({
        epoch: state.epoch,
        epochs: o.epochs,
        batch: state.batch,
        batches,
        step: trainer.step,
        stats,
        runningLoss: s.loss / s.steps,
        imagesPerSecond: rate,
        etaSeconds: ((stepsTotal - done) * perStep) / Math.max(rate, 1e-9),
      });
      if (now() - lastCheckpoint >= o.checkpointSeconds && state.batch + 1 < batches) {
        state.batch += 1; // the checkpoint resumes at the next batch
        await checkpoint();
        state.batch -= 1;
      }
    }
    const trainSeconds = now() - epochStart;
    const v = await trainer.evaluate(valData.x, valData.y, o.evalBatchSize);
    const s = state.sums;
    const e: EpochStats = {
      epoch: state.epoch + 1,
      step: trainer.step,
      lr,
      loss: s.loss / s.steps,
      ce: s.ce / s.steps,
      lds: s.lds / s.steps,
      entropy: s.entropy / s.steps,
      trainAccuracy: s.correct / s.seen,
      valLoss: v.loss,
      valAccuracy: v.accuracy,
      trainSeconds,
      seconds: now() - epochStart,
    };
    state.history.push(e);
    await callbacks.onEpoch?.(e, state.history);
    if (state.epoch + 1 < o.epochs) {
      state.epoch += 1;
      state.batch = 0;
      state.sums = zeroSums();
      await checkpoint();
      state.epoch -= 1; // the for-loop's increment moves it on
    }
  }
  state.batch = 0;
  await checkpoint();
  const testData = gather(data.test, all(data.test).indices);
  result.test = await trainer.evaluate(testData.x, testData.y, o.evalBatchSize);
  result.seconds = now() - started;
  result.step = trainer.step;
  return result;
}
