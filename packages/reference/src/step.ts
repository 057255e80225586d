// One training step of the tfjs reference: CE + alpha * LDS (+ entropy), its gradients, and the
// optimiser update. The API mirrors @vat/core's `inspect` (same option names, defaults, input
// and output fields) without importing it, so the reference stays independent of the burn side.

import * as tf from '@tensorflow/tfjs';

import { flatFromParams, forward, type Masks, type Params, paramCount, paramsFromFlat, pooledSize } from './model.js';
import { OptimizerState } from './optim.js';
import { inspectSpec, type ModelSpec } from './spec.js';
import { crossEntropy, entropyWithLogits, klWithLogits, rAdv, type VatHyper } from './vat.js';

/** The option names and defaults of @vat/core's TrainerOptions that shape one step. */
export interface ReferenceOptions {
  imageSize?: number;
  convFilters?: number;
  hidden?: number;
  classes?: number;
  dropout?: boolean;
  vat?: boolean;
  eps?: number;
  xi?: number;
  powerIterations?: number;
  alpha?: number;
  entmin?: boolean;
  /** Weight of the entropy term. */
  entminWeight?: number;
  optimizer?: 'adam' | 'adadelta';
  rho?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Any other model, as a spec (README "Models"); the seed's CNN options above then do not apply. */
  modelSpec?: ModelSpec;
}

export type ResolvedOptions = Required<Omit<ReferenceOptions, 'modelSpec'>> & Pick<ReferenceOptions, 'modelSpec'>;

/** @vat/core's defaults (the seed experiment's settings). */
export const DEFAULTS: ResolvedOptions = {
  imageSize: 28,
  convFilters: 32,
  hidden: 128,
  classes: 10,
  dropout: false,
  vat: true,
  eps: 1,
  xi: 10,
  powerIterations: 1,
  alpha: 1,
  entmin: false,
  entminWeight: 1,
  optimizer: 'adadelta',
  rho: 0.95,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-7,
};

export function resolveOptions(o: ReferenceOptions): ResolvedOptions {
  const r = { ...DEFAULTS };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as Record<string, unknown>)[k] = v;
  return r;
}

/** Same fields as @vat/core's InspectInput. Arrays are flat, row-major, NCHW. */
export interface ReferenceInput {
  weights: Float32Array;
  x: Float32Array;
  y: Uint32Array;
  xUnlabeled?: Float32Array;
  d?: Float32Array;
  masksLabeled?: Float32Array;
  masksUnlabeled?: Float32Array;
  lr: number;
}

/** Same fields as @vat/core's Inspection. */
export interface ReferenceInspection {
  logits: Float32Array;
  loss: number;
  ce: number;
  lds: number;
  entropy: number;
  rAdv: Float32Array;
  grads: Float32Array;
  updated: Float32Array;
  /** x in evaluation mode on the given weights (no dropout or noise; batch norm's running statistics). */
  evalLogits: Float32Array;
}

/** The tfjs release the reference runs on (recorded in the golden cases). */
export const TFJS_VERSION: string = tf.version.tfjs;

export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

let backendReady: { name: string; ready: Promise<void> } | undefined;

/**
 * Selects a tfjs backend: 'cpu' (what the golden cases were made with) unless told otherwise.
 * The benchmark (packages/bench) asks for 'webgpu' or 'webgl' in a browser. Calls that ask for
 * the backend already selected share one initialisation.
 */
export function ensureBackend(name = 'cpu'): Promise<void> {
  if (backendReady?.name !== name) {
    backendReady = {
      name,
      ready: (async () => {
        if (!(await tf.setBackend(name))) throw new Error(`tfjs backend '${name}' is not available`);
        await tf.ready();
      })(),
    };
  }
  return backendReady.ready;
}

/** A step's random draws and data, as tensors. */
interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  xU?: tf.Tensor4D;
  d?: tf.Tensor4D;
  masksL?: Masks;
  masksU?: Masks;
}

function images(o: ResolvedOptions, flat: Float32Array, what: string): tf.Tensor4D {
  const px = o.imageSize * o.imageSize;
  if (flat.length === 0 || flat.length % px !== 0) {
    throw new InvalidInputError(`${what} must hold n * ${px} values, got ${flat.length}`);
  }
  return tf.tensor4d(flat, [flat.length / px, 1, o.imageSize, o.imageSize]);
}

