// Checks of the tfjs reference on its own, independent of burn and of the golden files.

import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { ensureBackend, inspectReference, InvalidInputError, OptimizerState, paramCount } from '../src/index.js';

import { mulberry32 } from './helpers.js';

const TINY = { imageSize: 8, convFilters: 3, hidden: 5, classes: 4 };
const OPT = { rho: 0.95, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

function tensors(r: () => number, shapes: number[][], scale: number): tf.Tensor[] {
  return shapes.map((s) =>
    tf.tensor(
      Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * scale),
      s,
    ),
  );
}

describe('optimisers', () => {
  it('adam_matches_tf_train_adam_over_three_steps', async () => {
    await ensureBackend();
    const r = mulberry32(3);
    const shapes = [[4, 3], [5]];
    const start = tensors(r, shapes, 1);
    const gradSteps = [0, 1, 2].map(() => tensors(r, shapes, 0.1));

    const ours = new OptimizerState({ optimizer: 'adam', ...OPT }, start);
    let p = start;
    for (const g of gradSteps) p = ours.step(p, g, 0.01);

    const vars = start.map((t, i) => tf.variable(t.clone(), true, `adam_check_${i}`));
    const theirs = tf.train.adam(0.01, OPT.beta1, OPT.beta2, OPT.epsilon);
    for (const g of gradSteps) theirs.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: g[i]! })));

    for (let i = 0; i < vars.length; i++) {
      const a = await p[i]!.data();
      const b = await vars[i]!.data();
      // tf.train.adam accumulates beta^t in float32; ours takes the power in float64.
      a.forEach((v, k) => {
        expect(v).toBeCloseTo(b[k]!, 6);
      });
    }
    ours.dispose();
    theirs.dispose();
    tf.dispose([...vars, ...p, ...start, ...gradSteps.flat()]);
  });

  it('adadelta_first_step_is_keras_form_with_updated_accumulator', async () => {
    // From zero state: E[g^2] = (1-rho) g^2, update = g sqrt(eps) / sqrt(E[g^2] + eps).
    // (tfjs 4.22's tf.train.adadelta divides by the accumulator from before this step's g, which
    // makes its first update g itself; Keras and Zeiler's Algorithm 1 do not.)
    await ensureBackend();
    const g = [0.5, -1e-3, 2e-5, 0];
    const p = tf.tensor1d([1, 1, 1, 1]);
    const opt = new OptimizerState({ optimizer: 'adadelta', ...OPT }, [p]);
    const [next] = opt.step([p], [tf.tensor1d(g)], 1.0);
    const got = await next!.data();
    g.forEach((gi, i) => {
      const update = (gi * Math.sqrt(OPT.epsilon)) / Math.sqrt((1 - OPT.rho) * gi * gi + OPT.epsilon);
      expect(got[i]).toBeCloseTo(1 - update, 6);
    });
    opt.dispose();
    tf.dispose([p, next!]);
  });
});

describe('inspectReference', () => {
  const r = mulberry32(9);
  const n = 3;
  const weights = Float32Array.from({ length: paramCount(TINY) }, () => (r() * 2 - 1) * 0.4);
  const x = Float32Array.from({ length: n * 64 }, () => r());
  const y = Uint32Array.from([0, 1, 3]);
  const d = Float32Array.from({ length: n * 64 }, () => r() - 0.5);

  it('r_adv_has_norm_eps_per_sample', async () => {
    const out = await inspectReference({ ...TINY, eps: 2.5 }, { weights, x, y, d, lr: 0.1 });
    for (let s = 0; s < n; s++) expect(Math.hypot(...out.rAdv.subarray(s * 64, (s + 1) * 64))).toBeCloseTo(2.5, 4);
    expect(out.loss).toBeCloseTo(out.ce + out.lds, 6);
    expect(out.lds).toBeGreaterThan(0);
  });

  it('rejects_weights_of_the_wrong_length', async () => {
    await expect(inspectReference(TINY, { weights: weights.subarray(1), x, y, d, lr: 0.1 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(inspectReference(TINY, { weights, x, y, lr: 0.1 })).rejects.toThrow(/d must be shaped/);
  });
});
