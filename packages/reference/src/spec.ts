// Model specs in TensorFlow.js, written from the README's definition of each layer ("Models",
// "The weights file") rather than from the Rust engine, so that the two can catch each other's
// mistakes: one VAT step of any spec, with batch norm as the paper's code has it.
//
// Layout boundary, as in model.ts: weights, x, d, draws, r_adv and gradients cross in PyTorch's
// layouts (NCHW activations, [out, in, k, k] kernels, [out, in] dense weights); inside, feature
// maps are NHWC for tfjs's conv2d and maxPool. The transposes happen inside `specForward`, on
// tensors that are differentiated through.

import * as tf from '@tensorflow/tfjs';

import { concatFloat32 } from './model.js';
import { OptimizerState } from './optim.js';
import type { ReferenceInput, ReferenceInspection, ResolvedOptions } from './step.js';
import { crossEntropy, entropyWithLogits, klWithLogits, normalizePerSample } from './vat.js';

export type LayerSpec =
  | { type: 'conv'; filters: number; kernel: number; stride?: number; padding?: 'valid' | 'same'; bias?: boolean }
  | { type: 'maxPool'; size: number; stride?: number }
  | { type: 'globalAvgPool' }
  | { type: 'dense'; units: number; bias?: boolean }
  | { type: 'relu' }
  | { type: 'leakyRelu'; slope?: number }
  | { type: 'dropout'; rate: number }
  | { type: 'batchNorm'; momentum?: number; eps?: number }
  | { type: 'gaussianNoise'; std: number };

export interface ModelSpec {
  input: [number, number, number];
  classes: number;
  layers: LayerSpec[];
}

/** A value's shape per example: a feature map [c, h, w] or a flat vector [n]. */
type Shape = [number, number, number] | [number];

export interface SpecTensor {
  name: string;
  shape: number[];
  /** Batch norm's running statistics: not trained. */
  buffer: boolean;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** The shape after each layer (README "Models": same pads to ceil(side / stride); pools have no padding). */
export function specShapes(spec: ModelSpec): Shape[] {
  let s: Shape = spec.input;
  const out: Shape[] = [];
  for (const l of spec.layers) {
    if (l.type === 'conv') {
      const [, h, w] = s as [number, number, number];
      const st = l.stride ?? 1;
      const side = (n: number) => (l.padding === 'same' ? Math.ceil(n / st) : Math.floor((n - l.kernel) / st) + 1);
      s = [l.filters, side(h), side(w)];
    } else if (l.type === 'maxPool') {
      const [c, h, w] = s as [number, number, number];
      const st = l.stride ?? l.size;
      s = [c, Math.floor((h - l.size) / st) + 1, Math.floor((w - l.size) / st) + 1];
    } else if (l.type === 'globalAvgPool') s = [s[0]];
    else if (l.type === 'dense') s = [l.units];
    out.push(s);
  }
  return out;
}

/** Every tensor of the model in the weights' order: per layer weight, bias, then batch norm's running mean and variance. */
export function specTensors(spec: ModelSpec): SpecTensor[] {
  const shapes = specShapes(spec);
  const count = { conv: 0, fc: 0, bn: 0 };
  const out: SpecTensor[] = [];
  let input: Shape = spec.input;
  spec.layers.forEach((l, i) => {
    if (l.type === 'conv') {
      const p = `conv${++count.conv}`;
      out.push({ name: `${p}.weight`, shape: [l.filters, input[0], l.kernel, l.kernel], buffer: false });
      if (l.bias ?? true) out.push({ name: `${p}.bias`, shape: [l.filters], buffer: false });
    } else if (l.type === 'dense') {
      const p = `fc${++count.fc}`;
      out.push({ name: `${p}.weight`, shape: [l.units, numel(input)], buffer: false });
      if (l.bias ?? true) out.push({ name: `${p}.bias`, shape: [l.units], buffer: false });
    } else if (l.type === 'batchNorm') {
      const p = `bn${++count.bn}`;
      const c = input[0];
      out.push(
        { name: `${p}.weight`, shape: [c], buffer: false },
        { name: `${p}.bias`, shape: [c], buffer: false },
        { name: `${p}.running_mean`, shape: [c], buffer: true },
        { name: `${p}.running_var`, shape: [c], buffer: true },
      );
    }
    input = shapes[i]!;
  });
  return out;
}

/** Values per example of each dropout and noise layer's draws, in layer order. */
export function specDrawLengths(spec: ModelSpec): number[] {
  const shapes = specShapes(spec);
  return spec.layers.flatMap((l, i) => (l.type === 'dropout' || l.type === 'gaussianNoise' ? [numel(shapes[i]!)] : []));
}

/** One pass's result: the logits, and (training) each batch norm layer's batch mean and biased variance with its row count. */
interface Pass {
  logits: tf.Tensor2D;
  stats: { mean: tf.Tensor1D; variance: tf.Tensor1D; rows: number }[];
}

/**
 * The forward pass. x NCHW [n, c, h, w]; `draws` NCHW per stochastic layer (training only).
 * Training: batch norm on the batch's statistics, dropout and noise on; evaluation: batch norm on
 * the running statistics, dropout and noise off.
 */
export function specForward(spec: ModelSpec, params: tf.Tensor[], x: tf.Tensor4D, train: boolean, draws: tf.Tensor[] = []): Pass {
  let h: tf.Tensor = tf.transpose(x, [0, 2, 3, 1]);
  let at = 0;
  let drawAt = 0;
  const next = () => params[at++]!;
  const stats: Pass['stats'] = [];
  /** A draw (NCHW) in h's layout. */
  const drawFor = (d: tf.Tensor) => (h.rank === 4 ? tf.transpose(d, [0, 2, 3, 1]) : d);
  for (const l of spec.layers) {
    switch (l.type) {
      case 'conv': {
        const w = next() as tf.Tensor4D;
        h = tf.conv2d(h as tf.Tensor4D, tf.transpose(w, [2, 3, 1, 0]), l.stride ?? 1, l.padding ?? 'valid');
        if (l.bias ?? true) h = tf.add(h, next());
        break;
      }
      case 'maxPool':
        h = tf.maxPool(h as tf.Tensor4D, l.size, l.stride ?? l.size, 'valid');
        break;
      case 'globalAvgPool':
        h = tf.mean(h, [1, 2]);
        break;
      case 'dense': {
        // A feature map flattens in (channel, row, column) order, as torch.flatten(x, 1) on NCHW.
        const flat = h.rank === 4 ? tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [h.shape[0]!, -1]) : h;
        h = tf.matMul(flat as tf.Tensor2D, next() as tf.Tensor2D, false, true);
        if (l.bias ?? true) h = tf.add(h, next());
        break;
      }
      case 'relu':
        h = tf.relu(h);
        break;
      case 'leakyRelu':
        h = tf.leakyRelu(h, l.slope ?? 0.1);
        break;
      case 'dropout':
        if (train) h = tf.mul(h, drawFor(draws[drawAt]!));
        if (train || draws.length > 0) drawAt++;
        break;
      case 'gaussianNoise':
        if (train) h = tf.add(h, tf.mul(drawFor(draws[drawAt]!), l.std));
        if (train || draws.length > 0) drawAt++;
        break;
      case 'batchNorm': {
        const [gamma, beta, mean, variance] = [next(), next(), next(), next()];
        const eps = l.eps ?? 1e-6;
        const axes = h.rank === 4 ? [0, 1, 2] : [0];
        if (train) {
          const m = tf.moments(h, axes);
          stats.push({ mean: m.mean as tf.Tensor1D, variance: m.variance as tf.Tensor1D, rows: h.size / h.shape[h.rank - 1]! });
          h = tf.add(tf.mul(tf.div(tf.sub(h, m.mean), tf.sqrt(tf.add(m.variance, eps))), gamma), beta);
        } else {
          h = tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
        }
        break;
      }
    }
  }
  return { logits: h as tf.Tensor2D, stats };
}

