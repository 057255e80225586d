// The training loop: epochs of batches, per-epoch learning-rate decay, validation, checkpoints
// written through a store (files in Node, IndexedDB in the browser) and exact resume.

import {
  type DataFingerprint,
  all,
  balancedSubset,
  describeFingerprint,
  epochOrder,
  fingerprint,
  gather,
  streamBatch,
  trainValSplit,
  type Subset,
} from './data.js';
import { DivergedError, InvalidConfigError, InvalidInputError } from './errors.js';
import type { ImageSet } from './idx.js';
import { LOOP_KEYS, type LoopOptions, type ResolvedLoopOptions, type RunOptions, splitOptions } from './options.js';
import type { EvalStats, StepStats, Trainer } from './trainer.js';

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
  /** Once, before the first step, with the loop's options in force (a resumed run's are the checkpoint's). */
  onStart?(options: ResolvedLoopOptions, data: RunData): void | Promise<void>;
  onStep?(p: StepProgress): void;
  onEpoch?(e: EpochStats, history: EpochStats[]): void | Promise<void>;
  /** Awaited before training goes on, so what it persists is in place when the run returns. */
  onCheckpoint?(step: number): void | Promise<void>;
  /** With `reestimateBn`, after the last epoch: batch norm's statistics were re-estimated on `images` training images. */
  onBatchNorm?(images: number): void | Promise<void>;
}

export interface RunResult {
  history: EpochStats[];
  test?: EvalStats;
  /** With `reestimateBn`: the training images batch norm's running statistics were re-estimated on. */
  batchNormImages?: number;
  interrupted: boolean;
  seconds: number;
  step: number;
}

/**
 * Loop position and partial-epoch sums, stored inside each checkpoint. Version 2 holds the loop's
 * resolved options; version 1 held the whole run's (its loop part is what a resume takes).
 */
interface LoopState {
  version: 2;
  epoch: number;
  batch: number;
  history: EpochStats[];
  sums: Sums;
  seconds: number;
  options: ResolvedLoopOptions;
  /** What the run trains on (absent in checkpoints written before it was recorded). */
  data?: RunData;
  /** Wall time of the current epoch's steps before this checkpoint (so a resumed epoch's time is whole). */
  epochSeconds?: number;
}

/** The data a run trains on, as its checkpoint records it. */
export interface RunData {
  train: DataFingerprint;
  test: DataFingerprint;
  /** Where the data came from, as the caller described it (`TrainData.source`). */
  source?: unknown;
}

/** What `train` takes: the sets, and optionally a JSON description of where they came from. */
export interface TrainData {
  train: ImageSet;
  test: ImageSet;
  /** Recorded in the checkpoint (a resume can load the same data from it), e.g. a directory. */
  source?: unknown;
}

/** The data a resumed trainer's checkpoint recorded, if it did. */
export function resumedData(trainer: Trainer): RunData | undefined {
  const l = trainer.resumed?.loopState as { data?: RunData } | null | undefined;
  return l && typeof l === 'object' && l.data && typeof l.data === 'object' ? l.data : undefined;
}

