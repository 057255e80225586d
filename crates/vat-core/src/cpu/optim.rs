//! Adam and Adadelta on host arrays, with the same formulas (and the same f32 rounding of their
//! constants) as the tensor version in [`crate::optim`].

use super::par::{Disjoint, Threads};
use crate::config::{OptimizerKind, TrainConfig};

/// Elements per unit of work when the update is spread over threads.
const CHUNK: usize = 1 << 15;

/// Two moment buffers per tensor plus the step count, in `param_names` order. (Batch norm's
/// running statistics get buffers too: their gradient is zero, so neither optimiser moves them.)
/// Adam: (m, v). Adadelta: (E[g^2], E[dx^2]).
#[derive(Debug, Clone, PartialEq)]
pub struct HostOptim {
    pub kind: OptimizerKind,
    pub first: Vec<Vec<f32>>,
    pub second: Vec<Vec<f32>>,
    pub t: u64,
}

impl HostOptim {
    pub fn zeros_like(kind: OptimizerKind, params: &[Vec<f32>]) -> Self {
        let zeros = || params.iter().map(|p| vec![0.0; p.len()]).collect();
        Self {
            kind,
            first: zeros(),
            second: zeros(),
            t: 0,
        }
    }

    /// One update of `params` in place, spread over `threads` (element-wise, so the thread
    /// count does not change the result).
    pub fn step(
        &mut self,
        config: &TrainConfig,
        lr: f64,
        params: &mut [Vec<f32>],
        grads: &[Vec<f32>],
        threads: &Threads,
    ) {
        self.t += 1;
        let kind = self.kind;
        let t = self.t;
        threads.install(|| {
            for i in 0..params.len() {
                let len = params[i].len();
                let (p, a, b) = (
                    Disjoint::new(&mut params[i]),
                    Disjoint::new(&mut self.first[i]),
                    Disjoint::new(&mut self.second[i]),
                );
                let g = &grads[i];
                threads.for_each(len.div_ceil(CHUNK), |c| {
                    let r = c * CHUNK..((c + 1) * CHUNK).min(len);
                    // SAFETY: each chunk owns its range of the three buffers.
                    let (p, a, b) = unsafe { (p.slice(r.clone()), a.slice(r.clone()), b.slice(r.clone())) };
                    update(kind, t, config, lr, p, &g[r], a, b);
                });
            }
        });
    }
}

/// The update of one range of a parameter, its gradient and its two moment buffers.
#[allow(clippy::too_many_arguments)]
fn update(
    kind: OptimizerKind,
    t: u64,
    config: &TrainConfig,
    lr: f64,
    p: &mut [f32],
    g: &[f32],
    a: &mut [f32],
    b: &mut [f32],
) {
    let eps = config.epsilon as f32;
    let lr32 = lr as f32;
    match kind {
        // Kingma & Ba 2015, Algorithm 1, with bias-corrected moments.
        OptimizerKind::Adam => {
            let (b1, b2) = (config.beta1 as f32, config.beta2 as f32);
            let (c1, c2) = ((1.0 - config.beta1) as f32, (1.0 - config.beta2) as f32);
            let bc1 = (1.0 - config.beta1.powi(t as i32)) as f32;
            let bc2 = (1.0 - config.beta2.powi(t as i32)) as f32;
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
