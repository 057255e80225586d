// The handle class over the vat-core crate: `await Trainer.create(options)`, async methods that
// take and return typed arrays or plain objects, and `dispose()`. The crate runs in an engine
// (engine.ts): the native addon in Node, or the wasm module. Neither can be re-entered while a
// call is pending, so the handle queues its own calls: callers may fire them concurrently.

import { type AdapterReport, type BackendName, type ResolvedBackend, parseBackend, resolveBackend, startWebGpu } from './backend.js';
import { type CoreBindings, type CoreHandle, type EngineChoice, type EngineName, parseEngine, parseThreads, platform } from './engine.js';
import { InvalidConfigError, WeightsFormatError, coreCall } from './errors.js';
import {
  type EngineOptions,
  type LoopOptions,
  type ResolvedLoopOptions,
  type ResolvedTrainerOptions,
  type RunOptions,
  type TrainerOptions,
  coreOptions,
  resolveWith,
  splitOptions,
} from './options.js';

/** A checkpoint's loop state: JSON, or a WeightsFormatError that says the file is damaged. */
function parseLoopState(s: string): unknown {
  if (!s) return null;
  try {
    return JSON.parse(s);
  } catch (e) {
    throw new WeightsFormatError(`the checkpoint's loop state is not JSON (${(e as Error).message}); the file is damaged`);
  }
}

export interface StepStats {
  loss: number;
  ce: number;
  lds: number;
  entropy: number;
  correct: number;
  batch: number;
}

export interface EvalStats {
  loss: number;
  accuracy: number;
  count: number;
  /** classes x classes, row = true label, column = prediction. */
  confusion: Uint32Array;
  /** The predicted class of each image. */
  predicted: Uint32Array;
}

/** The adversarial direction on the live weights (`Trainer.vatView`). */
export interface VatView {
  /** [n, h * w], of norm eps per image. */
  rAdv: Float32Array;
  /** p(y|x) and p(y|x + r_adv), [n, classes]. */
  p: Float32Array;
  q: Float32Array;
  /** KL(p || q) per image. */
  kl: Float32Array;
}

/** Refuses the loop's options where only the trainer's belong (they would be silently ignored). */
function trainerOnly(options: TrainerOptions): void {
  const { loop } = splitOptions(options as RunOptions);
  const given = Object.entries(loop).filter(([, v]) => v !== undefined);
  if (given.length) {
    throw new InvalidConfigError(
      `${given.map(([k]) => k).join(', ')} ${given.length === 1 ? 'is an option' : 'are options'} of the loop: pass ${given.length === 1 ? 'it' : 'them'} to train(), not Trainer.create()`,
    );
  }
}

/** The core's TrainConfig JSON for `options`: every default filled in by the core, every value checked. */
async function trainConfig(bindings: CoreBindings, options: TrainerOptions): Promise<string> {
  trainerOnly(options);
  const json = await coreCall(() => bindings.resolveOptions(JSON.stringify(coreOptions(options))));
  return JSON.stringify((JSON.parse(json) as { train: unknown }).train);
}

/** Picks the backend and starts the engine for it. */
async function start(options: { backend?: BackendName; engine?: EngineName; threads?: number }): Promise<{ report: AdapterReport; choice: EngineChoice }> {
  const engine = parseEngine(options.engine ?? 'auto');
  const threads = parseThreads(options.threads);
  const auto = (options.backend ?? 'auto') === 'auto';
  // The native engine has only the CPU backend: with it, 'auto' means the CPU.
  const backend = auto && engine === 'native' ? 'cpu' : parseBackend(options.backend ?? 'auto');
  let report = await resolveBackend(backend);
  const choice = await platform().engine(engine, report.backend, threads);
  // wgpu makes its device on the adapter just checked (backend.ts: one adapter per process).
  if (report.backend === 'webgpu') report = { ...(await startWebGpu()), reason: report.reason };
  report.engine = choice.engine;
  report.threads = choice.threads;
  if (report.backend === 'cpu') report.description = `CPU: vat-core kernels, ${choice.label}, ${choice.threads} thread${choice.threads === 1 ? '' : 's'}`;
  const reasons = [report.reason, choice.reason].filter(Boolean);
  if (reasons.length) report.reason = reasons.join('; ');
  return { report, choice };
}

