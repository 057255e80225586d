// The seed CNN in TensorFlow.js, written from the model's description (README, "The weights file")
// rather than from the burn code, so that the two can catch each other's mistakes.
//
// Layout boundary. The arrays that cross the API (weights, x, d, masks, r_adv, gradients) use
// burn's and PyTorch's layouts: activations NCHW, conv kernels [out, in, kh, kw], dense weights
// [out, in]. tfjs convolutions and pooling are NHWC with kernels [kh, kw, in, out]. Every
// transpose between the two happens inside `forward`, on tensors that are differentiated through,
// so gradients come back in the PyTorch layout with no conversion afterwards:
//   x        [N, 1, S, S]      -> transpose [0, 2, 3, 1] -> NHWC [N, S, S, 1]
//   convK.w  [out, in, 3, 3]   -> transpose [2, 3, 1, 0] -> [3, 3, in, out]
//   pooled   NHWC [N, P, P, F] -> transpose [0, 3, 1, 2] -> NCHW [N, F, P, P]
// The pooled map goes back to NCHW before the dropout mask and the flatten, so the mask and
// fc1's input columns are in (channel, row, column) order, as `torch.flatten(x, 1)` gives.

import * as tf from '@tensorflow/tfjs';

/** The model's shape. Names and defaults are those of @vat/core's ModelOptions. */
export interface ModelShape {
  imageSize: number;
  convFilters: number;
  hidden: number;
  classes: number;
}

export const PARAM_NAMES = ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'] as const;

/** Side of the map after two valid 3x3 convolutions and a 2x2, stride-2 max pool (floor). */
export function pooledSize(m: ModelShape): number {
  return Math.floor((m.imageSize - 4) / 2);
}

/** Shapes of the eight parameters in PARAM_NAMES order, PyTorch layouts. */
export function paramShapes(m: ModelShape): number[][] {
  const f = m.convFilters;
  const p = pooledSize(m);
  return [[f, 1, 3, 3], [f], [f, f, 3, 3], [f], [m.hidden, f * p * p], [m.hidden], [m.classes, m.hidden], [m.classes]];
}

export function paramCount(m: ModelShape): number {
  return paramShapes(m).reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);
}

/** The eight parameter tensors, PyTorch layouts, in PARAM_NAMES order. */
export type Params = tf.Tensor[];

/** Dropout masks, already scaled by 1/keep. conv: NCHW [n, F, P, P]; dense: [n, H]. */
export interface Masks {
  conv: tf.Tensor4D;
  dense: tf.Tensor2D;
}

/** Splits the flat concatenation of the weights into the eight tensors. */
export function paramsFromFlat(m: ModelShape, flat: Float32Array): Params {
  const out: tf.Tensor[] = [];
  let at = 0;
  for (const shape of paramShapes(m)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out.push(tf.tensor(flat.subarray(at, at + n), shape, 'float32'));
    at += n;
  }
  return out;
}

/** Concatenates eight tensors (parameters or their gradients) into one flat array. */
export async function flatFromParams(params: tf.Tensor[]): Promise<Float32Array> {
  return concatFloat32(await Promise.all(params.map((p) => p.data() as Promise<Float32Array>)));
}

/** The arrays one after another, in one new array. */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- Single layers, NCHW in and out (the golden `op` cases call these directly) ----

/** Valid 3x3 convolution with bias. x [N, C, H, W], w [O, C, 3, 3], b [O] -> [N, O, H-2, W-2]. */
export function conv2dValidNchw(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D): tf.Tensor4D {
  const y = tf.conv2d(tf.transpose(x, [0, 2, 3, 1]), tf.transpose(w, [2, 3, 1, 0]), 1, 'valid');
  return tf.transpose(tf.add(y, b) as tf.Tensor4D, [0, 3, 1, 2]);
}

/** 2x2 max pool, stride 2, odd edges dropped (floor). [N, C, H, W] -> [N, C, H/2, W/2]. */
export function maxPool2x2Nchw(x: tf.Tensor4D): tf.Tensor4D {
  return tf.transpose(tf.maxPool(tf.transpose(x, [0, 2, 3, 1]), 2, 2, 'valid'), [0, 3, 1, 2]);
}

/** Dense layer with a PyTorch [out, in] weight: x [N, in] -> [N, out]. */
export function denseOutIn(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.add(tf.matMul(x, w, false, true), b);
}

/**
 * The forward pass, returning logits.
 *
 * x: NCHW [N, 1, S, S] (pixel / 255) -> [N, classes]. The NHWC section is the two convolutions
 * and the pool; everything the caller sees is NCHW.
 */
export function forward(params: Params, x: tf.Tensor4D, masks?: Masks): tf.Tensor2D {
  const [c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b] = params as [
    tf.Tensor4D,
    tf.Tensor1D,
    tf.Tensor4D,
    tf.Tensor1D,
    tf.Tensor2D,
    tf.Tensor1D,
    tf.Tensor2D,
    tf.Tensor1D,
  ];
  const n = x.shape[0];
  const nhwc = tf.transpose(x, [0, 2, 3, 1]);
  let h = tf.relu(tf.add(tf.conv2d(nhwc, tf.transpose(c1w, [2, 3, 1, 0]), 1, 'valid'), c1b)) as tf.Tensor4D;
  h = tf.relu(tf.add(tf.conv2d(h, tf.transpose(c2w, [2, 3, 1, 0]), 1, 'valid'), c2b)) as tf.Tensor4D;
  let pooled = tf.transpose(tf.maxPool(h, 2, 2, 'valid'), [0, 3, 1, 2]) as tf.Tensor4D;
  if (masks) pooled = tf.mul(pooled, masks.conv);
  const flat = tf.reshape(pooled, [n, -1]) as tf.Tensor2D;
  let hidden = tf.relu(denseOutIn(flat, f1w, f1b));
  if (masks) hidden = tf.mul(hidden, masks.dense);
  return denseOutIn(hidden, f2w, f2b);
}
