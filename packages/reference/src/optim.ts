// Adam and Adadelta with explicit state, on the eight parameters as tfjs tensors.
//
// Written out rather than taken from tf.train: tfjs 4.22's AdadeltaOptimizer divides by
// sqrt(E[g^2] + eps) using E[g^2] from *before* this step's gradient is folded in (see
// tfjs-core/dist/optimizers/adadelta_optimizer.js), so its first step is update = g exactly.
// Zeiler's Algorithm 1 and Keras use the updated accumulator. tf.train.adam does follow
// Kingma & Ba; test/reference.test.ts (adam_matches_tf_train_adam_over_three_steps) checks our Adam against it.

import * as tf from '@tensorflow/tfjs';

export interface OptimizerHyper {
  optimizer: 'adam' | 'adadelta';
  rho: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export class OptimizerState {
  /** Adam: m and v. Adadelta: E[g^2] and E[dx^2]. */
  private first: tf.Tensor[];
  private second: tf.Tensor[];
  /** Steps taken. */
  t = 0;

  constructor(
    readonly hyper: OptimizerHyper,
    params: tf.Tensor[],
  ) {
    this.first = params.map((p) => tf.keep(tf.zerosLike(p)));
    this.second = params.map((p) => tf.keep(tf.zerosLike(p)));
  }

  /** One update; returns new parameter tensors (kept) and replaces the state. The inputs are not disposed. */
  step(params: tf.Tensor[], grads: tf.Tensor[], lr: number): tf.Tensor[] {
    this.t += 1;
    const { optimizer, rho, beta1, beta2, epsilon } = this.hyper;
    const out: tf.Tensor[] = [];
    for (let i = 0; i < params.length; i++) {
      const [p, first, second] = tf.tidy(() => {
        const g = grads[i]!;
        if (optimizer === 'adam') {
          // Kingma & Ba 2015, Algorithm 1; the bias corrections are computed in float64.
          const m = tf.add(tf.mul(this.first[i]!, beta1), tf.mul(g, 1 - beta1));
          const v = tf.add(tf.mul(this.second[i]!, beta2), tf.mul(tf.square(g), 1 - beta2));
          const mHat = tf.div(m, 1 - beta1 ** this.t);
          const vHat = tf.div(v, 1 - beta2 ** this.t);
          return [tf.sub(params[i]!, tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), lr)), m, v];
        }
        // Zeiler 2012, Algorithm 1, in Keras's form: lr scales the update.
        const accG = tf.add(tf.mul(this.first[i]!, rho), tf.mul(tf.square(g), 1 - rho));
        const update = tf.div(tf.mul(g, tf.sqrt(tf.add(this.second[i]!, epsilon))), tf.sqrt(tf.add(accG, epsilon)));
        const accDx = tf.add(tf.mul(this.second[i]!, rho), tf.mul(tf.square(update), 1 - rho));
        return [tf.sub(params[i]!, tf.mul(update, lr)), accG, accDx];
      });
      this.first[i]!.dispose();
      this.second[i]!.dispose();
      this.first[i] = first!;
      this.second[i] = second!;
      out.push(p!);
    }
    return out;
  }

  dispose(): void {
    for (const t of [...this.first, ...this.second]) t.dispose();
  }
}
