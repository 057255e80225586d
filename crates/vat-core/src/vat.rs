//! The VAT regulariser (Miyato et al. 2018, TPAMI, arXiv 1704.03976).
//!
//! LDS(x) = KL(p(y|x) || p(y|x + r_adv)), with p(y|x) held constant (eq. 6-7), and
//! r_adv ~= eps * g / ||g||, g = grad_r KL(p(y|x) || p(y|x + r)) at r = xi * d (eq. 12-14),
//! where d starts as a random unit vector and each power iteration replaces it with g.

use burn::tensor::{Tensor, activation::log_softmax};

use crate::{
    config::TrainConfig,
    model::{DropoutMasks, Params},
};

/// Mean over the batch of KL(softmax(p_logits) || softmax(q_logits)).
///
/// The caller decides what is constant: the VAT term passes detached `p_logits` (the paper's
/// stop-gradient on the clean prediction), so gradients flow only through `q_logits`.
///
/// # Shapes
/// `[batch, classes]`, `[batch, classes]` -> `[1]`
pub fn kl_with_logits(p_logits: Tensor<2>, q_logits: Tensor<2>) -> Tensor<1> {
    let log_p = log_softmax(p_logits, 1);
    let log_q = log_softmax(q_logits, 1);
    let p = log_p.clone().exp();
    (p * (log_p - log_q)).sum_dim(1).mean()
}

/// Mean over the batch of the conditional entropy H(p(y|x)) (the paper's EntMin term, eq. 16).
pub fn entropy_with_logits(logits: Tensor<2>) -> Tensor<1> {
    let log_p = log_softmax(logits, 1);
    (log_p.clone().exp() * log_p).sum_dim(1).mean().neg()
}

/// Mean over the batch of the cross-entropy against one-hot targets.
pub fn cross_entropy(logits: Tensor<2>, one_hot: Tensor<2>) -> Tensor<1> {
    (log_softmax(logits, 1) * one_hot).sum_dim(1).mean().neg()
}

/// Scales each sample of `d` to unit L2 norm.
///
/// Two steps, as in the official code (`get_normalized_vector`): dividing by the max first
/// keeps the squares from underflowing in f32 when the gradient is tiny (xi = 1e-6), and the
/// 1e-6 under the root then perturbs the norm by at most 5e-7 relative. Unlike the official
/// code, the max is floored at 1e-30 rather than offset by 1e-12, which would swamp gradients
/// below ~1e-10 and shrink the result.
///
/// # Shapes
/// `[batch, c, h, w]` -> same
pub fn normalize_per_sample(d: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = d.dims();
    let flat = d.reshape([b, c * h * w]);
    let flat = flat.clone() / flat.abs().max_dim(1).clamp_min(1e-30);
    let norm = (flat.clone().square().sum_dim(1) + 1e-6).sqrt();
    (flat / norm).reshape([b, c, h, w])
}

/// The adversarial perturbation r_adv for the seed CNN's inputs `x`, starting from direction
/// `d0` ([`power_iteration`] through [`Params::forward`]).
///
/// `params` and `x` must be constants (outside autodiff) and `clean_logits` detached: only the
/// probe direction is differentiated here, never the weights.
///
/// # Shapes
/// `x`, `d0`: `[batch, 1, h, w]`; `clean_logits`: `[batch, classes]` -> `[batch, 1, h, w]`
pub fn r_adv(
    params: &Params,
    x: Tensor<4>,
    clean_logits: Tensor<2>,
    d0: Tensor<4>,
    config: &TrainConfig,
    masks: Option<&DropoutMasks>,
) -> Tensor<4> {
    power_iteration(|x| params.forward(x, masks), x, clean_logits, d0, config)
}

/// r_adv by `config.power_iterations` rounds of the power iteration (eq. 12-14) through any
/// model's forward pass `forward` (logits of a batch), which must close over constants.
///
/// # Shapes
/// `x`, `d0`: `[batch, c, h, w]`; `clean_logits`: `[batch, classes]` -> `[batch, c, h, w]`
pub fn power_iteration(
    forward: impl Fn(Tensor<4>) -> Tensor<2>,
    x: Tensor<4>,
    clean_logits: Tensor<2>,
    d0: Tensor<4>,
    config: &TrainConfig,
) -> Tensor<4> {
    let mut d = d0;
    for _ in 0..config.power_iterations {
        let probe = (normalize_per_sample(d) * config.xi).autodiff().require_grad();
        let q_logits = forward(x.clone() + probe.clone());
        let kl = kl_with_logits(clean_logits.clone(), q_logits);
        d = probe
            .grad(&kl.backward())
            .expect("the probe direction is tracked, so it has a gradient");
    }
    normalize_per_sample(d) * config.eps
}
