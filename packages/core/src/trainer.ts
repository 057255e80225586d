// The handle class over the wasm core: `await Trainer.create(options)`, async methods that take
// and return typed arrays or plain objects, and `dispose()`.

import { loadWasm, type VatTrainer } from '@vat/wasm';

import { type AdapterReport, type BackendName, parseBackend, resolveBackend } from './backend.js';
import { InvalidConfigError, wasmCall } from './errors.js';

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

export class Trainer {
  private disposed = false;

  private constructor(
    private readonly handle: VatTrainer,
    /** The backend actually used, with the adapter. */
    readonly adapter: AdapterReport,
    /** The complete core config, defaults filled in. */
    readonly config: Record<string, unknown> & { model: Record<string, number | boolean> },
  ) {}

  static async create(options: TrainerOptions = {}): Promise<Trainer> {
    const config = JSON.stringify(coreConfig(options));
    const backend = parseBackend(options.backend ?? 'auto');
    const wasm = await loadWasm();
    await wasmCall(() => wasm.parseConfig(config)); // fail on bad options before touching a GPU
    const report = await resolveBackend(backend);
    const handle = await wasmCall(() => wasm.createTrainer(report.backend, config));
    if (report.backend === 'webgpu') report.description += ` [wgpu: ${handle.adapter}]`;
    return new Trainer(handle, report, JSON.parse(handle.configJson));
  }

  private live(): VatTrainer {
    if (this.disposed) throw new InvalidConfigError('this Trainer was disposed; create a new one');
    return this.handle;
  }

  get backend(): 'cpu' | 'webgpu' {
    return this.adapter.backend;
  }

  /** Optimiser steps taken (restored by importCheckpoint). */
  get step(): number {
    return this.live().step;
  }

  /** One optimiser step. x: n*h*w pixels in [0,1]; y: n labels; xUnlabeled: the semi-supervised VAT batch. */
  async trainStep(x: Float32Array, y: Uint32Array, lr: number, xUnlabeled?: Float32Array): Promise<StepStats> {
    const h = this.live();
    const s = await wasmCall(() => h.trainStep(x, y, xUnlabeled, lr));
    const out = { loss: s.loss, ce: s.ce, lds: s.lds, entropy: s.entropy, correct: s.correct, batch: s.batch };
    s.free();
    return out;
  }

  async evaluate(x: Float32Array, y: Uint32Array, batchSize = 250): Promise<EvalStats> {
    const h = this.live();
    const e = await wasmCall(() => h.evaluate(x, y, batchSize));
    const out = { loss: e.loss, accuracy: e.accuracy, count: e.count, confusion: e.confusion };
    e.free();
    return out;
  }

  /** Class probabilities, row-major [n, classes]. */
  async predict(x: Float32Array): Promise<Float32Array> {
    const h = this.live();
    return wasmCall(() => h.predict(x));
  }

  /** The weights as a safetensors file. */
  async exportWeights(): Promise<Uint8Array> {
    const h = this.live();
    return wasmCall(() => h.exportWeights());
  }

  async importWeights(bytes: Uint8Array): Promise<void> {
    const h = this.live();
    await wasmCall(() => h.importWeights(bytes));
  }

  /** Model, optimiser state, RNG state and `loopState` (any JSON value) in one safetensors file. */
  async exportCheckpoint(loopState: unknown = null): Promise<Uint8Array> {
    const h = this.live();
    return wasmCall(() => h.exportCheckpoint(JSON.stringify(loopState)));
  }

  /** Restores a checkpoint and returns the loopState stored with it. */
  async importCheckpoint(bytes: Uint8Array): Promise<unknown> {
    const h = this.live();
    const s = await wasmCall(() => h.importCheckpoint(bytes));
    return s ? JSON.parse(s) : null;
  }

  /** Frees the wasm memory behind this trainer. Further calls throw. */
  dispose(): void {
    if (!this.disposed) {
      this.disposed = true;
      this.handle.free();
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

/** Every intermediate of one step on given weights with injected randomness (parity checks). */
export async function inspect(backend: 'cpu' | 'webgpu', options: TrainerOptions, input: InspectInput): Promise<Inspection> {
  const wasm = await loadWasm();
  if (backend === 'webgpu') await resolveBackend('webgpu');
  const r = await wasmCall(() =>
    wasm.inspect(
      backend,
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
  const out = { logits: r.logits, loss: r.loss, ce: r.ce, lds: r.lds, entropy: r.entropy, rAdv: r.r_adv, grads: r.grads, updated: r.updated };
  r.free();
  return out;
}
