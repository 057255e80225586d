// The handle class over the vat-core crate: `await Trainer.create(options)`, async methods that
// take and return typed arrays or plain objects, and `dispose()`. The crate runs in an engine
// (engine.ts): the native addon in Node, or the wasm module. Neither can be re-entered while a
// call is pending, so the handle queues its own calls: callers may fire them concurrently.

import { type AdapterReport, type BackendName, type ResolvedBackend, parseBackend, resolveBackend } from './backend.js';
import { type CoreHandle, type EngineChoice, type EngineName, parseEngine, parseThreads, platform } from './engine.js';
import { InvalidConfigError, coreCall } from './errors.js';

/** Options shared by the API, the CLI flags and the web form (same names). */
export interface ModelOptions {
  /** The seed's dropout (.25 after the pool, .5 after the hidden layer). Default false. */
  dropout?: boolean;
  /** Side of the square input. Default 28. */
  imageSize?: number;
  /** Filters per conv layer. Default 32. */
  convFilters?: number;
  /** Hidden units. Default 128. */
  hidden?: number;
  /** Default 10. */
  classes?: number;
}

export interface VatOptions {
  /** Add alpha * LDS to the loss. Default true. */
  vat?: boolean;
  /** Norm of r_adv per sample. Default 1 (the seed's). */
  eps?: number;
  /** Norm of the power-iteration probe. Default 10 (the seed's; the paper's code uses 1e-6). */
  xi?: number;
  /** Default 1. */
  powerIterations?: number;
  /** Weight of LDS. Default 1. */
  alpha?: number;
  /** Add the entropy of p(y|x) on the VAT batch (VAT+EntMin). Default false. */
  entmin?: boolean;
}

export interface OptimizerOptions {
  /** Default 'adadelta' (the seed's). */
  optimizer?: 'adadelta' | 'adam';
  /** Adadelta decay. Default 0.95. */
  rho?: number;
  /** Adam moments. Defaults 0.9 and 0.999. */
  beta1?: number;
  beta2?: number;
  /** Default 1e-7 (Keras and tfjs). */
  epsilon?: number;
}

export interface TrainerOptions extends ModelOptions, VatOptions, OptimizerOptions {
  /** 'auto' (default): a hardware WebGPU adapter if there is one, else CPU. */
  backend?: BackendName;
  /**
   * Where the crate runs: 'native' (the Node addon), 'wasm', or 'auto' (default): the native
   * addon for the CPU backend in Node when it is built, else wasm.
   */
  engine?: EngineName;
  /** Threads of the CPU backend. Default: every core the engine can use. */
  threads?: number;
  /** Seeds weight init, dropout and the VAT direction. Default 42. */
  seed?: number;
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
}

/** The JSON config the wasm core takes (camelCase, nested model). */
export function coreConfig(o: TrainerOptions): Record<string, unknown> {
  const model: Record<string, unknown> = {};
  for (const k of ['dropout', 'imageSize', 'convFilters', 'hidden', 'classes'] as const) {
    if (o[k] !== undefined) model[k] = o[k];
  }
  const out: Record<string, unknown> = { model };
  for (const k of ['seed', 'vat', 'eps', 'xi', 'powerIterations', 'alpha', 'entmin', 'optimizer', 'rho', 'beta1', 'beta2', 'epsilon'] as const) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  if (o.seed !== undefined && !(Number.isSafeInteger(o.seed) && o.seed >= 0)) {
    throw new InvalidConfigError(`seed must be a non-negative integer, got ${o.seed}`);
  }
  return out;
}

/** Picks the backend and starts the engine for it. */
async function start(options: { backend?: BackendName; engine?: EngineName; threads?: number }): Promise<{ report: AdapterReport; choice: EngineChoice }> {
  const engine = parseEngine(options.engine ?? 'auto');
  const threads = parseThreads(options.threads);
  // The native engine has only the CPU backend, so with it 'auto' means that.
  const backend = engine === 'native' && (options.backend ?? 'auto') === 'auto' ? 'cpu' : parseBackend(options.backend ?? 'auto');
  const report = await resolveBackend(backend);
  const choice = await platform().engine(engine, report.backend, threads);
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
    readonly config: Record<string, unknown> & { model: Record<string, number | boolean> },
    /** The vat-core crate's version, for run.json and bug reports. */
    readonly coreVersion: string,
  ) {}

  static async create(options: TrainerOptions = {}): Promise<Trainer> {
    const config = JSON.stringify(coreConfig(options));
    const { report, choice } = await start(options);
    await coreCall(() => choice.bindings.parseConfig(config)); // fail on bad options before making a device
    const handle = await coreCall(() => choice.bindings.createTrainer(report.backend, config, choice.threads));
    if (report.backend === 'webgpu') report.description += ` [wgpu: ${handle.adapter}]`;
    return new Trainer(handle, report, JSON.parse(handle.configJson), choice.bindings.version());
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
      const out = { loss: e.loss, accuracy: e.accuracy, count: e.count, confusion: e.confusion };
      e.free?.();
      return out;
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
      const s = await h.importCheckpoint(bytes);
      return s ? JSON.parse(s) : null;
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
}

/**
 * Every intermediate of one step on given weights with injected randomness (parity checks), on
 * `backend` in the engine and thread count that `options` pick.
 */
export async function inspect(backend: ResolvedBackend, options: TrainerOptions, input: InspectInput): Promise<Inspection> {
  const { report, choice } = await start({ ...options, backend });
  const r = await coreCall(() =>
    choice.bindings.inspect(
      report.backend,
      choice.threads,
      JSON.stringify(coreConfig(options)),
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
  const out = { logits: r.logits, loss: r.loss, ce: r.ce, lds: r.lds, entropy: r.entropy, rAdv: (r.rAdv ?? r.r_adv)!, grads: r.grads, updated: r.updated };
  r.free?.();
  return out;
}
