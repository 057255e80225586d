//! One VAT training step on the CPU kernels, with explicit gradients.
//!
//! The same computation as the autodiff version in [`crate::train`] (Miyato et al. 2018,
//! eq. 9: CE + alpha * LDS [+ entropy]), written out: the clean forward pass is kept and its
//! prediction is the constant p(y|x); each power iteration is a forward pass at x + xi * d and
//! a backward pass to the input only; the adversarial pass at x + r_adv is back-propagated to
//! the weights, and its gradients are added to those of the clean pass.

use super::{
    model::{self, Cache, Grads, Masks, Weights},
    par::Threads,
    profile::{Op, time},
};
use crate::{config::TrainConfig, rng::Draws};

/// Row-wise log-softmax of `[n, k]` logits.
pub(super) fn log_softmax(logits: &[f32], k: usize) -> Vec<f32> {
    let mut out = logits.to_vec();
    for row in out.chunks_exact_mut(k) {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
        let lse = max + sum.ln();
        row.iter_mut().for_each(|v| *v -= lse);
    }
    out
}

fn exp(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.exp()).collect()
}

/// Mean cross-entropy against `labels` and its gradient with respect to the logits.
pub(super) fn cross_entropy(logits: &[f32], labels: &[u32], k: usize) -> (f32, Vec<f32>) {
    let n = labels.len();
    let log_p = log_softmax(logits, k);
    let mut grad = exp(&log_p);
    let mut loss = 0.0f32;
    for (i, &y) in labels.iter().enumerate() {
        loss -= log_p[i * k + y as usize];
        grad[i * k + y as usize] -= 1.0;
    }
    grad.iter_mut().for_each(|g| *g /= n as f32);
    (loss / n as f32, grad)
}

/// Mean KL(p || q) for a constant `p` given by its log-probabilities, and the gradient of
/// `scale` times it with respect to q's logits, `scale * (q - p) / n`.
pub(super) fn kl(log_p: &[f32], q_logits: &[f32], k: usize, scale: f32) -> (f32, Vec<f32>) {
    let n = q_logits.len() / k;
    let log_q = log_softmax(q_logits, k);
    let mut value = 0.0f32;
    let mut grad = vec![0.0; log_q.len()];
    for i in 0..log_q.len() {
        let p = log_p[i].exp();
        value += p * (log_p[i] - log_q[i]);
        grad[i] = scale * (log_q[i].exp() - p) / n as f32;
    }
    (value / n as f32, grad)
}

/// Mean entropy of softmax(logits) and its gradient times `weight`, `-weight p (log p + H) / n`
/// per row.
pub(super) fn entropy(logits: &[f32], k: usize, weight: f32) -> (f32, Vec<f32>) {
    let n = logits.len() / k;
    let log_p = log_softmax(logits, k);
    let mut total = 0.0f32;
    let mut grad = vec![0.0; log_p.len()];
    for (lp, g) in log_p.chunks_exact(k).zip(grad.chunks_exact_mut(k)) {
        let h: f32 = -lp.iter().map(|l| l.exp() * l).sum::<f32>();
        total += h;
        for (gi, &l) in g.iter_mut().zip(lp) {
            *gi = -weight * l.exp() * (l + h) / n as f32;
        }
    }
    (total / n as f32, grad)
}

/// Scales each sample of `d` (`[n, px]`) to unit L2 norm, as [`crate::vat::normalize_per_sample`]:
/// divide by the max first (so tiny gradients do not underflow), then by the root of the sum of
/// squares plus 1e-6.
pub fn normalize_per_sample(d: &mut [f32], px: usize) {
    for row in d.chunks_exact_mut(px) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-30);
        row.iter_mut().for_each(|v| *v /= max);
        let norm = (row.iter().map(|v| v * v).sum::<f32>() + 1e-6).sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
}

pub(super) fn add(x: &[f32], r: &[f32]) -> Vec<f32> {
    x.iter().zip(r).map(|(a, b)| a + b).collect()
}

/// Everything one step computes before the optimiser runs.
pub struct StepOutputs {
    pub loss: f32,
    pub ce: f32,
    pub lds: f32,
    pub entropy: f32,
    /// The clean logits of the labeled batch, `[n, classes]`.
    pub logits: Vec<f32>,
    pub r_adv: Option<Vec<f32>>,
    /// In `PARAM_NAMES` order and PyTorch layouts.
    pub grads: [Vec<f32>; 8],
}