class SpecInputError extends Error {
  override name = 'InvalidInputError';
}

/** Splits flat per-layer draws (NCHW each) for `n` examples into tensors shaped [n, ...layer output]. */
function drawTensors(spec: ModelSpec, n: number, flat: Float32Array | undefined, what: string): tf.Tensor[] {
  const shapes = specShapes(spec).filter((_, i) => ['dropout', 'gaussianNoise'].includes(spec.layers[i]!.type));
  const total = shapes.reduce((s, sh) => s + n * numel(sh), 0);
  if (total === 0) return [];
  if (!flat || flat.length !== total) throw new SpecInputError(`${what} must hold ${total} values, got ${flat?.length ?? 'none'}`);
  let at = 0;
  return shapes.map((sh) => {
    const t = tf.tensor(flat.subarray(at, at + n * numel(sh)), [n, ...sh]);
    at += n * numel(sh);
    return t;
  });
}

/**
 * @vat/core's `inspect` for a spec model: Miyato et al. 2018 eq. 9 (+ eq. 16), every pass in
 * training mode on its batch's statistics; the labeled clean pass alone moves the running
 * statistics (in `updated`); `evalLogits` is x in evaluation mode on the given weights.
 */
export async function inspectSpec(spec: ModelSpec, o: ResolvedOptions, input: ReferenceInput): Promise<ReferenceInspection> {
  const tensors = specTensors(spec);
  const want = tensors.reduce((s, t) => s + numel(t.shape), 0);
  if (input.weights.length !== want) throw new SpecInputError(`weights must hold ${want} values, got ${input.weights.length}`);
  const px = numel(spec.input);
  const images = (flat: Float32Array) => tf.tensor4d(flat, [flat.length / px, ...spec.input]);
  let at = 0;
  const params = tensors.map((t) => {
    const v = tf.tensor(input.weights.subarray(at, at + numel(t.shape)), t.shape);
    at += numel(t.shape);
    return v;
  });
  const trainable = tensors.flatMap((t, i) => (t.buffer ? [] : [i]));
  const x = images(input.x);
  const n = x.shape[0];
  const y = tf.tensor1d(Array.from(input.y), 'int32');
  const xU = input.xUnlabeled ? images(input.xUnlabeled) : undefined;
  const drawsL = drawTensors(spec, n, input.masksLabeled, 'masksLabeled');
  const drawsU = xU ? drawTensors(spec, xU.shape[0], input.masksUnlabeled, 'masksUnlabeled') : drawsL;
  const xV = xU ?? x;
  const d = o.vat ? images(input.d!) : undefined;

  const out = tf.tidy(() => {
    const labeled = specForward(spec, params, x, true, drawsL);
    const clean = xU ? specForward(spec, params, xV, true, drawsU).logits : labeled.logits;
    let r: tf.Tensor4D | undefined;
    if (o.vat) {
      const klAt = tf.grad((probe: tf.Tensor) => klWithLogits(clean, specForward(spec, params, tf.add(xV, probe) as tf.Tensor4D, true, drawsU).logits));
      let dir = d!;
      for (let i = 0; i < o.powerIterations; i++) dir = klAt(tf.mul(normalizePerSample(dir), o.xi)) as tf.Tensor4D;
      r = tf.mul(normalizePerSample(dir), o.eps) as tf.Tensor4D;
    }
    const withTrained = (ps: tf.Tensor[]) => {
      const all = [...params];
      trainable.forEach((idx, k) => {
        all[idx] = ps[k]!;
      });
      return all;
    };
    let lds: tf.Scalar = tf.scalar(0);
    const lossOf = (...ps: tf.Tensor[]): tf.Scalar => {
      const all = withTrained(ps);
      let loss = crossEntropy(specForward(spec, all, x, true, drawsL).logits, y);
      if (o.vat) {
        lds = tf.keep(klWithLogits(clean, specForward(spec, all, tf.add(xV, r!) as tf.Tensor4D, true, drawsU).logits));
        loss = tf.add(loss, tf.mul(lds, o.alpha));
      }
      if (o.entmin) loss = tf.add(loss, tf.mul(entropyWithLogits(specForward(spec, all, xV, true, drawsU).logits), o.entminWeight));
      return loss;
    };
    const { value, grads } = tf.valueAndGrads(lossOf)(trainable.map((i) => params[i]!));
    const allGrads = params.map((p) => tf.zerosLike(p));
    trainable.forEach((idx, k) => {
      allGrads[idx] = grads[k]!;
    });
    // The labeled clean pass's statistics move the running ones (unbiased variance).
    const moved = [...params];
    let bn = 0;
    tensors.forEach((t, i) => {
      if (!t.name.endsWith('.running_mean')) return;
      const layer = spec.layers.filter((l) => l.type === 'batchNorm')[bn]! as { momentum?: number };
      const m = layer.momentum ?? 0.01;
      const s = labeled.stats[bn++]!;
      moved[i] = tf.add(tf.mul(params[i]!, 1 - m), tf.mul(s.mean, m));
      moved[i + 1] = tf.add(tf.mul(params[i + 1]!, 1 - m), tf.mul(s.variance, (m * s.rows) / Math.max(s.rows - 1, 1)));
    });
    return {
      logits: labeled.logits,
      loss: value,
      ce: crossEntropy(labeled.logits, y),
      lds,
      entropy: o.entmin ? entropyWithLogits(clean) : tf.scalar(0),
      rAdv: r,
      grads: allGrads,
      moved,
      evalLogits: specForward(spec, params, x, false).logits,
    };
  });
  const opt = new OptimizerState(o, params);
  const stepped = opt.step(params, out.grads, input.lr);
  // The optimiser leaves the buffers (zero gradients) as they were; the moved statistics replace them.
  const updated = stepped.map((p, i) => (tensors[i]!.buffer ? out.moved[i]! : p));
  const data = async (ts: tf.Tensor[]) => concatFloat32(await Promise.all(ts.map((t) => t.data() as Promise<Float32Array>)));
  const num = async (t: tf.Scalar) => (await t.data())[0]!;
  try {
    return {
      logits: (await out.logits.data()) as Float32Array,
      loss: await num(out.loss),
      ce: await num(out.ce),
      lds: await num(out.lds),
      entropy: await num(out.entropy),
      rAdv: out.rAdv ? ((await out.rAdv.data()) as Float32Array) : new Float32Array(0),
      grads: await data(out.grads),
      updated: await data(updated),
      evalLogits: (await out.evalLogits.data()) as Float32Array,
    };
  } finally {
    opt.dispose();
    tf.dispose([...params, ...stepped, ...out.grads, ...out.moved, x, y, xU, d, ...drawsL, ...(xU ? drawsU : [])].filter((t) => t !== undefined));
    tf.dispose([out.logits, out.loss, out.ce, out.lds, out.entropy, out.evalLogits]);
    if (out.rAdv) out.rAdv.dispose();
  }
}
