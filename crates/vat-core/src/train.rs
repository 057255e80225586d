//! The trainer: one training step (CE + alpha * LDS [+ entropy]) and evaluation, on whichever
//! backend it was started with. The CPU backend runs [`crate::cpu`]'s kernels on host arrays;
//! the burn backends run the autodiff graph in [`crate::graph`].

use crate::{
    backend::{Backend, BackendKind},
    config::{ModelConfig, TrainConfig},
    cpu::{self, optim::HostOptim},
    error::{Result, VatError},
    params::{HostParams, init_params},
    rng::{Draws, Rng},
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
    /// The predicted class of each image, in order.
    pub predicted: Vec<u32>,
}

/// The adversarial direction on the live weights, for showing: see [`Trainer::vat_view`].
#[cfg_attr(target_family = "wasm", wasm_bindgen::prelude::wasm_bindgen(getter_with_clone))]
#[derive(Debug, Clone, PartialEq)]
pub struct VatView {
    /// `[n, c * h * w]`, of norm eps per image in the model's input space: with a normalization,
    /// the perturbation of the standardised input shown on the pixels (times each channel's std).
    pub r_adv: Vec<f32>,
    /// p(y|x) and p(y|x + r_adv), `[n, classes]`.
    pub p: Vec<f32>,
    pub q: Vec<f32>,
    /// KL(p || q) per image.
    pub kl: Vec<f32>,
}

/// The memory a WebAssembly module of this build can grow to: wasm32's 4 GiB, or the 2 GiB the
/// threaded module's shared memory declares (scripts/build-wasm.sh, --max-memory).
pub const WASM_MEMORY_BYTES: u64 = if cfg!(feature = "threads") { 2 << 30 } else { 4 << 30 };

/// About how many bytes of working memory one training step takes per image on the CPU backends:
/// the activations kept for backward (conv1's output, the pooled map and its argmax, the hidden
/// layer, the logits) for the clean, probe and adversarial passes and their gradients, and the
/// input, d and x + r_adv copies. burn-flex keeps its autodiff graph besides, about three times
/// as much. An estimate, on the safe side of what the kernels allocate.
pub fn step_bytes_per_image(model: &ModelConfig, kind: BackendKind) -> u64 {
    if let Some(spec) = &model.spec {
        // Every layer's input kept for backward, in each of the four passes (clean, probe,
        // adversarial, unlabeled clean), and a gradient beside each.
        let acts: u64 = spec.shapes().map_or(0, |v| v.iter().map(|s| s.len() as u64).sum());
        return 4 * (8 * acts + 4 * spec.input_len() as u64);
    }
    let s = model.image_size as u64;
    let f = model.conv_filters as u64;
    let pooled = f * ((s - 4) / 2).pow(2);
    let cache = f * (s - 2).pow(2) + 2 * pooled + model.hidden as u64 + model.classes as u64;
    let bytes = 4 * (4 * cache + 4 * s * s);
    if kind == BackendKind::BurnCpu { 3 * bytes } else { bytes }
}

/// Refuses a batch of `n` images whose step would not fit in `limit` bytes (the wasm engine's
/// memory, less the weights and the optimiser's state), naming the largest batch that would.
pub fn check_batch_fits(model: &ModelConfig, kind: BackendKind, n: usize, limit: u64) -> Result<()> {
    let params: u64 = crate::params::param_shapes(model)
        .iter()
        .map(|s| s.iter().product::<usize>() as u64)
        .sum();
    let room = limit.saturating_sub(4 * 4 * params + (256 << 20));
    let per = step_bytes_per_image(model, kind);
    if n as u64 * per <= room {
        return Ok(());
    }
    Err(VatError::InvalidConfig(format!(
        "a batch of {n} images needs about {:.1} GB, more than the WebAssembly engine's {} GB hold beside the model; the largest batch that fits is about {}; use a smaller batch, or the native engine",
        (n as u64 * per) as f64 / 1e9,
        limit >> 30,
        room / per
    )))
}

