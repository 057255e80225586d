//! One training step (CE + alpha * LDS [+ entropy]) and evaluation.

use burn::tensor::{Device, Tensor, TensorData};

use crate::{
    backend::Backend,
    config::{ModelConfig, TrainConfig},
    error::{Result, VatError},
    model::{DropoutMasks, Params},
    optim::OptimState,
    rng::Rng,
    state::read_f32,
    vat,
};

/// What one step reports. `lds` and `entropy` are 0 when their terms are off.
#[cfg_attr(target_family = "wasm", wasm_bindgen::prelude::wasm_bindgen)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub loss: f32,
    pub ce: f32,
    pub lds: f32,
    pub entropy: f32,
    /// Correct predictions on the labeled batch (clean forward pass, dropout as trained).
    pub correct: u32,
    pub batch: u32,
}

#[cfg_attr(target_family = "wasm", wasm_bindgen::prelude::wasm_bindgen(getter_with_clone))]
#[derive(Debug, Clone, PartialEq)]
pub struct EvalStats {
    /// Mean cross-entropy.
    pub loss: f64,
    pub accuracy: f64,
    pub count: u32,
    /// `classes x classes`, row = true label, column = prediction.
    pub confusion: Vec<u32>,
}

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
    /// Gradients of the loss with respect to the parameters, flat, in `PARAM_NAMES` order.
    pub grads: [Tensor<1>; 8],
}

/// Validates and uploads images given as a flat `[n * h * w]` array of pixel values in [0, 1].
pub fn images(model: &ModelConfig, x: &[f32], device: &Device) -> Result<Tensor<4>> {
    let px = model.pixels();
    if x.is_empty() || x.len() % px != 0 {
        return Err(VatError::InvalidInput(format!(
            "images must be a non-empty flat array of n * {px} values ({}x{} pixels each), got {} values",
            model.image_size,
            model.image_size,
            x.len()
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(VatError::InvalidInput(format!("image value {i} is not finite ({})", x[i])));
    }
    let n = x.len() / px;
    Ok(Tensor::from_data(TensorData::new(x.to_vec(), [n, 1, model.image_size, model.image_size]), device))
}

/// Validates labels against the image count and builds one-hot targets.
pub fn one_hot(model: &ModelConfig, y: &[u32], n: usize, device: &Device) -> Result<Tensor<2>> {
    if y.len() != n {
        return Err(VatError::InvalidInput(format!("{} labels for {n} images; they must match", y.len())));
    }
    let k = model.classes;
    let mut v = vec![0f32; n * k];
    for (i, &label) in y.iter().enumerate() {
        if label as usize >= k {
            return Err(VatError::InvalidInput(format!("label {label} at index {i} is outside 0..{k}")));
        }
        v[i * k + label as usize] = 1.0;
    }
    Ok(Tensor::from_data(TensorData::new(v, [n, k]), device))
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
            loss = loss + entropy.clone();
        }
    }

    let g = loss.backward();
    let grads = leaves.map(|leaf| {
        leaf.grad(&g)
            .unwrap_or_else(|| leaf.clone().without_autodiff().zeros_like())
    });
    StepOutputs {
        loss: loss.without_autodiff(),
        ce: ce.without_autodiff(),
        lds: lds.without_autodiff(),
        entropy: entropy.without_autodiff(),
        logits: logits.without_autodiff(),
        r_adv,
        grads,
    }
}

/// Argmax per row of a row-major `[n, k]` array.
pub fn argmax_rows(logits: &[f32], k: usize) -> Vec<usize> {
    logits
        .chunks_exact(k)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
                .0
        })
        .collect()
}

/// Owns the device, the parameters, the optimiser and the RNG.
pub struct Trainer {
    pub config: TrainConfig,
    pub backend: Backend,
    pub params: Params,
    pub opt: OptimState,
    pub rng: Rng,
}

