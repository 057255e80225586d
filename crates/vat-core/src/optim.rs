//! Adam and Adadelta with explicit state, so a checkpoint can hold it and another
//! implementation can reproduce a step exactly.
//!
//! Both work on a model's parameters as flat tensors outside autodiff, in the order its
//! parameter list gives (the seed's eight, or a spec's; a spec's batch-norm buffers get zero
//! gradients, which leave them unchanged).

use burn::tensor::Tensor;

use crate::config::{OptimizerKind, TrainConfig};

/// Two moment buffers per parameter plus the step count.
/// Adam: (m, v) = first and second moments. Adadelta: (E[g^2], E[dx^2]).
#[derive(Debug, Clone)]
pub struct OptimState {
    pub kind: OptimizerKind,
    pub first: Vec<Tensor<1>>,
    pub second: Vec<Tensor<1>>,
    pub t: u64,
}

impl OptimState {
    pub fn zeros_like(kind: OptimizerKind, params: &[Tensor<1>]) -> Self {
        Self {
            kind,
            first: params.iter().map(|p| p.zeros_like()).collect(),
            second: params.iter().map(|p| p.zeros_like()).collect(),
            t: 0,
        }
    }

    /// One update. Returns the new parameters; `params` and `grads` are flat, in the model's
    /// parameter order, outside autodiff.
    pub fn step(
        &mut self,
        config: &TrainConfig,
        lr: f64,
        params: Vec<Tensor<1>>,
        grads: Vec<Tensor<1>>,
    ) -> Vec<Tensor<1>> {
        self.t += 1;
        let eps = config.epsilon;
        let mut out = params;
        for i in 0..out.len() {
            let g = grads[i].clone();
            let p = out[i].clone();
            match self.kind {
                // Kingma & Ba 2015, Algorithm 1, with bias-corrected moments.
                OptimizerKind::Adam => {
                    let (b1, b2) = (config.beta1, config.beta2);
                    let m = self.first[i].clone() * b1 + g.clone() * (1.0 - b1);
                    let v = self.second[i].clone() * b2 + g.square() * (1.0 - b2);
                    let m_hat = m.clone() / (1.0 - b1.powi(self.t as i32));
                    let v_hat = v.clone() / (1.0 - b2.powi(self.t as i32));
                    out[i] = p - m_hat / (v_hat.sqrt() + eps) * lr;
                    self.first[i] = m;
                    self.second[i] = v;
                }
                // Zeiler 2012, Algorithm 1, in the form Keras uses (lr scales the update; the
                // seed ran Keras's lr = 1.0). tfjs 4.22's tf.train.adadelta differs: it divides
                // by the accumulator from before the current gradient, so its first update is g.
                OptimizerKind::Adadelta => {
                    let rho = config.rho;
                    let acc_g = self.first[i].clone() * rho + g.clone().square() * (1.0 - rho);
                    let update = g * (self.second[i].clone() + eps).sqrt() / (acc_g.clone() + eps).sqrt();
                    self.second[i] = self.second[i].clone() * rho + update.clone().square() * (1.0 - rho);
                    self.first[i] = acc_g;
                    out[i] = p - update * lr;
                }
            }
        }
        out
    }
}
