//! The vat-core CPU backend as a native Node addon: the same surface as the wasm module
//! (`crates/vat-core/src/web.rs`), method for method, so `@vat/core` drives either through one
//! interface. Calls run synchronously on the caller's thread, which hands the work to the
//! trainer's rayon pool; the CPU backend never waits on a device, so its futures are ready at once.
//!
//! Errors reach JS as `Error`s whose `code` is the stable name of the `VatError`
//! (`InvalidConfigError`, ...); `@vat/core` turns them into its classes.

use napi::bindgen_prelude::{Float32Array, Uint8Array, Uint32Array};
use napi_derive::napi;
use pollster::block_on;
use vat_core::{VatError, web};

type Result<T> = core::result::Result<T, napi::Error<String>>;

fn js(err: VatError) -> napi::Error<String> {
    napi::Error::new(err.name().to_string(), err.to_string())
}

#[napi]
pub fn version() -> String {
    web::version()
}

/// Threads the CPU backend can use here (the machine's cores).
#[napi(js_name = "availableThreads")]
pub fn available_threads() -> u32 {
    web::available_threads()
}

/// See `modelPresets` in the wasm module.
#[napi(js_name = "modelPresets")]
pub fn model_presets() -> String {
    web::model_presets()
}

#[napi(js_name = "parseConfig")]
pub fn parse_config(config_json: String) -> Result<String> {
    web::parse_config(config_json).map_err(js)
}

/// See `resolveOptions` in the wasm module: the core's defaults applied to a run's options.
#[napi(js_name = "resolveOptions")]
pub fn resolve_options(options_json: String) -> Result<String> {
    web::resolve_options(options_json).map_err(js)
}

#[napi(object)]
pub struct StepStats {
    pub loss: f64,
    pub ce: f64,
    pub lds: f64,
    pub entropy: f64,
    pub correct: u32,
    pub batch: u32,
}

#[napi(object)]
pub struct EvalStats {
    pub loss: f64,
    pub accuracy: f64,
    pub count: u32,
    pub confusion: Uint32Array,
    pub predicted: Uint32Array,
}

#[napi(object)]
pub struct VatView {
    pub r_adv: Float32Array,
    pub p: Float32Array,
    pub q: Float32Array,
    pub kl: Float32Array,
}

#[napi(object)]
pub struct Inspection {
    pub logits: Float32Array,
    pub loss: f64,
    pub ce: f64,
    pub lds: f64,
    pub entropy: f64,
    pub r_adv: Float32Array,
    pub grads: Float32Array,
    pub updated: Float32Array,
    pub eval_logits: Float32Array,
}

/// A trainer on the CPU backend; see `VatTrainer` in the wasm module.
#[napi]
pub struct VatTrainer {
    inner: web::VatTrainer,
}

/// Starts `backend` (only "cpu" in this build) on `threads` threads (0: every core).
#[napi(js_name = "createTrainer")]
pub fn create_trainer(backend: String, config_json: String, threads: u32) -> Result<VatTrainer> {
    let inner = block_on(web::create_trainer(backend, config_json, threads)).map_err(js)?;
    Ok(VatTrainer { inner })
}

/// See `resumeTrainer` in the wasm module: a trainer restored from a checkpoint alone.
#[napi(js_name = "resumeTrainer")]
pub fn resume_trainer(
    backend: String,
    checkpoint: Uint8Array,
    overrides_json: String,
    allow_overrides: bool,
    threads: u32,
) -> Result<VatTrainer> {
    let inner = block_on(web::resume_trainer(
        backend,
        checkpoint.to_vec(),
        overrides_json,
        allow_overrides,
        threads,
    ))
    .map_err(js)?;
    Ok(VatTrainer { inner })
}

/// See `trainerFromWeights` in the wasm module.
#[napi(js_name = "trainerFromWeights")]
pub fn trainer_from_weights(backend: String, weights: Uint8Array, threads: u32) -> Result<VatTrainer> {
    let inner = block_on(web::trainer_from_weights(backend, weights.to_vec(), threads)).map_err(js)?;
    Ok(VatTrainer { inner })
}

#[napi]
impl VatTrainer {
    #[napi(getter, js_name = "resumedLoopState")]
    pub fn resumed_loop_state(&self) -> String {
        self.inner.resumed_loop_state()
    }

    #[napi(getter)]
    pub fn overridden(&self) -> String {
        self.inner.overridden()
    }

    #[napi(getter)]
    pub fn backend(&self) -> String {
        self.inner.backend()
    }

    #[napi(getter)]
    pub fn threads(&self) -> u32 {
        self.inner.threads()
    }

    #[napi(getter)]
    pub fn adapter(&self) -> String {
        self.inner.adapter()
    }

