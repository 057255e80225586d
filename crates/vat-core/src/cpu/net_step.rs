//! One VAT training step of any [`Net`], with explicit gradients: [`super::step`]'s computation
//! (CE + alpha * LDS [+ entropy]) on the general engine, with batch norm as in the paper's code:
//! - the clean pass on the labeled batch uses the batch's statistics and is the only pass that
//!   moves the running statistics;
//! - the clean pass on the unlabeled batch, the power iteration's passes and the adversarial
//!   pass use their batch's statistics without moving them;
//! - evaluation ([`Net::logits`]) uses the running statistics.

use super::{
    net::{Cache, Mode, Net, Prepared, StepDraws},
    par::Threads,
    step::{add, cross_entropy, entropy, kl, log_softmax, normalize_per_sample},
};
use crate::config::TrainConfig;

/// Everything one step computes before the optimiser runs.
pub struct NetStepOutputs {
    pub loss: f32,
    pub ce: f32,
    pub lds: f32,
    pub entropy: f32,
    /// The clean logits of the labeled batch, `[n, classes]`.
    pub logits: Vec<f32>,
    pub r_adv: Option<Vec<f32>>,
    /// In [`Net::params`] order and PyTorch layouts (zero for the running statistics).
    pub grads: Vec<Vec<f32>>,
    /// The labeled clean pass, whose batch statistics [`Net::update_running_stats`] applies.
    pub clean: Cache,
}

/// r_adv for `x` from the direction `d` (eq. 12-14): `power_iterations` rounds of a pass at
/// x + xi * d and a backward pass to the input, then eps times the unit direction. `clean` is
/// p(y|x)'s logits, a constant. In [`Mode::Train`] each pass uses its batch's statistics and
/// `draws`; in [`Mode::Eval`] (the VAT view) the running statistics and no draws.
#[allow(clippy::too_many_arguments)]
pub fn r_adv(
    config: &TrainConfig,
    net: &Net,
    w: &Prepared,
    x: &[f32],
    clean: &[f32],
    mut d: Vec<f32>,
    mode: Mode,
    draws: &[Vec<f32>],
    threads: &Threads,
) -> Vec<f32> {
    let (k, px) = (net.classes(), net.input_len());
    let log_p = log_softmax(clean, k);
    for _ in 0..config.power_iterations {
        normalize_per_sample(&mut d, px);
        d.iter_mut().for_each(|v| *v *= config.xi as f32);
        let probe = net.forward(w, &add(x, &d), mode, draws, threads);
        let (_, dq) = kl(&log_p, probe.logits(), k, 1.0);
        d = net
            .backward(w, &probe, &dq, draws, None, true, threads)
            .expect("an input gradient was asked for");
    }
    normalize_per_sample(&mut d, px);
    d.iter_mut().for_each(|v| *v *= config.eps as f32);
    d
}

/// The loss of one step and its gradients. `x`, `x_u`: `[n, c, h, w]`; `labels` already
/// validated against the class count.
#[allow(clippy::too_many_arguments)]
pub fn forward_backward(
    config: &TrainConfig,
    net: &Net,
    params: &[Vec<f32>],
    x: &[f32],
    labels: &[u32],
    x_u: Option<&[f32]>,
    draws: &StepDraws,
    threads: &Threads,
) -> NetStepOutputs {
    let k = net.classes();
    let w = net.prepare(params);
    let mut grads = net.zero_grads();
    let dl = &draws.labeled;

    let clean = net.forward(&w, x, Mode::Train, dl, threads);
    let (ce, mut d_clean) = cross_entropy(clean.logits(), labels, k);
    let mut loss = ce;

    let du = draws.unlabeled.as_ref();
    let (xv, dv) = match (x_u, du) {
        (Some(u), Some(d)) => (u, d),
        (Some(u), None) => (u, dl),
        _ => (x, dl),
    };
    let clean_u: Option<Cache> = match x_u {
        Some(u) if config.vat || config.entmin => Some(net.forward(&w, u, Mode::Train, dv, threads)),
        _ => None,
    };
    let (mut lds, mut ent) = (0.0, 0.0);
    let mut perturbation = None;
    let mut d_clean_u = None;

    if config.vat {
        let clean_v = clean_u.as_ref().unwrap_or(&clean);
        let log_p = log_softmax(clean_v.logits(), k);
        let d0 = draws.d.clone().expect("a VAT step needs a direction d");
        let d = r_adv(config, net, &w, xv, clean_v.logits(), d0, Mode::Train, dv, threads);
        let x_adv = add(xv, &d);
        let adv = net.forward(&w, &x_adv, Mode::Train, dv, threads);
        let (value, d_adv) = kl(&log_p, adv.logits(), k, config.alpha as f32);
        net.backward(&w, &adv, &d_adv, dv, Some(&mut grads), false, threads);
        lds = value;
        loss += value * config.alpha as f32;
        perturbation = Some(d);
    }
    if config.entmin {
        let clean_v = clean_u.as_ref().unwrap_or(&clean);
        let weight = config.entmin_weight as f32;
        let (value, g) = entropy(clean_v.logits(), k, weight);
        ent = value;
        loss += value * weight;
        match x_u {
            None => d_clean.iter_mut().zip(&g).for_each(|(a, b)| *a += b),
            Some(_) => d_clean_u = Some(g),
        }
    }
    net.backward(&w, &clean, &d_clean, dl, Some(&mut grads), false, threads);
    if let (Some(cu), Some(g)) = (clean_u.as_ref(), d_clean_u) {
        net.backward(&w, cu, &g, dv, Some(&mut grads), false, threads);
    }
    NetStepOutputs {
        loss,
        ce,
        lds,
        entropy: ent,
        logits: clean.logits().to_vec(),
        r_adv: perturbation,
        grads: grads.into_pytorch(net),
        clean,
    }
}