function masks(o: ResolvedOptions, n: number, flat: Float32Array | undefined, what: string): Masks | undefined {
  if (!o.dropout) return undefined;
  const p = pooledSize(o);
  const nc = n * o.convFilters * p * p;
  const nd = n * o.hidden;
  if (!flat || flat.length !== nc + nd) {
    throw new InvalidInputError(`dropout is on, so ${what} must hold ${nc + nd} values, got ${flat?.length ?? 'none'}`);
  }
  return {
    conv: tf.tensor4d(flat.subarray(0, nc), [n, o.convFilters, p, p]),
    dense: tf.tensor2d(flat.subarray(nc), [n, o.hidden]),
  };
}

function batchTensors(o: ResolvedOptions, input: Omit<ReferenceInput, 'weights' | 'lr'>): Batch {
  const x = images(o, input.x, 'x');
  const n = x.shape[0];
  if (input.y.length !== n) throw new InvalidInputError(`${input.y.length} labels for ${n} images`);
  const bad = input.y.findIndex((v) => v >= o.classes);
  if (bad >= 0) throw new InvalidInputError(`label ${input.y[bad]} at index ${bad} is outside 0..${o.classes}`);
  const y = tf.tensor1d(Array.from(input.y), 'int32');
  const xU = input.xUnlabeled ? images(o, input.xUnlabeled, 'xUnlabeled') : undefined;
  const nV = xU ? xU.shape[0] : n;
  let d: tf.Tensor4D | undefined;
  if (o.vat) {
    if (!input.d || input.d.length !== nV * o.imageSize * o.imageSize) {
      throw new InvalidInputError(`VAT is on, so d must be shaped like the VAT batch (${nV * o.imageSize * o.imageSize} values)`);
    }
    d = images(o, input.d, 'd');
  }
  return {
    x,
    y,
    xU,
    d,
    masksL: masks(o, n, input.masksLabeled, 'masksLabeled'),
    masksU: xU ? masks(o, nV, input.masksUnlabeled, 'masksUnlabeled') : undefined,
  };
}

/** Everything one step computes before the optimiser runs. All tensors are kept; the caller disposes them. */
interface StepTensors {
  logits: tf.Tensor2D;
  loss: tf.Scalar;
  ce: tf.Scalar;
  lds: tf.Scalar;
  entropy: tf.Scalar;
  rAdv?: tf.Tensor4D;
  grads: tf.Tensor[];
}

/**
 * Miyato et al. 2018, eq. 9 (+ eq. 16 with entmin). Supervised (no xU): VAT runs on the labeled
 * batch and its constant p(y|x) is the labeled clean pass. Semi-supervised: CE on x, VAT and
 * EntMin on xU with xU's masks. Each batch's masks are shared by its clean, probe and adversarial
 * passes.
 */
function forwardBackward(o: ResolvedOptions, params: Params, b: Batch): StepTensors {
  return tf.tidy(() => {
    const semi = b.xU !== undefined;
    const xV = semi ? b.xU! : b.x;
    const masksV = semi ? b.masksU : b.masksL;
    const vatHyper: VatHyper = o;

    // Constants for the VAT term, computed before (outside) any gradient closure: this is the
    // stop-gradient on the clean prediction.
    const logits = forward(params, b.x, b.masksL);
    const clean = semi ? forward(params, xV, masksV) : logits;
    const r = o.vat ? rAdv(params, xV, clean, b.d!, vatHyper, masksV) : undefined;

    // The three terms as functions of the (differentiated) parameters.
    const ceOf = (ps: Params) => crossEntropy(forward(ps, b.x, b.masksL), b.y);
    const ldsOf = (ps: Params) => klWithLogits(clean, forward(ps, tf.add(xV, r!) as tf.Tensor4D, masksV));
    const entropyOf = (ps: Params) => entropyWithLogits(forward(ps, xV, masksV));
    // The LDS value is kept from inside the closure (tf.keep survives its tidy), rather than
    // recomputed afterwards with one more adversarial forward pass.
    let lds: tf.Scalar = tf.scalar(0);
    const lossOf = (...ps: tf.Tensor[]): tf.Scalar => {
      let loss = ceOf(ps);
      if (o.vat) {
        lds = tf.keep(ldsOf(ps));
        loss = tf.add(loss, tf.mul(lds, o.alpha));
      }
      if (o.entmin) loss = tf.add(loss, tf.mul(entropyOf(ps), o.entminWeight));
      return loss;
    };
    const { value, grads } = tf.valueAndGrads(lossOf)(params);
    return {
      logits,
      loss: value,
      ce: crossEntropy(logits, b.y),
      lds,
      entropy: o.entmin ? entropyWithLogits(clean) : tf.scalar(0),
      rAdv: r,
      grads,
    };
  });
}