export class Trainer {
  private disposed = false;
  /** The last queued call; each call starts when the one before it has settled. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly handle: CoreHandle,
    /** The backend and engine actually used, with the adapter and the thread count. */
    readonly adapter: AdapterReport,
    /** The complete core config, defaults filled in. */
    readonly config: Record<string, unknown> & { model: Record<string, unknown> },
    /** The vat-core crate's version, for run.json and bug reports. */
    readonly coreVersion: string,
    private readonly bindings: CoreBindings,
    private readonly requested: TrainerOptions,
  ) {}

  /** Set by `fromCheckpoint`: the checkpoint's loop state (for `train`) and the settings the resume changed. */
  resumed?: { loopState: unknown; overridden: string[] };

  /**
   * A trainer that continues the run in `checkpoint` from the file alone: its settings, weights,
   * optimiser state and RNG state. `overrides` may change the VAT hyperparameters (eps, xi,
   * alpha, powerIterations, vat, entmin, entminWeight); a change is refused with an error that names it unless
   * `allowOverrides` is set, and the model, the optimiser and the seed never change.
   */
  static async fromCheckpoint(
    checkpoint: Uint8Array,
    options: EngineOptions & { overrides?: TrainerOptions; allowOverrides?: boolean } = {},
  ): Promise<Trainer> {
    const { report, choice } = await start(options);
    const overrides = JSON.stringify(coreOptions(splitOptions({ ...options.overrides }).trainer));
    const handle = await coreCall(() => choice.bindings.resumeTrainer(report.backend, checkpoint, overrides, !!options.allowOverrides, choice.threads));
    const t = new Trainer(handle, report, JSON.parse(handle.configJson), choice.bindings.version(), choice.bindings, options);
    t.resumed = { loopState: parseLoopState(handle.resumedLoopState), overridden: JSON.parse(handle.overridden) };
    return t;
  }

  /**
   * A trainer holding the weights in a weights file (or checkpoint), to evaluate or predict with:
   * its model is the one the file declares, checked against the file's tensors before anything is
   * built (a file that declares other shapes than it holds is a WeightsFormatError).
   */
  static async fromWeights(weights: Uint8Array, options: EngineOptions = {}): Promise<Trainer> {
    const { report, choice } = await start(options);
    const handle = await coreCall(() => choice.bindings.trainerFromWeights(report.backend, weights, choice.threads));
    return new Trainer(handle, report, JSON.parse(handle.configJson), choice.bindings.version(), choice.bindings, options);
  }

  static async create(options: TrainerOptions = {}): Promise<Trainer> {
    const { report, choice } = await start(options);
    const config = await trainConfig(choice.bindings, options); // fails on bad options before a device is made
    const handle = await coreCall(() => choice.bindings.createTrainer(report.backend, config, choice.threads));
    return new Trainer(handle, report, JSON.parse(handle.configJson), choice.bindings.version(), choice.bindings, options);
  }

  /** The trainer's own options, every default filled in (the core's), as `Trainer.create` takes them. */
  get options(): ResolvedTrainerOptions {
    const { model, ...rest } = this.config;
    const { spec, ...seedModel } = model;
    return {
      ...seedModel,
      ...(spec ? { modelSpec: spec } : {}),
      ...rest,
      backend: this.requested.backend ?? 'auto',
      engine: this.requested.engine ?? 'auto',
      threads: this.requested.threads,
    } as ResolvedTrainerOptions;
  }

  /** The loop's options with the core's defaults, the learning rate this trainer's optimiser's. */
  async resolveLoop(options: LoopOptions): Promise<ResolvedLoopOptions> {
    return (await resolveWith(this.bindings, { ...options, optimizer: this.options.optimizer })).loop;
  }

  /** Runs `f` on the handle after every call queued before it. */
  private call<T>(f: (h: CoreHandle) => T | Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new InvalidConfigError('this Trainer was disposed; create a new one'));
    const h = this.handle;
    const result = this.tail.then(() => coreCall(() => f(h)));
    this.tail = result.catch(() => undefined);
    return result;
  }

  get backend(): ResolvedBackend {
    return this.adapter.backend;
  }

  /** 'native' or 'wasm'. */
  get engine(): 'native' | 'wasm' {
    return this.adapter.engine!;
  }

  /** Threads the CPU backend runs on (1 on the other backends). */
  get threads(): number {
    return this.handle.threads;
  }

  /** Optimiser steps taken (restored by importCheckpoint), as of the last settled call. */
  get step(): number {
    if (this.disposed) throw new InvalidConfigError('this Trainer was disposed; create a new one');
    return this.handle.step;
  }

  /** One optimiser step. x: n*h*w pixels in [0,1]; y: n labels; xUnlabeled: the semi-supervised VAT batch. */
  trainStep(x: Float32Array, y: Uint32Array, lr: number, xUnlabeled?: Float32Array): Promise<StepStats> {
    return this.call(async (h) => {
      const s = await h.trainStep(x, y, xUnlabeled, lr);
      const out = { loss: s.loss, ce: s.ce, lds: s.lds, entropy: s.entropy, correct: s.correct, batch: s.batch };
      s.free?.();
      return out;
    });
  }

  evaluate(x: Float32Array, y: Uint32Array, batchSize = 250): Promise<EvalStats> {
    return this.call(async (h) => {
      const e = await h.evaluate(x, y, batchSize);
      const out = { loss: e.loss, accuracy: e.accuracy, count: e.count, confusion: e.confusion, predicted: e.predicted };
      e.free?.();
      return out;
    });
  }

  /**
   * r_adv for the images `x` on the current weights, with the trainer's eps, xi and power
   * iterations, dropout off and d drawn from `seed` (the same seed gives the same d as the model
   * changes), with p(y|x), p(y|x + r_adv) and their KL per image.
   */
  vatView(x: Float32Array, seed: number): Promise<VatView> {
    return this.call(async (h) => {
      const v = await h.vatView(x, seed);
      const out = { rAdv: (v.rAdv ?? v.r_adv)!, p: v.p, q: v.q, kl: v.kl };
      v.free?.();
      return out;
    });
  }

  /**
   * Re-estimates batch norm's running statistics over `batches` (each n*c*h*w pixels, as for
   * trainStep): every layer normalises each batch with its own statistics, dropout and noise off,
   * and the running mean and variance become the image-weighted average of the batches' means and
   * unbiased variances. The official VAT code's last step: a run's running statistics come from
   * its labeled batches alone. Returns the number of images averaged. Only the running
   * statistics change; a model without batch norm is refused.
   */
  reestimateBatchNorm(batches: Iterable<Float32Array>): Promise<number> {
    return this.call(async (h) => {
      for (const x of batches) await h.accumulateBatchNorm(x);
      return h.applyBatchNorm();
    });
  }

  /** Class probabilities, row-major [n, classes]. */
  predict(x: Float32Array): Promise<Float32Array> {
    return this.call((h) => h.predict(x));
  }

  /** The weights as a safetensors file. */
  exportWeights(): Promise<Uint8Array> {
    return this.call(async (h) => new Uint8Array(await h.exportWeights()));
  }

  importWeights(bytes: Uint8Array): Promise<void> {
    return this.call((h) => h.importWeights(bytes));
  }

  /** Model, optimiser state, RNG state and `loopState` (any JSON value) in one safetensors file. */
  exportCheckpoint(loopState: unknown = null): Promise<Uint8Array> {
    return this.call(async (h) => new Uint8Array(await h.exportCheckpoint(JSON.stringify(loopState))));
  }

  /** Restores a checkpoint and returns the loopState stored with it. */
  importCheckpoint(bytes: Uint8Array): Promise<unknown> {
    return this.call(async (h) => {
      return parseLoopState(await h.importCheckpoint(bytes));
    });
  }

  /** Frees the trainer's memory once the queued calls are done. Further calls throw. */
  dispose(): void {
    if (!this.disposed) {
      this.disposed = true;
      void this.tail.then(() => this.handle.free?.());
    }
  }
}

