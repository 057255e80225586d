//! The wasm-bindgen surface: a handle class with an async factory, typed results, and errors
//! that reach JS as `Error`s with a stable `name`. Without the wasm target the attributes
//! vanish and `cargo test` calls these very functions.

#[cfg(target_family = "wasm")]
use wasm_bindgen::prelude::*;

use crate::{
    backend::{Backend, BackendKind},
    config::TrainConfig,
    error::Result,
    inspect::{self, InspectInput, Inspection},
    state,
    train::{EvalStats, StepStats, Trainer},
};

/// `initThreadPool(n)` of the threaded module: starts n Web Workers over the shared memory.
#[cfg(all(target_family = "wasm", feature = "threads"))]
pub use wasm_bindgen_rayon::init_thread_pool;

#[cfg_attr(target_family = "wasm", wasm_bindgen(start))]
pub fn start() {
    #[cfg(target_family = "wasm")]
    console_error_panic_hook::set_once();
}

/// The crate version, for run.json and bug reports.
#[cfg_attr(target_family = "wasm", wasm_bindgen)]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").into()
}

/// A trainer bound to one device. Create with [`create_trainer`]; call `free()` to release
/// its memory (the TypeScript wrapper's `dispose()`).
#[cfg_attr(target_family = "wasm", wasm_bindgen)]
pub struct VatTrainer {
    inner: Trainer,
    /// Set by [`resume_trainer`]: the checkpoint's loop state and the settings the resume changed.
    resumed: Option<(String, Vec<String>)>,
}

/// Brings the WebGPU backend up and returns wgpu's line for its adapter. wgpu requests the
/// adapter and the device once per process and every later trainer shares them, so the adapter
/// this reports is the one that trains. (The TypeScript side reads that same adapter's details
/// as wgpu requests it: packages/core/src/backend.ts.) A build without the `webgpu` feature
/// fails with BackendUnavailableError.
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = startWebGpu))]
pub async fn start_webgpu() -> Result<String> {
    Ok(Backend::start(BackendKind::WebGpu, 1).await?.adapter)
}

/// Starts `backend` ("cpu", "burn-cpu" or "webgpu") on `threads` threads (0: every core; only
/// `cpu` takes more than 1) and initialises the model from `config_json` (a JSON
/// `TrainConfig`; omitted keys take the seed's defaults).
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = createTrainer))]
pub async fn create_trainer(backend: String, config_json: String, threads: u32) -> Result<VatTrainer> {
    let kind: BackendKind = backend.parse()?;
    let config = TrainConfig::from_json(&config_json)?;
    let backend = Backend::start(kind, threads as usize).await?;
    Ok(VatTrainer {
        inner: Trainer::new(config, backend)?,
        resumed: None,
    })
}

/// Restores a trainer from a checkpoint alone: its config, weights, optimiser state, step count
/// and RNG state. `overrides_json` holds flat options (as `resolveOptions` takes) the caller asked
/// for; one that differs from the checkpoint's is refused, naming it, unless `allow_overrides`
/// and it is one a resume may change (the VAT term's). `resumedLoopState` then holds the
/// checkpoint's loop state and `overridden` the names changed.
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = resumeTrainer))]
pub async fn resume_trainer(
    backend: String,
    checkpoint: Vec<u8>,
    overrides_json: String,
    allow_overrides: bool,
    threads: u32,
) -> Result<VatTrainer> {
    let kind: BackendKind = backend.parse()?;
    let overrides = crate::config::Options::from_json(&overrides_json)?;
    let backend = Backend::start(kind, threads as usize).await?;
    let (inner, loop_state, changed) = Trainer::from_checkpoint(&checkpoint, backend, &overrides, allow_overrides)?;
    Ok(VatTrainer {
        inner,
        resumed: Some((loop_state, changed)),
    })
}

/// A trainer holding the weights of a weights file (or checkpoint), for evaluation and prediction:
/// the model is the one the file declares, checked against its tensors before it is built.
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = trainerFromWeights))]
pub async fn trainer_from_weights(backend: String, weights: Vec<u8>, threads: u32) -> Result<VatTrainer> {
    let kind: BackendKind = backend.parse()?;
    let model = state::weights_model(&weights)?;
    let params = state::import_weights(&weights, &model)?;
    let backend = Backend::start(kind, threads as usize).await?;
    let mut inner = Trainer::new(
        TrainConfig {
            model,
            ..TrainConfig::default()
        },
        backend,
    )?;
    inner.restore(params, None);
    Ok(VatTrainer { inner, resumed: None })
}