/** Refuses to continue a run on other data than it was trained on, naming both. */
function sameData(saved: RunData, here: RunData): void {
  const diff = (['train', 'test'] as const).filter((k) => saved[k].hash !== here[k].hash || saved[k].count !== here[k].count);
  if (!diff.length) return;
  const from = (d: RunData) => (d.source === undefined ? 'a source it did not record' : JSON.stringify(d.source));
  const parts = diff.map(
    (k) => `${k === 'train' ? 'training' : 'test'} set: checkpoint ${describeFingerprint(saved[k])}, here ${describeFingerprint(here[k])}`,
  );
  throw new InvalidConfigError(
    `this is not the data the run was trained on (${parts.join('; ')}): the run's came from ${from(saved)}, this from ${from(here)}; resume on the run's own data`,
  );
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

/** The loop state a checkpoint holds, in this version's form. */
async function loopState(trainer: Trainer, loaded: unknown): Promise<LoopState> {
  const l = loaded as (Omit<LoopState, 'version' | 'options'> & { version?: number; options?: RunOptions }) | null;
  if (l?.version === 2) return l as LoopState;
  if (l?.version === 1 && l.options) return { ...l, version: 2, options: await trainer.resolveLoop(splitOptions(l.options).loop) };
  throw new InvalidConfigError('the checkpoint holds no loop state this version can resume (was it written by train()?)');
}

/**
 * Divergence: the loss of `steps` steps in a row above `factor` times this sitting's first loss
 * (and at least `margin` above it). The first step's loss is the weights' as they were given (a
 * fresh init, or the checkpoint's); a learning rate far too high multiplies it within a few
 * steps, while a healthy run's loss falls.
 */
export const DIVERGENCE = { steps: 10, factor: 10, margin: 5 } as const;

/** Watches the loss for divergence: throws DivergedError when the rule above holds. */
function divergenceWatch() {
  let first: number | undefined;
  let above = 0;
  return (loss: number, step: number) => {
    if (first === undefined) {
      first = loss;
      return;
    }
    const limit = Math.max(DIVERGENCE.factor * first, first + DIVERGENCE.margin);
    above = loss > limit ? above + 1 : 0;
    if (above >= DIVERGENCE.steps) {
      throw new DivergedError(
        `the loss diverged: ${loss.toPrecision(3)} at step ${step}, above ${limit.toPrecision(3)} (${DIVERGENCE.factor}x the first step's ${first.toPrecision(3)}) for ${DIVERGENCE.steps} steps in a row; lower the learning rate (or eps)`,
      );
    }
  };
}

/** The loop settings a resume may change; the others decide the data order and each epoch's length. */
const TUNABLE_LOOP = ['epochs', 'lr', 'lrDecay', 'evalBatchSize', 'checkpointSeconds', 'reestimateBn'] as const;

/** The checkpoint's loop options with the caller's on top: refused, naming them, unless allowed. */
function applyLoopOverrides(saved: ResolvedLoopOptions, asked: LoopOptions, allow: boolean): ResolvedLoopOptions {
  const changed = Object.entries(asked).filter(([k, v]) => v !== undefined && v !== saved[k as keyof ResolvedLoopOptions]);
  const fixed = changed.filter(([k]) => !(TUNABLE_LOOP as readonly string[]).includes(k));
  const list = (l: [string, unknown][]) => l.map(([k, v]) => `${k} (checkpoint ${saved[k as keyof ResolvedLoopOptions] ?? 'unset'}, asked ${v})`).join(', ');
  if (fixed.length) throw new InvalidConfigError(`a resume cannot change ${list(fixed)}: they decide the data order; start a new run instead`);
  if (changed.length && !allow) {
    throw new InvalidConfigError(
      `the checkpoint was trained with other settings: ${list(changed)}; resume with its own, or pass the override option to change them`,
    );
  }
  return { ...saved, ...Object.fromEntries(changed) };
}

/** Refuses the trainer's options where only the loop's belong (they would be silently ignored). */
function loopOnly(options: LoopOptions): void {
  const extra = Object.entries(options)
    .filter(([k, v]) => v !== undefined && !(LOOP_KEYS as readonly string[]).includes(k))
    .map(([k]) => k);
  if (extra.length) {
    throw new InvalidConfigError(
      `${extra.join(', ')} ${extra.length === 1 ? 'is an option' : 'are options'} of the trainer: pass ${extra.length === 1 ? 'it' : 'them'} to Trainer.create(), not train()`,
    );
  }
}

/**
 * Trains on `data.train`, validates every epoch, and scores `data.test` at the end.
 * `options` are the loop's (the trainer's come from the trainer: its optimiser decides the
 * default learning rate, its seed the data order). With a `store`, a checkpoint is written every
 * `checkpointSeconds` and at each epoch end, and a run started with `resume` continues from the
 * stored checkpoint exactly. `signal` stops the run after the current step, with a checkpoint.
 */
/** One example's `[channels, height, width]` for the trainer's model. */
export function inputShape(trainer: Trainer): [number, number, number] {
  const model = trainer.config.model as Record<string, unknown>;
  const spec = model.spec as { input: [number, number, number] } | undefined;
  if (spec) return spec.input;
  const size = Number(model.imageSize);
  return [1, size, size];
}

/** Whether the trainer's model has batch norm layers (the seed's CNN has none). */
function hasBatchNorm(trainer: Trainer): boolean {
  const spec = (trainer.config.model as { spec?: { layers: { type: string }[] } }).spec;
  return !!spec?.layers.some((l) => l.type === 'batchNorm');
}

export async function train(
  trainer: Trainer,
  data: TrainData,
  options: LoopOptions,
  callbacks: RunCallbacks = {},
  io: {
    store?: CheckpointStore;
    /** Continue the run: from the trainer's own checkpoint (`Trainer.fromCheckpoint`), else the store's. */
    resume?: boolean;
    /** On a resume, let `options` change the checkpoint's epochs, lr, lrDecay, evalBatchSize, checkpointSeconds. */
    allowOverrides?: boolean;
    signal?: AbortSignal;
    now?: () => number;
  } = {},
): Promise<RunResult> {
  loopOnly(options);
  const [c, h, w] = inputShape(trainer);
  for (const [name, set] of [
    ['training', data.train],
    ['test', data.test],
  ] as const) {
    const got = [set.channels ?? 1, set.rows, set.cols];
    if (got[0] !== c || got[1] !== h || got[2] !== w) {
      throw new InvalidInputError(
        `the ${name} images are ${got.join('x')}, but the model takes ${c}x${h}x${w} images; build the trainer for the data (inputShape [${got.join(', ')}], and a model that takes it)`,
      );
    }
  }
  // A resumed run continues with the options it was started with (they decide the data order).
  let state: LoopState | undefined;
  if (io.resume) {
    let loaded: unknown = trainer.resumed?.loopState;
    if (!trainer.resumed) {
      const bytes = await io.store?.load();
      if (!bytes) throw new InvalidConfigError('there is no checkpoint to resume from in this output directory');
      loaded = await trainer.importCheckpoint(bytes);
    }
    state = await loopState(trainer, loaded);
    state.options = applyLoopOverrides(state.options, options, !!io.allowOverrides);
  }
  const here: RunData = { train: fingerprint(data.train), test: fingerprint(data.test), source: data.source };
  if (state?.data) sameData(state.data, here);
  const o = state?.options ?? (await trainer.resolveLoop(options));
  if (o.reestimateBn && !hasBatchNorm(trainer)) {
    throw new InvalidConfigError(
      "reestimateBn re-estimates batch norm's running statistics, and this model has no batch norm layers; drop it (--no-reestimate-bn in the CLI, where a preset may set it), or pick a model with them (mlp-1200-1200, conv-small, ...)",
    );
  }
  const seed = trainer.options.seed;
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
  state ??= { version: 2, epoch: 0, batch: 0, history: [], sums: zeroSums(), seconds: 0, options: o, data: here };
  // A checkpoint from before the data was recorded takes this data's record from now on.
  state.data ??= here;

  await callbacks.onStart?.(o, state.data);
  const valData = gather(val.set, val.indices);
  const result: RunResult = { history: state.history, interrupted: false, seconds: state.seconds, step: trainer.step };
  const started = now() - state.seconds;
  let lastCheckpoint = now();
  let imagesThisRun = 0;
  const runStart = now();
  const stepsTotal = o.epochs * batches;
  const watch = divergenceWatch();
  let epochStart = now();

  const checkpoint = async () => {
    if (!io.store) return;
    state.seconds = now() - started;
    state.epochSeconds = state.batch > 0 ? now() - epochStart : 0;
    await io.store.save(await trainer.exportCheckpoint(state));
    lastCheckpoint = now();
    await callbacks.onCheckpoint?.(trainer.step);
  };

  for (; state.epoch < o.epochs; state.epoch++, state.batch = 0, state.sums = zeroSums()) {
    const lr = o.lr * o.lrDecay ** state.epoch;
    epochStart = now() - (state.batch > 0 ? (state.epochSeconds ?? 0) : 0);
    // The ETA counts the validations still to come, at the last one's pace.
    const last = state.history.at(-1);
    const validationSeconds = last ? last.seconds - last.trainSeconds : 0;
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
      watch(stats.loss, trainer.step);
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
        etaSeconds: ((stepsTotal - done) * perStep) / Math.max(rate, 1e-9) + (o.epochs - state.epoch) * validationSeconds,
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
  if (o.reestimateBn) {
    // The running statistics so far come from the labeled batches; these are the training set's,
    // in the epoch's batches (the same every time, so a resumed run that redoes this gets the same).
    await yieldToEventLoop();
    const rows = trainSubset.indices;
    const parts = function* () {
      for (let at = 0; at < rows.length; at += perStep) yield gather(data.train, rows.subarray(at, Math.min(at + perStep, rows.length))).x;
    };
    result.batchNormImages = await trainer.reestimateBatchNorm(parts());
    await callbacks.onBatchNorm?.(result.batchNormImages);
  }
  state.batch = 0;
  await checkpoint();
  // The test set in parts, so a stop asked for meanwhile is honoured within one part (the
  // checkpoint above already holds the trained weights; a resume runs only this evaluation).
  const test = await evaluateStoppable(trainer, data.test, o.evalBatchSize, io.signal);
  if (!test) {
    result.interrupted = true;
    result.seconds = now() - started;
    result.step = trainer.step;
    return result;
  }
  result.test = test;
  result.seconds = now() - started;
  result.step = trainer.step;
  return result;
}

/** `set` evaluated in parts of a few batches; undefined when `signal` stops it first. */
async function evaluateStoppable(trainer: Trainer, set: ImageSet, batchSize: number, signal?: AbortSignal): Promise<EvalStats | undefined> {
  const rows = all(set).indices;
  const part = batchSize * 4;
  const parts: EvalStats[] = [];
  for (let at = 0; at < rows.length; at += part) {
    await yieldToEventLoop();
    if (signal?.aborted) return undefined;
    const d = gather(set, rows.subarray(at, Math.min(at + part, rows.length)));
    parts.push(await trainer.evaluate(d.x, d.y, batchSize));
  }
  const count = parts.reduce((a, p) => a + p.count, 0);
  const confusion = new Uint32Array(parts[0]!.confusion.length);
  for (const p of parts) for (let i = 0; i < confusion.length; i++) confusion[i]! += p.confusion[i]!;
  const k = Math.round(Math.sqrt(confusion.length));
  let correct = 0;
  for (let c = 0; c < k; c++) correct += confusion[c * k + c]!;
  const predicted = new Uint32Array(count);
  let at = 0;
  for (const p of parts) {
    predicted.set(p.predicted, at);
    at += p.predicted.length;
  }
  return {
    loss: parts.reduce((a, p) => a + p.loss * p.count, 0) / count,
    accuracy: correct / count,
    count,
    confusion,
    predicted,
  };
}