    #[napi(getter, js_name = "configJson")]
    pub fn config_json(&self) -> String {
        self.inner.config_json()
    }

    #[napi(getter)]
    pub fn step(&self) -> f64 {
        self.inner.step()
    }

    #[napi(js_name = "trainStep")]
    pub fn train_step(
        &mut self,
        x: Float32Array,
        y: Uint32Array,
        x_unlabeled: Option<Float32Array>,
        lr: f64,
    ) -> Result<StepStats> {
        let s = block_on(
            self.inner
                .train_step(x.to_vec(), y.to_vec(), x_unlabeled.map(|u| u.to_vec()), lr),
        )
        .map_err(js)?;
        Ok(StepStats {
            loss: s.loss as f64,
            ce: s.ce as f64,
            lds: s.lds as f64,
            entropy: s.entropy as f64,
            correct: s.correct,
            batch: s.batch,
        })
    }

    #[napi]
    pub fn evaluate(&self, x: Float32Array, y: Uint32Array, batch_size: u32) -> Result<EvalStats> {
        let e = block_on(self.inner.evaluate(x.to_vec(), y.to_vec(), batch_size as usize)).map_err(js)?;
        Ok(EvalStats {
            loss: e.loss,
            accuracy: e.accuracy,
            count: e.count,
            confusion: Uint32Array::new(e.confusion),
            predicted: Uint32Array::new(e.predicted),
        })
    }

    #[napi(js_name = "accumulateBatchNorm")]
    pub fn accumulate_batch_norm(&mut self, x: Float32Array) -> Result<()> {
        block_on(self.inner.accumulate_batch_norm(x.to_vec())).map_err(js)
    }

    #[napi(js_name = "applyBatchNorm")]
    pub fn apply_batch_norm(&mut self) -> Result<u32> {
        self.inner.apply_batch_norm().map_err(js)
    }

    #[napi(js_name = "vatView")]
    pub fn vat_view(&self, x: Float32Array, seed: f64) -> Result<VatView> {
        let v = block_on(self.inner.vat_view(x.to_vec(), seed)).map_err(js)?;
        Ok(VatView {
            r_adv: Float32Array::new(v.r_adv),
            p: Float32Array::new(v.p),
            q: Float32Array::new(v.q),
            kl: Float32Array::new(v.kl),
        })
    }

    #[napi]
    pub fn predict(&self, x: Float32Array) -> Result<Float32Array> {
        Ok(Float32Array::new(block_on(self.inner.predict(x.to_vec())).map_err(js)?))
    }

    #[napi(js_name = "exportWeights")]
    pub fn export_weights(&self) -> Result<Uint8Array> {
        Ok(block_on(self.inner.export_weights()).map_err(js)?.into())
    }

    #[napi(js_name = "importWeights")]
    pub fn import_weights(&mut self, bytes: Uint8Array) -> Result<()> {
        self.inner.import_weights(bytes.to_vec()).map_err(js)
    }

    #[napi(js_name = "exportCheckpoint")]
    pub fn export_checkpoint(&self, loop_state: String) -> Result<Uint8Array> {
        Ok(block_on(self.inner.export_checkpoint(loop_state)).map_err(js)?.into())
    }

    #[napi(js_name = "importCheckpoint")]
    pub fn import_checkpoint(&mut self, bytes: Uint8Array) -> Result<String> {
        self.inner.import_checkpoint(bytes.to_vec()).map_err(js)
    }
}

/// Every intermediate of one step; see `inspect` in the wasm module.
#[allow(clippy::too_many_arguments)]
#[napi]
pub fn inspect(
    backend: String,
    threads: u32,
    config_json: String,
    weights: Float32Array,
    x: Float32Array,
    y: Uint32Array,
    x_unlabeled: Option<Float32Array>,
    d: Option<Float32Array>,
    masks_labeled: Option<Float32Array>,
    masks_unlabeled: Option<Float32Array>,
    lr: f64,
) -> Result<Inspection> {
    let v = |a: Option<Float32Array>| a.map(|a| a.to_vec());
    let r = block_on(web::inspect(
        backend,
        threads,
        config_json,
        weights.to_vec(),
        x.to_vec(),
        y.to_vec(),
        v(x_unlabeled),
        v(d),
        v(masks_labeled),
        v(masks_unlabeled),
        lr,
    ))
    .map_err(js)?;
    Ok(Inspection {
        logits: r.logits.into(),
        loss: r.loss as f64,
        ce: r.ce as f64,
        lds: r.lds as f64,
        entropy: r.entropy as f64,
        r_adv: r.r_adv.into(),
        grads: r.grads.into(),
        updated: r.updated.into(),
        eval_logits: r.eval_logits.into(),
    })
}