/// How many threads this build's CPU backend can use (1 without threads).
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = availableThreads))]
pub fn available_threads() -> u32 {
    crate::cpu::par::Threads::available() as u32
}

#[cfg_attr(target_family = "wasm", wasm_bindgen)]
impl VatTrainer {
    /// "cpu" or "webgpu".
    #[cfg_attr(target_family = "wasm", wasm_bindgen(getter))]
    pub fn backend(&self) -> String {
        self.inner.backend.kind.as_str().into()
    }

    /// Threads the CPU kernels run on (1 on the burn backends).
    #[cfg_attr(target_family = "wasm", wasm_bindgen(getter))]
    pub fn threads(&self) -> u32 {
        self.inner.backend.threads.count() as u32
    }

    /// The adapter, as wgpu describes it (or the CPU backend's name).
    #[cfg_attr(target_family = "wasm", wasm_bindgen(getter))]
    pub fn adapter(&self) -> String {
        self.inner.backend.adapter.clone()
    }

    /// The full config with defaults filled in, as JSON.
    #[cfg_attr(target_family = "wasm", wasm_bindgen(getter, js_name = configJson))]
    pub fn config_json(&self) -> String {
        serde_json::to_string(&self.inner.config).expect("config serialises")
    }

    /// The loop state of the checkpoint this trainer was resumed from (`resumeTrainer`), or "".
    #[cfg_attr(target_family = "wasm", wasm_bindgen(getter, js_name = resumedLoopState))]
    pub fn resumed_loop_state(&self) -> String {
        self.resumed.as_ref().map(|r| r.0.clone()).unwrap_or_default()
    }

    /// The settings `resumeTrainer` changed from the checkpoint's, as a JSON array of names.
    #[cfg_attr(target_family = "wasm", wasm_bindgen(getter))]
    pub fn overridden(&self) -> String {
        serde_json::to_string(&self.resumed.as_ref().map(|r| r.1.clone()).unwrap_or_default()).expect("serialises")
    }

    /// Optimiser steps taken so far (restored by `importCheckpoint`).
    #[cfg_attr(target_family = "wasm", wasm_bindgen(getter))]
    pub fn step(&self) -> f64 {
        self.inner.step() as f64
    }

    /// One optimiser step. `x`: n images of h*w pixels in [0, 1], flat; `y`: n labels;
    /// `xUnlabeled`: the semi-supervised VAT batch, or undefined for the seed's supervised VAT.
    #[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = trainStep))]
    pub async fn train_step(
        &mut self,
        x: Vec<f32>,
        y: Vec<u32>,
        x_unlabeled: Option<Vec<f32>>,
        lr: f64,
    ) -> Result<StepStats> {
        self.inner.train_step(&x, &y, x_unlabeled.as_deref(), lr).await
    }

    /// Mean CE, accuracy and confusion matrix, without dropout.
    #[cfg_attr(target_family = "wasm", wasm_bindgen)]
    pub async fn evaluate(&self, x: Vec<f32>, y: Vec<u32>, batch_size: usize) -> Result<EvalStats> {
        self.inner.evaluate(&x, &y, batch_size).await
    }

    /// Adds a batch's batch norm statistics to the estimate `applyBatchNorm` writes as the
    /// running statistics (after training: pass the training images in batches).
    #[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = accumulateBatchNorm))]
    pub async fn accumulate_batch_norm(&mut self, x: Vec<f32>) -> Result<()> {
        self.inner.accumulate_bn(&x).await
    }

    /// Writes the gathered statistics as batch norm's running statistics; returns the images counted.
    #[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = applyBatchNorm))]
    pub fn apply_batch_norm(&mut self) -> Result<u32> {
        Ok(self.inner.apply_bn_estimate()? as u32)
    }

    /// The adversarial direction on the live weights (dropout off, d drawn from `seed`), with
    /// p(y|x), p(y|x + r_adv) and their KL, for the web demo's VAT view.
    #[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = vatView))]
    pub async fn vat_view(&self, x: Vec<f32>, seed: f64) -> Result<crate::train::VatView> {
        self.inner.vat_view(&x, seed as u64).await
    }

    /// Class probabilities, row-major `[n, classes]`.
    #[cfg_attr(target_family = "wasm", wasm_bindgen)]
    pub async fn predict(&self, x: Vec<f32>) -> Result<Vec<f32>> {
        let k = self.inner.config.model.classes;
        let mut logits = self.inner.logits(&x, 256).await?;
        for row in logits.chunks_exact_mut(k) {
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
            row.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
        }
        Ok(logits)
    }