impl Trainer {
    pub fn new(config: TrainConfig, backend: Backend) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::new(config.seed);
        let params = Params::init(&config.model, &mut rng, &backend.device);
        let opt = OptimState::zeros_like(config.optimizer, &params.flat());
        Ok(Self { config, backend, params, opt, rng })
    }

    pub fn device(&self) -> &Device {
        &self.backend.device
    }

    /// Draws this step's dropout masks and direction d from the trainer's RNG.
    fn draw_noise(&mut self, n_labeled: usize, n_unlabeled: Option<usize>) -> Noise {
        let mc = self.config.model.clone();
        let device = self.backend.device.clone();
        let masks_labeled = DropoutMasks::draw(&mc, n_labeled, &mut self.rng, &device);
        let masks_unlabeled = n_unlabeled.and_then(|n| DropoutMasks::draw(&mc, n, &mut self.rng, &device));
        let d = self.config.vat.then(|| {
            let n = n_unlabeled.unwrap_or(n_labeled);
            let s = mc.image_size;
            Tensor::from_data(TensorData::new(self.rng.normals(n * mc.pixels()), [n, 1, s, s]), &device)
        });
        Noise { d, masks_labeled, masks_unlabeled }
    }

    /// One optimiser step on a labeled batch (and, semi-supervised, an unlabeled batch).
    ///
    /// Returns [`VatError::NonFiniteLoss`] and leaves the parameters untouched when the loss
    /// is NaN or infinite.
    pub async fn train_step(&mut self, x: &[f32], y: &[u32], x_u: Option<&[f32]>, lr: f64) -> Result<StepStats> {
        self.backend.check_alive()?;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(VatError::InvalidConfig(format!("learning rate must be positive, got {lr}")));
        }
        let mc = self.config.model.clone();
        let device = self.backend.device.clone();
        let xt = images(&mc, x, &device)?;
        let n = xt.dims()[0];
        let targets = one_hot(&mc, y, n, &device)?;
        let xu = x_u.map(|u| images(&mc, u, &device)).transpose()?;
        let noise = self.draw_noise(n, xu.as_ref().map(|t| t.dims()[0]));

        let out = forward_backward(&self.config, &self.params, xt, targets, xu, &noise);
        // One read-back per step: the four scalars and the labeled logits.
        let packed = Tensor::cat(
            vec![out.loss, out.ce, out.lds, out.entropy, out.logits.flatten::<1>(0, 1)],
            0,
        );
        let host = read_f32(packed).await?;
        let (scalars, logits) = host.split_at(4);
        if let Some(bad) = scalars.iter().find(|v| !v.is_finite()) {
            return Err(VatError::NonFiniteLoss(bad.to_string(), self.opt.t + 1));
        }
        let correct = argmax_rows(logits, mc.classes)
            .iter()
            .zip(y)
            .filter(|(p, t)| **p == **t as usize)
            .count() as u32;

        let new = self.opt.step(&self.config, lr, self.params.flat(), out.grads);
        self.params = Params::from_flat(&mc, new);
        Ok(StepStats {
            loss: scalars[0],
            ce: scalars[1],
            lds: scalars[2],
            entropy: scalars[3],
            correct,
            batch: n as u32,
        })
    }

    /// Logits for `x` without dropout, in batches of `batch_size`.
    pub async fn logits(&self, x: &[f32], batch_size: usize) -> Result<Vec<f32>> {
        self.backend.check_alive()?;
        let mc = &self.config.model;
        let px = mc.pixels();
        images(mc, x, &self.backend.device)?; // validates the whole array once
        let mut out = Vec::with_capacity(x.len() / px * mc.classes);
        for chunk in x.chunks(batch_size.max(1) * px) {
            let xt = images(mc, chunk, &self.backend.device)?;
            let logits = self.params.forward(xt, None);
            out.extend(read_f32(logits.flatten::<1>(0, 1)).await?);
        }
        Ok(out)
    }

    /// Mean cross-entropy, accuracy and confusion matrix on a labeled set.
    pub async fn evaluate(&self, x: &[f32], y: &[u32], batch_size: usize) -> Result<EvalStats> {
        let k = self.config.model.classes;
        let n = x.len() / self.config.model.pixels().max(1);
        if y.len() != n {
            return Err(VatError::InvalidInput(format!("{} labels for {n} images; they must match", y.len())));
        }
        if let Some((i, l)) = y.iter().enumerate().find(|(_, l)| **l as usize >= k) {
            return Err(VatError::InvalidInput(format!("label {l} at index {i} is outside 0..{k}")));
        }
        let logits = self.logits(x, batch_size).await?;
        let mut confusion = vec![0u32; k * k];
        let mut loss = 0f64;
        for (row, &label) in logits.chunks_exact(k).zip(y) {
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
            loss += lse - row[label as usize] as f64;
        }
        for (p, &t) in argmax_rows(&logits, k).into_iter().zip(y) {
            confusion[t as usize * k + p] += 1;
        }
        let correct: u32 = (0..k).map(|i| confusion[i * k + i]).sum();
        Ok(EvalStats { loss: loss / n as f64, accuracy: correct as f64 / n as f64, count: n as u32, confusion })
    }
}