/// Checks a flat `[n * h * w]` array of pixel values and returns n.
pub fn check_images(model: &ModelConfig, x: &[f32]) -> Result<usize> {
    let px = model.pixels();
    if x.is_empty() || !x.len().is_multiple_of(px) {
        let [c, h, w] = model.input_shape();
        return Err(VatError::InvalidInput(format!(
            "images must be a non-empty flat array of n * {px} values ({c}x{h}x{w} each), got {} values",
            x.len()
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(VatError::InvalidInput(format!(
            "image value {i} is not finite ({})",
            x[i]
        )));
    }
    Ok(x.len() / px)
}

/// Checks labels against the image count and the number of classes.
pub fn check_labels(model: &ModelConfig, y: &[u32], n: usize) -> Result<()> {
    if y.len() != n {
        return Err(VatError::InvalidInput(format!(
            "{} labels for {n} images; they must match",
            y.len()
        )));
    }
    let k = model.classes;
    if let Some((i, l)) = y.iter().enumerate().find(|(_, l)| **l as usize >= k) {
        return Err(VatError::InvalidInput(format!(
            "label {l} at index {i} is outside 0..{k}"
        )));
    }
    Ok(())
}

/// Argmax per row of a row-major `[n, k]` array.
pub fn argmax_rows(logits: &[f32], k: usize) -> Vec<usize> {
    logits
        .chunks_exact(k)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |best, (i, &v)| {
                        if v > best.1 { (i, v) } else { best }
                    },
                )
                .0
        })
        .collect()
}

/// Parameters and optimiser state, where the backend keeps them. One per trainer, so the size
/// difference between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Weights {
    /// Host arrays, for the CPU kernels.
    Host { params: HostParams, opt: HostOptim },
    /// Tensors on a burn device: rank-1, in the model's parameter order (the seed's eight, or a
    /// spec's list).
    #[cfg(feature = "burn")]
    Burn {
        params: Vec<burn::tensor::Tensor<1>>,
        opt: crate::optim::OptimState,
    },
}

/// Owns the backend, the parameters, the optimiser and the RNG.
pub struct Trainer {
    pub config: TrainConfig,
    pub backend: Backend,
    pub rng: Rng,
    weights: Weights,
    /// The spec engine's plan of the model, when it is a spec (the seed's CNN has its own kernels).
    net: Option<cpu::net::Net>,
    /// Batch norm statistics being re-estimated ([`Trainer::accumulate_bn`]), with the weights
    /// they are measured on; any change of the weights drops them.
    bn_estimate: Option<(HostParams, cpu::net::BnEstimate)>,
}

impl Trainer {
    pub fn new(config: TrainConfig, backend: Backend) -> Result<Self> {
        config.validate()?;
        let net = config.model.spec.as_ref().map(cpu::net::Net::new).transpose()?;
        let mut rng = Rng::new(config.seed);
        let params = init_params(&config.model, &mut rng);
        let opt = HostOptim::zeros_like(config.optimizer, &params);
        let mut t = Self {
            config,
            backend,
            rng,
            weights: Weights::Host {
                params: params.clone(),
                opt: opt.clone(),
            },
            net,
            bn_estimate: None,
        };
        t.restore(params, Some(opt));
        Ok(t)
    }