    /// The weights as a safetensors file (layout in the README).
    #[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = exportWeights))]
    pub async fn export_weights(&self) -> Result<Vec<u8>> {
        state::export_weights(&self.inner.params().await?, &self.inner.config.model)
    }

    /// Replaces the weights from a safetensors weights file or checkpoint. The optimiser state
    /// is left as it is.
    #[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = importWeights))]
    pub fn import_weights(&mut self, bytes: Vec<u8>) -> Result<()> {
        let params = state::import_weights(&bytes, &self.inner.config.model)?;
        self.inner.restore(params, None);
        Ok(())
    }

    /// Weights, optimiser state, step count and RNG state, as safetensors. `loopState` is
    /// stored alongside verbatim (the caller's epoch and batch position).
    #[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = exportCheckpoint))]
    pub async fn export_checkpoint(&self, loop_state: String) -> Result<Vec<u8>> {
        let t = &self.inner;
        let (params, opt) = t.snapshot().await?;
        state::export_checkpoint(&params, &opt, t.rng.state(), &t.config, &loop_state)
    }

    /// Restores everything `exportCheckpoint` wrote and returns its `loopState`; the next step
    /// continues the same run.
    #[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = importCheckpoint))]
    pub fn import_checkpoint(&mut self, bytes: Vec<u8>) -> Result<String> {
        let ck = state::import_checkpoint(&bytes, &self.inner.config)?;
        self.inner.restore(ck.params, Some(ck.opt));
        self.inner.rng = crate::rng::Rng::from_state(ck.rng_state);
        Ok(ck.loop_state)
    }
}

/// Runs one step's forward and backward passes on given weights with injected randomness and
/// returns every intermediate (see [`crate::inspect`]). Used by the parity tests.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(target_family = "wasm", wasm_bindgen)]
pub async fn inspect(
    backend: String,
    threads: u32,
    config_json: String,
    weights: Vec<f32>,
    x: Vec<f32>,
    y: Vec<u32>,
    x_unlabeled: Option<Vec<f32>>,
    d: Option<Vec<f32>>,
    masks_labeled: Option<Vec<f32>>,
    masks_unlabeled: Option<Vec<f32>>,
    lr: f64,
) -> Result<Inspection> {
    let kind: BackendKind = backend.parse()?;
    let config = TrainConfig::from_json(&config_json)?;
    let backend = Backend::start(kind, threads as usize).await?;
    inspect::inspect(
        &config,
        &backend,
        InspectInput {
            weights: &weights,
            x: &x,
            y: &y,
            x_u: x_unlabeled.as_deref(),
            d: d.as_deref(),
            masks_labeled: masks_labeled.as_deref(),
            masks_unlabeled: masks_unlabeled.as_deref(),
            lr,
        },
    )
    .await
}

/// With the `profile` feature: seconds per kind of CPU-kernel work since the last call, as JSON
/// (`[["ConvForward", 0.12], ...]`); empty without it.
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = profileTake))]
pub fn profile_take() -> String {
    let v: Vec<(String, f64)> = crate::cpu::profile::take()
        .into_iter()
        .map(|(op, s)| (format!("{op:?}"), s))
        .collect();
    serde_json::to_string(&v).expect("serialises")
}

/// Resolves a run's options (flat JSON with the names the TypeScript API, the CLI flags and the
/// web form use) against the core's defaults, and checks them: the one place defaults are
/// applied. Returns `{"train": <TrainConfig>, "loop": <LoopConfig>}` with every field set.
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = resolveOptions))]
pub fn resolve_options(options_json: String) -> Result<String> {
    let resolved = crate::config::Options::from_json(&options_json)?.resolve()?;
    Ok(serde_json::to_string(&resolved).expect("config serialises"))
}

/// The model presets (`crate::spec::PRESETS`) as JSON: `[{"name": ..., "description": ...}]`.
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = modelPresets))]
pub fn model_presets() -> String {
    let list: Vec<serde_json::Value> = crate::spec::PRESETS
        .iter()
        .map(|(name, description)| serde_json::json!({ "name": name, "description": description }))
        .collect();
    serde_json::to_string(&list).expect("presets serialise")
}

/// Fails with a typed error; lets the JS side test that errors cross the boundary intact.
#[cfg_attr(target_family = "wasm", wasm_bindgen(js_name = parseConfig))]
pub fn parse_config(config_json: String) -> Result<String> {
    let c = TrainConfig::from_json(&config_json)?;
    Ok(serde_json::to_string(&c).expect("config serialises"))
}