function checkWeights(o: ResolvedOptions, w: Float32Array): void {
  const n = paramCount(o);
  if (w.length !== n) throw new InvalidInputError(`weights must hold ${n} values (the eight parameters concatenated), got ${w.length}`);
}

function disposeBatch(b: Batch): void {
  tf.dispose([b.x, b.y, b.xU, b.d, b.masksL?.conv, b.masksL?.dense, b.masksU?.conv, b.masksU?.dense].filter((t) => t !== undefined));
}

async function scalar(t: tf.Scalar): Promise<number> {
  return (await t.data())[0]!;
}

/** tfjs counterpart of @vat/core's `inspect`: every output of one step on given weights with injected randomness. */
export async function inspectReference(options: ReferenceOptions, input: ReferenceInput): Promise<ReferenceInspection> {
  await ensureBackend();
  const o = resolveOptions(options);
  if (o.modelSpec) return inspectSpec(o.modelSpec, o, input);
  checkWeights(o, input.weights);
  const params = paramsFromFlat(o, input.weights);
  const b = batchTensors(o, input);
  const out = forwardBackward(o, params, b);
  const evalLogits = forward(params, b.x);
  const opt = new OptimizerState(o, params);
  const updated = opt.step(params, out.grads, input.lr);
  try {
    return {
      logits: (await out.logits.data()) as Float32Array,
      loss: await scalar(out.loss),
      ce: await scalar(out.ce),
      lds: await scalar(out.lds),
      entropy: await scalar(out.entropy),
      rAdv: out.rAdv ? ((await out.rAdv.data()) as Float32Array) : new Float32Array(0),
      grads: await flatFromParams(out.grads),
      updated: await flatFromParams(updated),
      evalLogits: (await evalLogits.data()) as Float32Array,
    };
  } finally {
    evalLogits.dispose();
    opt.dispose();
    disposeBatch(b);
    tf.dispose([...params, ...updated, ...out.grads, out.logits, out.loss, out.ce, out.lds, out.entropy]);
    if (out.rAdv) out.rAdv.dispose();
  }
}

/** One step's data and injected draws for ReferenceTrainer (arrays as in ReferenceInput). */
export type ReferenceBatch = Omit<ReferenceInput, 'weights' | 'lr'>;

export interface ReferenceStepStats {
  loss: number;
  ce: number;
  lds: number;
  entropy: number;
}

/** A stateful training loop: the optimiser state carries over between steps, as in @vat/core's Trainer. */
export class ReferenceTrainer {
  private params: Params;
  private readonly opt: OptimizerState;
  readonly options: ResolvedOptions;

  private constructor(options: ReferenceOptions, weights: Float32Array) {
    this.options = resolveOptions(options);
    checkWeights(this.options, weights);
    this.params = paramsFromFlat(this.options, weights);
    this.opt = new OptimizerState(this.options, this.params);
  }

  /** `backend`: the tfjs backend to train on ('cpu', or 'webgpu' / 'webgl' in a browser). */
  static async create(options: ReferenceOptions, weights: Float32Array, backend = 'cpu'): Promise<ReferenceTrainer> {
    await ensureBackend(backend);
    return new ReferenceTrainer(options, weights);
  }

  get step(): number {
    return this.opt.t;
  }

  async trainStep(batch: ReferenceBatch, lr: number): Promise<ReferenceStepStats> {
    const b = batchTensors(this.options, batch);
    const out = forwardBackward(this.options, this.params, b);
    try {
      const stats = { loss: await scalar(out.loss), ce: await scalar(out.ce), lds: await scalar(out.lds), entropy: await scalar(out.entropy) };
      const next = this.opt.step(this.params, out.grads, lr);
      tf.dispose(this.params);
      this.params = next;
      return stats;
    } finally {
      disposeBatch(b);
      tf.dispose([...out.grads, out.logits, out.loss, out.ce, out.lds, out.entropy]);
      if (out.rAdv) out.rAdv.dispose();
    }
  }

  async weights(): Promise<Float32Array> {
    return flatFromParams(this.params);
  }

  dispose(): void {
    tf.dispose(this.params);
    this.opt.dispose();
  }
}