/// The loss of one step and its gradients. `x`, `x_u`: `[n, s, s]` pixel values; `labels`
/// already validated against the class count.
pub fn forward_backward(
    config: &TrainConfig,
    params: &[Vec<f32>; 8],
    x: &[f32],
    labels: &[u32],
    x_u: Option<&[f32]>,
    noise: &Draws,
    threads: &Threads,
) -> StepOutputs {
    let mc = &config.model;
    let (k, px) = (mc.classes, mc.pixels());
    let w = Weights::prepare(mc, params, threads);
    let masks_of =
        |m: &Option<(Vec<f32>, Vec<f32>)>, n: usize| m.as_ref().map(|(c, d)| Masks::from_nchw(mc, n, c, d.clone()));
    let masks_l = masks_of(&noise.masks_labeled, labels.len());
    let mut grads = Grads::zeros(mc);

    let clean = model::forward(mc, &w, x, masks_l.as_ref(), threads);
    let (ce, mut d_clean) = time(Op::SoftmaxKl, || cross_entropy(&clean.logits, labels, k));
    let mut loss = ce;

    // The VAT batch: the labeled one (supervised, reusing its clean pass) or the unlabeled one.
    let masks_u = x_u.and_then(|u| masks_of(&noise.masks_unlabeled, u.len() / px));
    let (xv, masks_v) = match x_u {
        None => (x, masks_l.as_ref()),
        Some(u) => (u, masks_u.as_ref()),
    };
    // EntMin needs the gradient through the clean prediction, so semi-supervised it gets its
    // own tracked pass on x_u; VAT alone needs only the values.
    let clean_u: Option<Cache> = match x_u {
        Some(u) if config.vat || config.entmin => Some(model::forward(mc, &w, u, masks_v, threads)),
        _ => None,
    };
    let clean_v = clean_u.as_ref().unwrap_or(&clean);
    let mut d_clean_u = None;
    let (mut lds, mut ent) = (0.0, 0.0);
    let mut r_adv = None;

    if config.vat {
        let log_p = time(Op::SoftmaxKl, || log_softmax(&clean_v.logits, k));
        let mut d = noise.d.clone().expect("a VAT step needs a direction d");
        for _ in 0..config.power_iterations {
            let x_probe = time(Op::Elementwise, || {
                normalize_per_sample(&mut d, px);
                d.iter_mut().for_each(|v| *v *= config.xi as f32);
                add(xv, &d)
            });
            let probe = model::forward(mc, &w, &x_probe, masks_v, threads);
            let (_, dq) = time(Op::SoftmaxKl, || kl(&log_p, &probe.logits, k, 1.0));
            let mut g = vec![0.0; xv.len()];
            model::backward(mc, &w, &x_probe, &probe, &dq, masks_v, threads, None, Some(&mut g));
            d = g;
        }
        let x_adv = time(Op::Elementwise, || {
            normalize_per_sample(&mut d, px);
            d.iter_mut().for_each(|v| *v *= config.eps as f32);
            add(xv, &d)
        });
        let adv = model::forward(mc, &w, &x_adv, masks_v, threads);
        let (value, d_adv) = time(Op::SoftmaxKl, || kl(&log_p, &adv.logits, k, config.alpha as f32));
        model::backward(mc, &w, &x_adv, &adv, &d_adv, masks_v, threads, Some(&mut grads), None);
        lds = value;
        loss += value * config.alpha as f32;
        r_adv = Some(d);
    }
    if config.entmin {
        let weight = config.entmin_weight as f32;
        let (value, g) = time(Op::SoftmaxKl, || entropy(&clean_v.logits, k, weight));
        ent = value;
        loss += value * weight;
        match x_u {
            None => d_clean.iter_mut().zip(&g).for_each(|(a, b)| *a += b),
            Some(_) => d_clean_u = Some(g),
        }
    }
    model::backward(
        mc,
        &w,
        x,
        &clean,
        &d_clean,
        masks_l.as_ref(),
        threads,
        Some(&mut grads),
        None,
    );
    if let (Some(u), Some(cu), Some(g)) = (x_u, clean_u.as_ref(), d_clean_u) {
        model::backward(mc, &w, u, cu, &g, masks_v, threads, Some(&mut grads), None);
    }
    StepOutputs {
        loss,
        ce,
        lds,
        entropy: ent,
        logits: clean.logits,
        r_adv,
        grads: grads.to_pytorch(mc, threads),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_gradients_match_finite_differences() {
        let k = 4;
        let z = [0.3f32, -1.2, 0.8, 0.1, 2.0, 0.0, -0.5, 0.4];
        let labels = [2u32, 0];
        let log_p = log_softmax(&[0.1, 0.2, -0.3, 0.5, 1.0, -1.0, 0.0, 0.3], k);
        type Loss<'a> = Box<dyn Fn(&[f32]) -> (f32, Vec<f32>) + 'a>;
        let losses: [(&str, Loss); 3] = [
            ("ce", Box::new(|z: &[f32]| cross_entropy(z, &labels, k))),
            ("kl", Box::new(|z: &[f32]| kl(&log_p, z, k, 1.0))),
            ("entropy", Box::new(|z: &[f32]| entropy(z, k, 1.0))),
        ];
        for (name, f) in losses {
            let (_, g) = f(&z);
            for i in 0..z.len() {
                let h = 1e-2;
                let (mut a, mut b) = (z, z);
                a[i] += h;
                b[i] -= h;
                let fd = (f(&a).0 - f(&b).0) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 2e-3,
                    "{name}[{i}]: finite difference {fd} vs gradient {}",
                    g[i]
                );
            }
        }
    }
}