export interface InspectInput {
  weights: Float32Array;
  x: Float32Array;
  y: Uint32Array;
  xUnlabeled?: Float32Array;
  d?: Float32Array;
  masksLabeled?: Float32Array;
  masksUnlabeled?: Float32Array;
  lr: number;
}

export interface Inspection {
  logits: Float32Array;
  loss: number;
  ce: number;
  lds: number;
  entropy: number;
  rAdv: Float32Array;
  grads: Float32Array;
  updated: Float32Array;
  /** The logits of `x` in evaluation mode on the given weights (no dropout or noise; batch norm's running statistics). */
  evalLogits: Float32Array;
}

/**
 * Every intermediate of one step on given weights with injected randomness (parity checks), on
 * `backend` in the engine and thread count that `options` pick.
 */
export async function inspect(backend: ResolvedBackend, options: TrainerOptions, input: InspectInput): Promise<Inspection> {
  const { report, choice } = await start({ ...options, backend });
  const config = await trainConfig(choice.bindings, options);
  const r = await coreCall(() =>
    choice.bindings.inspect(
      report.backend,
      choice.threads,
      config,
      input.weights,
      input.x,
      input.y,
      input.xUnlabeled,
      input.d,
      input.masksLabeled,
      input.masksUnlabeled,
      input.lr,
    ),
  );
  const out = {
    logits: r.logits,
    loss: r.loss,
    ce: r.ce,
    lds: r.lds,
    entropy: r.entropy,
    rAdv: (r.rAdv ?? r.r_adv)!,
    grads: r.grads,
    updated: r.updated,
    evalLogits: (r.evalLogits ?? r.eval_logits)!,
  };
  r.free?.();
  return out;
}
