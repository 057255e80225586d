// The VAT regulariser (Miyato et al. 2018, TPAMI, arXiv 1704.03976), written from the paper:
//   LDS(x) = KL(p(y|x) || p(y|x + r_adv))                          (eq. 6-7, p held constant)
//   r_adv ~= eps * g / ||g||,  g = grad_r KL(p(y|x) || p(y|x + r)) at r = xi * d   (eq. 12-14)
// with d replaced by g at each power iteration.
//
// tfjs has no stop-gradient op. The constant p(y|x) is therefore always a tensor computed
// *outside* the closure handed to tf.grad / tf.valueAndGrads: the closure only differentiates
// with respect to its arguments, so a tensor made before it is a constant inside it.

import * as tf from '@tensorflow/tfjs';

import { forward, type Masks, type Params } from './model.js';

/** Mean over the batch of KL(softmax(p) || softmax(q)); gradients flow into whichever of p, q the caller differentiates. */
export function klWithLogits(pLogits: tf.Tensor2D, qLogits: tf.Tensor2D): tf.Scalar {
  const logP = tf.logSoftmax(pLogits);
  const logQ = tf.logSoftmax(qLogits);
  return tf.mean(tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1)) as tf.Scalar;
}

/** Mean over the batch of H(softmax(logits)) (the EntMin term, eq. 16). */
export function entropyWithLogits(logits: tf.Tensor2D): tf.Scalar {
  const logP = tf.logSoftmax(logits);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.exp(logP), logP), 1))) as tf.Scalar;
}

/** Mean over the batch of -sum(onehot * log_softmax(logits)). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const oneHot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/**
 * Scales each sample of d to unit L2 norm, in two steps as the official code does: divide by the
 * per-sample max |d| (floored at 1e-30) so tiny gradients do not underflow when squared in f32,
 * then by sqrt(sum of squares + 1e-6).
 */
export function normalizePerSample<T extends tf.Tensor>(d: T): T {
  const flat = tf.reshape(d, [d.shape[0]!, -1]);
  const scaled = tf.div(flat, tf.maximum(tf.max(tf.abs(flat), 1, true), 1e-30));
  const norm = tf.sqrt(tf.add(tf.sum(tf.square(scaled), 1, true), 1e-6));
  return tf.reshape(tf.div(scaled, norm), d.shape) as T;
}

export interface VatHyper {
  eps: number;
  xi: number;
  powerIterations: number;
}

/**
 * r_adv for inputs x from the initial direction d0. `params` are plain tensors and `clean` the
 * constant clean logits: tf.grad differentiates only with respect to the probe r.
 */
export function rAdv(params: Params, x: tf.Tensor4D, clean: tf.Tensor2D, d0: tf.Tensor4D, hyper: VatHyper, masks?: Masks): tf.Tensor4D {
  const klAt = tf.grad((r: tf.Tensor) => klWithLogits(clean, forward(params, tf.add(x, r) as tf.Tensor4D, masks)));
  let d = d0;
  for (let i = 0; i < hyper.powerIterations; i++) {
    d = klAt(tf.mul(normalizePerSample(d), hyper.xi)) as tf.Tensor4D;
  }
  return tf.mul(normalizePerSample(d), hyper.eps);
}
