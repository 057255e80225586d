//! The model's training step as a burn autodiff graph (CE + alpha * LDS [+ entropy]), for the
//! burn backends (burn-flex and WebGPU). [`crate::cpu::step`] computes the same step with
//! explicit gradients on the CPU kernels; the tests hold the two to each other.

use burn::tensor::{Device, Tensor, TensorData};

use crate::{
    config::{ModelConfig, TrainConfig},
    error::Result,
    model::{DropoutMasks, Params},
    rng::Draws,
    train::{check_images, check_labels},
    vat,
};

/// The random draws of one step. Drawn from the trainer's [`Rng`] in training; injected by
/// [`crate::inspect`] so that other implementations can be fed the same numbers.
pub struct Noise {
    /// Initial direction of the power iteration, `[vat_batch, 1, h, w]` (need not be unit).
    pub d: Option<Tensor<4>>,
    pub masks_labeled: Option<DropoutMasks>,
    pub masks_unlabeled: Option<DropoutMasks>,
}

/// Every quantity of one forward/backward, before the optimiser runs.
pub struct StepOutputs {
    pub loss: Tensor<1>,
    pub ce: Tensor<1>,
    pub lds: Tensor<1>,
    pub entropy: Tensor<1>,
    pub logits: Tensor<2>,
    pub r_adv: Option<Tensor<4>>,
    /// Gradients of the loss with respect to the parameters, flat, in the model's parameter
    /// order (`PARAM_NAMES` for the seed's CNN; zero for a spec's running statistics).
    pub grads: Vec<Tensor<1>>,
    /// A spec's batch-norm statistics of the labeled clean pass, for
    /// [`crate::spec_graph::update_running_stats`] (empty for the seed's CNN).
    pub bn: Vec<Option<crate::spec_graph::BnBatch>>,
}

/// Validates and uploads images given as a flat `[n * h * w]` array of pixel values in [0, 1].
pub fn images(model: &ModelConfig, x: &[f32], device: &Device) -> Result<Tensor<4>> {
    let n = check_images(model, x)?;
    Ok(Tensor::from_data(
        TensorData::new(x.to_vec(), [n, 1, model.image_size, model.image_size]),
        device,
    ))
}

/// Validates labels against the image count and builds one-hot targets.
pub fn one_hot(model: &ModelConfig, y: &[u32], n: usize, device: &Device) -> Result<Tensor<2>> {
    check_labels(model, y, n)?;
    let k = model.classes;
    let mut v = vec![0f32; n * k];
    for (i, &label) in y.iter().enumerate() {
        v[i * k + label as usize] = 1.0;
    }
    Ok(Tensor::from_data(TensorData::new(v, [n, k]), device))
}

impl Noise {
    /// Uploads the host draws of one step.
    pub fn upload(
        model: &ModelConfig,
        draws: &Draws,
        n_labeled: usize,
        n_unlabeled: Option<usize>,
        device: &Device,
    ) -> Self {
        let s = model.image_size;
        Self {
            d: draws.d.as_ref().map(|d| {
                let n = d.len() / model.pixels();
                Tensor::from_data(TensorData::new(d.clone(), [n, 1, s, s]), device)
            }),
            masks_labeled: draws
                .masks_labeled
                .as_ref()
                .map(|m| DropoutMasks::upload(model, n_labeled, m, device)),
            masks_unlabeled: draws
                .masks_unlabeled
                .as_ref()
                .zip(n_unlabeled)
                .map(|(m, n)| DropoutMasks::upload(model, n, m, device)),
        }
    }
}

/// The gradient of `loss` for each leaf, in order: zeros for a leaf the loss does not reach (a
/// spec's running statistics).
pub(crate) fn leaf_grads(loss: &Tensor<1>, leaves: &[Tensor<1>]) -> Vec<Tensor<1>> {
    let g = loss.backward();
    leaves
        .iter()
        .map(|leaf| {
            leaf.grad(&g)
                .unwrap_or_else(|| leaf.clone().without_autodiff().zeros_like())
        })
        .collect()
}

/// The loss of one step and its gradients (Miyato et al. 2018, eq. 9: CE + alpha * LDS).
///
/// Supervised (`x_u` = None): the VAT term uses the labeled batch, as in the seed, and reuses
/// its clean forward pass. Semi-supervised: CE on the labeled batch, VAT (and EntMin) on `x_u`.
pub fn forward_backward(
    config: &TrainConfig,
    params: &Params,
    x: Tensor<4>,
    targets: Tensor<2>,
    x_u: Option<Tensor<4>>,
    noise: &Noise,
) -> StepOutputs {
    let mc = &config.model;
    let leaves = params.flat().map(|t| t.without_autodiff().autodiff().require_grad());
    let tracked = Params::from_flat(mc, leaves.clone());
    let constant = params.constant(mc);

    let logits = tracked.forward(x.clone(), noise.masks_labeled.as_ref());
    let ce = vat::cross_entropy(logits.clone(), targets);
    let mut loss = ce.clone();

    let (x_v, masks_v, tracked_v) = match x_u {
        None => (x, noise.masks_labeled.as_ref(), Some(logits.clone())),
        Some(x_u) => {
            let masks = noise.masks_unlabeled.as_ref();
            // EntMin needs the gradient of the clean prediction; VAT alone does not.
            let tracked_v = config.entmin.then(|| tracked.forward(x_u.clone(), masks));
            (x_u, masks, tracked_v)
        }
    };

    let zero = || Tensor::<1>::zeros([1], &x_v.device());
    let needs_clean = config.vat || config.entmin;
    let mut lds = zero();
    let mut entropy = zero();
    let mut r_adv = None;
    if needs_clean {
        // The stop-gradient on p(y|x) (the paper's constant theta-hat).
        let clean = match &tracked_v {
            Some(l) => l.clone().without_autodiff(),
            None => constant.forward(x_v.clone(), masks_v),
        };
        if config.vat {
            let d = noise.d.clone().expect("a VAT step needs a direction d");
            let r = vat::r_adv(&constant, x_v.clone(), clean.clone(), d, config, masks_v);
            let adv_logits = tracked.forward(x_v.clone() + r.clone(), masks_v);
            lds = vat::kl_with_logits(clean, adv_logits);
            loss = loss + lds.clone() * config.alpha;
            r_adv = Some(r);
        }
        if config.entmin {
            let l = tracked_v.expect("entmin computes the tracked clean logits");
            entropy = vat::entropy_with_logits(l);
            loss = loss + entropy.clone() * config.entmin_weight;
        }
    }

    let grads = leaf_grads(&loss, &leaves);
    StepOutputs {
        loss: loss.without_autodiff(),
        ce: ce.without_autodiff(),
        lds: lds.without_autodiff(),
        entropy: entropy.without_autodiff(),
        logits: logits.without_autodiff(),
        r_adv,
        grads,
        bn: Vec::new(),
    }
}