    /// A trainer that continues the run in `checkpoint` exactly: its config (from the file), its
    /// weights, optimiser state and RNG state. `overrides` may change the VAT hyperparameters
    /// (the settings a user tunes when a run diverges); changes are refused, naming them, unless
    /// `allow` is set, and the model, the optimiser kind and the seed never change. Returns the
    /// trainer, the checkpoint's loop state, and the settings that were changed.
    pub fn from_checkpoint(
        checkpoint: &[u8],
        backend: Backend,
        overrides: &crate::config::Options,
        allow: bool,
    ) -> Result<(Self, String, Vec<String>)> {
        use crate::state::{checkpoint_config, config_differences, import_checkpoint};
        let saved = checkpoint_config(checkpoint)?;
        let asked = saved.with_overrides(overrides)?;
        // What a resume may change: the VAT term's settings. The rest shapes the weights, the
        // optimiser's state or the run's draws, which the checkpoint holds.
        const TUNABLE: [&str; 7] = ["vat", "eps", "xi", "powerIterations", "alpha", "entmin", "entminWeight"];
        let describe = |d: &[(String, String, String)]| -> String {
            d.iter()
                .map(|(k, s, a)| format!("{k} (checkpoint {s}, asked {a})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (changed, never): (Vec<_>, Vec<_>) = config_differences(&saved, &asked)
            .into_iter()
            .partition(|(k, _, _)| TUNABLE.contains(&k.as_str()));
        if !never.is_empty() {
            return Err(VatError::InvalidConfig(format!(
                "a resume cannot change {}: the checkpoint's weights, optimiser state and draws depend on them; start a new run instead",
                describe(&never)
            )));
        }
        if !changed.is_empty() && !allow {
            return Err(VatError::InvalidConfig(format!(
                "the checkpoint was trained with other settings: {}; resume with its own, or pass the override option to change them",
                describe(&changed)
            )));
        }
        asked.validate()?;
        let ck = import_checkpoint(checkpoint, &saved)?;
        let mut t = Self::new(asked, backend)?;
        t.restore(ck.params, Some(ck.opt));
        t.rng = Rng::from_state(ck.rng_state);
        Ok((t, ck.loop_state, changed.into_iter().map(|(k, _, _)| k).collect()))
    }

    /// Optimiser steps taken so far.
    pub fn step(&self) -> u64 {
        match &self.weights {
            Weights::Host { opt, .. } => opt.t,
            #[cfg(feature = "burn")]
            Weights::Burn { opt, .. } => opt.t,
        }
    }

    #[cfg(feature = "burn")]
    fn device(&self) -> &burn::tensor::Device {
        self.backend.burn_device().expect("a burn backend has a device")
    }

    /// The parameters and optimiser state as host arrays (read back from the device if needed).
    pub async fn snapshot(&self) -> Result<(HostParams, HostOptim)> {
        match &self.weights {
            Weights::Host { params, opt } => Ok((params.clone(), opt.clone())),
            #[cfg(feature = "burn")]
            Weights::Burn { opt, .. } => {
                use crate::state::read_f32;
                let host = self.params().await?;
                let (mut first, mut second) = (Vec::with_capacity(8), Vec::with_capacity(8));
                for (a, b) in opt.first.iter().zip(&opt.second) {
                    first.push(read_f32(a.clone()).await?);
                    second.push(read_f32(b.clone()).await?);
                }
                Ok((
                    host,
                    HostOptim {
                        kind: opt.kind,
                        first,
                        second,
                        t: opt.t,
                    },
                ))
            }
        }
    }

    /// The parameters as host arrays (on the burn backends, read back without the optimiser state).
    pub async fn params(&self) -> Result<HostParams> {
        match &self.weights {
            Weights::Host { params, .. } => Ok(params.clone()),
            #[cfg(feature = "burn")]
            Weights::Burn { params, .. } => {
                let mut host = Vec::with_capacity(params.len());
                for t in params {
                    host.push(crate::state::read_f32(t.clone()).await?);
                }
                Ok(host)
            }
        }
    }

    /// Replaces the parameters, and the optimiser state when given (else it is kept).
    pub fn restore(&mut self, params: HostParams, opt: Option<HostOptim>) {
        self.bn_estimate = None;
        match self.backend.kind {
            BackendKind::Cpu => {
                let opt = match (opt, &self.weights) {
                    (Some(o), _) => o,
                    (None, Weights::Host { opt, .. }) => opt.clone(),
                    #[cfg(feature = "burn")]
                    (None, Weights::Burn { .. }) => unreachable!("a CPU trainer keeps host weights"),
                };
                self.weights = Weights::Host { params, opt };
            }
            #[cfg(feature = "burn")]
            BackendKind::BurnCpu | BackendKind::WebGpu => {
                use crate::{optim::OptimState, spec_graph::upload};
                let device = self.device().clone();
                let up = |v: HostParams| upload(v, &device);
                let opt = match (opt, &self.weights) {
                    (Some(o), _) => OptimState {
                        kind: o.kind,
                        first: up(o.first),
                        second: up(o.second),
                        t: o.t,
                    },
                    (None, Weights::Burn { opt, .. }) => opt.clone(),
                    (None, Weights::Host { opt, .. }) => {
                        let o = opt.clone();
                        OptimState {
                            kind: o.kind,
                            first: up(o.first),
                            second: up(o.second),
                            t: o.t,
                        }
                    }
                };
                self.weights = Weights::Burn {
                    params: up(params),
                    opt,
                };
            }
            #[cfg(not(feature = "burn"))]
            _ => unreachable!("this build starts only the CPU backend"),
        }
    }

    /// One optimiser step on a labeled batch (and, semi-supervised, an unlabeled batch).
    ///
    /// Returns [`VatError::NonFiniteLoss`] and leaves the parameters untouched when the loss
    /// is NaN or infinite.
    pub async fn train_step(&mut self, x: &[f32], y: &[u32], x_u: Option<&[f32]>, lr: f64) -> Result<StepStats> {
        self.backend.check_alive()?;
        self.bn_estimate = None;
        check_images(&self.config.model, x)?;
        if let Some(u) = x_u {
            check_images(&self.config.model, u)?;
        }
        let (xn, un) = (self.normalized(x), x_u.map(|u| self.normalized(u)));
        let (x, x_u) = (xn.as_ref(), un.as_deref());
        if !(lr.is_finite() && lr > 0.0) {
            return Err(VatError::InvalidConfig(format!(
                "learning rate must be positive, got {lr}"
            )));
        }
        let mc = self.config.model.clone();
        let n = check_images(&mc, x)?;
        check_labels(&mc, y, n)?;
        let n_u = x_u.map(|u| check_images(&mc, u)).transpose()?;
        // On wasm32 an allocation that does not fit is a trap that kills the module: refuse first.
        if cfg!(target_arch = "wasm32") && self.backend.kind != BackendKind::WebGpu {
            check_batch_fits(&mc, self.backend.kind, n + n_u.unwrap_or(0), WASM_MEMORY_BYTES)?;
        }
        let step = self.step() + 1;
        let check = |scalars: [f32; 4]| match scalars.iter().find(|v| !v.is_finite()) {
            Some(bad) => Err(VatError::NonFiniteLoss(bad.to_string(), step)),
            None => Ok(scalars),
        };
        if let (Some(net), Weights::Host { params, opt }) = (&self.net, &mut self.weights) {
            let draws = net.draw_step(&mut self.rng, self.config.vat, n, n_u);
            let out =
                cpu::net_step::forward_backward(&self.config, net, params, x, y, x_u, &draws, &self.backend.threads);
            check([out.loss, out.ce, out.lds, out.entropy])?;
            opt.step(&self.config, lr, params, &out.grads, &self.backend.threads);
            net.update_running_stats(&out.clean, params);
            return Ok(stats(
                [out.loss, out.ce, out.lds, out.entropy],
                &out.logits,
                y,
                mc.classes,
            ));
        }
        let (scalars, logits) = match &mut self.weights {
            Weights::Host { params, opt } => {
                let draws = Draws::draw(&self.config, &mut self.rng, n, n_u);
                let eight = crate::params::seed_eight(params);
                let out = cpu::step::forward_backward(&self.config, eight, x, y, x_u, &draws, &self.backend.threads);
                let scalars = check([out.loss, out.ce, out.lds, out.entropy])?;
                cpu::profile::time(cpu::profile::Op::Optimizer, || {
                    opt.step(&self.config, lr, params, &out.grads, &self.backend.threads)
                });
                (scalars, out.logits)
            }
            #[cfg(feature = "burn")]
            Weights::Burn { params, opt } => {
                use burn::tensor::Tensor;

                use crate::{graph, model::Params, spec_graph as sg, state::read_f32};
                let device = self.backend.burn_device().expect("a burn backend has a device").clone();
                let targets = graph::one_hot(&mc, y, n, &device)?;
                let out = match &self.net {
                    Some(net) => {
                        let draws = net.draw_step(&mut self.rng, self.config.vat, n, n_u);
                        let gd = sg::GraphDraws::upload(net, &draws, &device);
                        let (xt, xu) = (sg::images(net, x, &device), x_u.map(|u| sg::images(net, u, &device)));
                        sg::forward_backward(&self.config, net, params, xt, targets, xu, &gd)
                    }
                    None => {
                        let draws = Draws::draw(&self.config, &mut self.rng, n, n_u);
                        let noise = graph::Noise::upload(&mc, &draws, n, n_u, &device);
                        let xt = graph::images(&mc, x, &device)?;
                        let xu = x_u.map(|u| graph::images(&mc, u, &device)).transpose()?;
                        graph::forward_backward(&self.config, &Params::from_list(&mc, params), xt, targets, xu, &noise)
                    }
                };
                // One read-back per step: the four scalars and the labeled logits.
                let packed = Tensor::cat(
                    vec![out.loss, out.ce, out.lds, out.entropy, out.logits.flatten::<1>(0, 1)],
                    0,
                );
                let host = read_f32(packed).await?;
                let (s, logits) = host.split_at(4);
                let scalars = check([s[0], s[1], s[2], s[3]])?;
                *params = opt.step(&self.config, lr, params.clone(), out.grads);
                if let Some(net) = &self.net {
                    sg::update_running_stats(net, &out.bn, params);
                }
                (scalars, logits.to_vec())
            }
        };
        Ok(stats(scalars, &logits, y, mc.classes))
    }

    /// `x` standardised as the model's normalization says (unchanged without one).
    fn normalized<'a>(&self, x: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        let mc = &self.config.model;
        match &mc.normalization {
            Some(n) => {
                let [_, h, w] = mc.input_shape();
                std::borrow::Cow::Owned(n.apply(x, h * w))
            }
            None => std::borrow::Cow::Borrowed(x),
        }
    }

    /// Adds the batch norm statistics of the batch `x` to an estimate that
    /// [`Self::apply_bn_estimate`] writes as the running statistics: the official VAT code's last
    /// step, a pass over the unlabeled set in batches with every layer normalising with its
    /// batch's statistics (dropout and noise off). The running statistics a training run keeps
    /// come from the labeled batches alone, which with 100 labels are not the unlabeled data's.
    /// The passes run on the CPU engine whichever backend holds the weights; a train step or a
    /// change of weights in between drops the estimate.
    pub async fn accumulate_bn(&mut self, x: &[f32]) -> Result<()> {
        self.backend.check_alive()?;
        let Some(net) = self.net.as_ref().filter(|n| n.has_batch_norm()) else {
            return Err(VatError::InvalidConfig(
                "this model has no batch norm layers, so there are no statistics to re-estimate".into(),
            ));
        };
        check_images(&self.config.model, x)?;
        if self.bn_estimate.is_none() {
            self.bn_estimate = Some((self.params().await?, cpu::net::BnEstimate::default()));
        }
        let xn = self.normalized(x);
        let (params, est) = self.bn_estimate.as_mut().expect("set above");
        net.accumulate_bn(est, params, &xn, &self.backend.threads);
        Ok(())
    }

    /// Writes the statistics [`Self::accumulate_bn`] gathered as batch norm's running mean and
    /// variance (the image-weighted average of the batches' means and unbiased variances), and
    /// returns how many images they came from.
    pub fn apply_bn_estimate(&mut self) -> Result<usize> {
        let Some((mut params, est)) = self.bn_estimate.take() else {
            return Err(VatError::InvalidConfig(
                "no batch norm statistics were gathered since the weights last changed: pass the images to accumulateBatchNorm first".into(),
            ));
        };
        let net = self.net.as_ref().expect("an estimate is only gathered on a spec model");
        net.apply_bn(&est, &mut params);
        self.restore(params, None);
        Ok(est.images)
    }

    /// Logits for `x` without dropout, in batches of `batch_size`.
    pub async fn logits(&self, x: &[f32], batch_size: usize) -> Result<Vec<f32>> {
        check_images(&self.config.model, x)?;
        self.model_logits(&self.normalized(x), batch_size).await
    }

    /// Logits for inputs already normalised.
    async fn model_logits(&self, x: &[f32], batch_size: usize) -> Result<Vec<f32>> {
        self.backend.check_alive()?;
        let mc = &self.config.model;
        let px = mc.pixels();
        check_images(mc, x)?;
        let mut out = Vec::with_capacity(x.len() / px * mc.classes);
        match &self.weights {
            Weights::Host { params, .. } if self.net.is_some() => {
                let net = self.net.as_ref().expect("a spec model");
                let w = net.prepare(params);
                for chunk in x.chunks(batch_size.max(1) * px) {
                    out.extend(net.logits(&w, chunk, &self.backend.threads));
                }
            }
            Weights::Host { params, .. } => {
                let w = cpu::model::Weights::prepare(mc, crate::params::seed_eight(params), &self.backend.threads);
                for chunk in x.chunks(batch_size.max(1) * px) {
                    out.extend(cpu::model::logits(mc, &w, chunk, &self.backend.threads));
                }
            }
            #[cfg(feature = "burn")]
            Weights::Burn { params, .. } => {
                let seed = self.net.is_none().then(|| crate::model::Params::from_list(mc, params));
                for chunk in x.chunks(batch_size.max(1) * px) {
                    let logits = match (&self.net, &seed) {
                        (Some(net), _) => crate::spec_graph::eval_logits(
                            net,
                            params,
                            crate::spec_graph::images(net, chunk, self.device()),
                        ),
                        (None, Some(p)) => p.forward(crate::graph::images(mc, chunk, self.device())?, None),
                        (None, None) => unreachable!("the seed's parameters are built when there is no spec"),
                    };
                    out.extend(crate::state::read_f32(logits.flatten::<1>(0, 1)).await?);
                }
            }
        }
        Ok(out)
    }

    /// Mean cross-entropy, accuracy and confusion matrix on a labeled set.
    pub async fn evaluate(&self, x: &[f32], y: &[u32], batch_size: usize) -> Result<EvalStats> {
        let k = self.config.model.classes;
        let n = check_images(&self.config.model, x)?;
        check_labels(&self.config.model, y, n)?;
        let logits = self.logits(x, batch_size).await?;
        let mut confusion = vec![0u32; k * k];
        let mut loss = 0f64;
        for (row, &label) in logits.chunks_exact(k).zip(y) {
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
            loss += lse - row[label as usize] as f64;
        }
        let predicted: Vec<u32> = argmax_rows(&logits, k).into_iter().map(|p| p as u32).collect();
        for (&p, &t) in predicted.iter().zip(y) {
            confusion[t as usize * k + p as usize] += 1;
        }
        let correct: u32 = (0..k).map(|i| confusion[i * k + i]).sum();
        Ok(EvalStats {
            loss: loss / n as f64,
            accuracy: correct as f64 / n as f64,
            count: n as u32,
            confusion,
            predicted,
        })
    }

    /// r_adv for the images `x` on the current weights, with the run's eps, xi and power
    /// iterations, dropout off and a direction d drawn from `seed` (so the same seed shows the
    /// same d as the model changes), with p(y|x), p(y|x + r_adv) and their KL per image.
    pub async fn vat_view(&self, x: &[f32], seed: u64) -> Result<VatView> {
        let mc = &self.config.model;
        let n = check_images(mc, x)?;
        let config = TrainConfig {
            model: ModelConfig {
                dropout: false,
                ..mc.clone()
            },
            vat: true,
            entmin: false,
            alpha: 1.0,
            ..self.config.clone()
        };
        let d = Rng::new(seed).normals(n * mc.pixels());
        let xn = self.normalized(x);
        let x = xn.as_ref();
        let r_adv = match (&self.net, &self.weights) {
            (Some(net), Weights::Host { params, .. }) => {
                let w = net.prepare(params);
                let clean = net.logits(&w, x, &self.backend.threads);
                cpu::net_step::r_adv(
                    &config,
                    net,
                    &w,
                    x,
                    &clean,
                    d,
                    cpu::net::Mode::Eval,
                    &[],
                    &self.backend.threads,
                )
            }
            #[cfg(feature = "burn")]
            (Some(net), Weights::Burn { params, .. }) => {
                use crate::spec_graph as sg;
                let device = self.device();
                let r = sg::eval_r_adv(
                    &config,
                    net,
                    params,
                    sg::images(net, x, device),
                    sg::images(net, &d, device),
                );
                crate::state::read_f32(r.flatten::<1>(0, 3)).await?
            }
            _ => self.seed_r_adv(&config, x, &d).await?,
        };
        let shifted: Vec<f32> = x.iter().zip(&r_adv).map(|(a, b)| a + b).collect();
        let k = mc.classes;
        let softmax = |mut l: Vec<f32>| {
            for row in l.chunks_exact_mut(k) {
                let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                row.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
            }
            l
        };
        let p = softmax(self.model_logits(x, 256).await?);
        let q = softmax(self.model_logits(&shifted, 256).await?);
        let kl = p
            .chunks_exact(k)
            .zip(q.chunks_exact(k))
            .map(|(p, q)| {
                p.iter()
                    .zip(q)
                    .filter(|(a, _)| **a > 0.0)
                    .map(|(a, b)| a * (a.ln() - b.max(1e-30).ln()))
                    .sum()
            })
            .collect();
        // Shown on the pixels: a perturbation of the standardised input times each channel's std.
        let r_adv = match &mc.normalization {
            Some(norm) => {
                let [_, h, w] = mc.input_shape();
                norm.unscale(&r_adv, h * w)
            }
            None => r_adv,
        };
        Ok(VatView { r_adv, p, q, kl })
    }

    /// The seed CNN's r_adv for `x` from direction `d`, through [`crate::inspect`] (either engine).
    async fn seed_r_adv(&self, config: &TrainConfig, x: &[f32], d: &[f32]) -> Result<Vec<f32>> {
        let weights: Vec<f32> = self.params().await?.concat();
        let labels = vec![0u32; x.len() / config.model.pixels()]; // the cross-entropy is not used
        let input = crate::inspect::InspectInput {
            weights: &weights,
            x,
            y: &labels,
            x_u: None,
            d: Some(d),
            masks_labeled: None,
            masks_unlabeled: None,
            lr: 1.0,
        };
        Ok(crate::inspect::inspect(config, &self.backend, input).await?.r_adv)
    }
}

/// A step's report from its four scalars and the labeled batch's logits.
fn stats(scalars: [f32; 4], logits: &[f32], y: &[u32], classes: usize) -> StepStats {
    let correct = argmax_rows(logits, classes)
        .iter()
        .zip(y)
        .filter(|(p, t)| **p == **t as usize)
        .count() as u32;
    StepStats {
        loss: scalars[0],
        ce: scalars[1],
        lds: scalars[2],
        entropy: scalars[3],
        correct,
        batch: y.len() as u32,
    }
}
