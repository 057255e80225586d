//! Adam and Adadelta on host arrays, with the same formulas (and the same f32 rounding of their
//! constants) as the tensor version in [`crate::optim`].

use crate::config::{OptimizerKind, TrainConfig};

/// Two moment buffers per parameter plus the step count, in `PARAM_NAMES` order.
/// Adam: (m, v). Adadelta: (E[g^2], E[dx^2]).
#[derive(Debug, Clone, PartialEq)]
pub struct HostOptim {
    pub kind: OptimizerKind,
    pub first: [Vec<f32>; 8],
    pub second: [Vec<f32>; 8],
    pub t: u64,
}

impl HostOptim {
    pub fn zeros_like(kind: OptimizerKind, params: &[Vec<f32>; 8]) -> Self {
        let zeros = || params.clone().map(|p| vec![0.0; p.len()]);
        Self {
            kind,
            first: zeros(),
            second: zeros(),
            t: 0,
        }
    }

    /// One update of `params` in place.
    pub fn step(&mut self, config: &TrainConfig, lr: f64, params: &mut [Vec<f32>; 8], grads: &[Vec<f32>; 8]) {
        self.t += 1;
        let eps = config.epsilon as f32;
        let lr32 = lr as f32;
        for i in 0..8 {
            let (p, g, a, b) = (&mut params[i], &grads[i], &mut self.first[i], &mut self.second[i]);
            match self.kind {
                // Kingma & Ba 2015, Algorithm 1, with bias-corrected moments.
                OptimizerKind::Adam => {
                    let (b1, b2) = (config.beta1 as f32, config.beta2 as f32);
                    let (c1, c2) = ((1.0 - config.beta1) as f32, (1.0 - config.beta2) as f32);
                    let bc1 = (1.0 - config.beta1.powi(self.t as i32)) as f32;
                    let bc2 = (1.0 - config.beta2.powi(self.t as i32)) as f32;
                    for j in 0..p.len() {
                        let m = a[j] * b1 + g[j] * c1;
                        let v = b[j] * b2 + g[j] * g[j] * c2;
                        p[j] -= m / bc1 / ((v / bc2).sqrt() + eps) * lr32;
                        a[j] = m;
                        b[j] = v;
                    }
                }
                // Zeiler 2012 in Keras's form (lr scales the update).
                OptimizerKind::Adadelta => {
                    let (rho, c) = (config.rho as f32, (1.0 - config.rho) as f32);
                    for j in 0..p.len() {
                        let acc_g = a[j] * rho + g[j] * g[j] * c;
                        let update = g[j] * (b[j] + eps).sqrt() / (acc_g + eps).sqrt();
                        b[j] = b[j] * rho + update * update * c;
                        a[j] = acc_g;
                        p[j] -= update * lr32;
                    }
                }
            }
        }
    }
}
