// Single layers and losses by name, for the golden `op` cases: each takes and returns plain
// float32 arrays with shapes, NCHW and PyTorch layouts, so that any implementation with the same
// small interface (test/naive.ts, a Python script) can be held to the same cases.

import * as tf from '@tensorflow/tfjs';

import { conv2dValidNchw, denseOutIn, maxPool2x2Nchw } from './model.js';
import { ensureBackend } from './step.js';
import { crossEntropy, entropyWithLogits, klWithLogits, normalizePerSample } from './vat.js';

export interface Array32 {
  data: Float32Array;
  shape: number[];
}

export const OPS = [
  'conv2d_valid_nchw',
  'maxpool2x2_nchw',
  'dense_out_in',
  'kl_with_logits',
  'entropy_with_logits',
  'cross_entropy',
  'normalize_per_sample',
] as const;
export type OpName = (typeof OPS)[number];

/**
 * Inputs and outputs per op (names as in the case files):
 * - conv2d_valid_nchw: x [N,C,H,W], w [O,C,3,3], b [O] -> y [N,O,H-2,W-2] (no activation)
 * - maxpool2x2_nchw: x [N,C,H,W] -> y [N,C,floor(H/2),floor(W/2)]
 * - dense_out_in: x [N,I], w [O,I], b [O] -> y [N,O]
 * - kl_with_logits: p [N,K], q [N,K] -> value [] (mean_n KL(softmax p || softmax q)), grad_q [N,K]
 *   (d value / d q, p held constant as in LDS)
 * - entropy_with_logits: logits [N,K] -> value [], grad [N,K]
 * - cross_entropy: logits [N,K], labels [N] (class indices as floats) -> value [], grad [N,K]
 * - normalize_per_sample: d [N,...] -> y, same shape
 */
export async function runReferenceOp(op: OpName, inputs: Record<string, Array32>): Promise<Record<string, Array32>> {
  await ensureBackend();
  const t = (name: string) => {
    const a = inputs[name];
    if (!a) throw new Error(`op ${op} needs input '${name}'`);
    return tf.tensor(a.data, a.shape, 'float32');
  };
  const outs = tf.tidy((): Record<string, tf.Tensor> => {
    switch (op) {
      case 'conv2d_valid_nchw':
        return { y: conv2dValidNchw(t('x') as tf.Tensor4D, t('w') as tf.Tensor4D, t('b') as tf.Tensor1D) };
      case 'maxpool2x2_nchw':
        return { y: maxPool2x2Nchw(t('x') as tf.Tensor4D) };
      case 'dense_out_in':
        return { y: denseOutIn(t('x') as tf.Tensor2D, t('w') as tf.Tensor2D, t('b') as tf.Tensor1D) };
      case 'kl_with_logits': {
        const p = t('p') as tf.Tensor2D;
        const { value, grad } = tf.valueAndGrad((q: tf.Tensor) => klWithLogits(p, q as tf.Tensor2D))(t('q'));
        return { value, grad_q: grad };
      }
      case 'entropy_with_logits': {
        const { value, grad } = tf.valueAndGrad((l: tf.Tensor) => entropyWithLogits(l as tf.Tensor2D))(t('logits'));
        return { value, grad };
      }
      case 'cross_entropy': {
        const labels = t('labels') as tf.Tensor1D;
        const { value, grad } = tf.valueAndGrad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, labels))(t('logits'));
        return { value, grad };
      }
      case 'normalize_per_sample':
        return { y: normalizePerSample(t('d')) };
      default:
        throw new Error(`unknown op '${op as string}'`);
    }
  });
  const result: Record<string, Array32> = {};
  for (const [k, v] of Object.entries(outs)) {
    result[k] = { data: (await v.data()) as Float32Array, shape: v.shape };
    v.dispose();
  }
  return result;
}
