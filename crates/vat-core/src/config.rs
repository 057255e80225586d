//! Plain configuration structs. They cross the wasm boundary as JSON with camelCase keys, the
//! same names the TypeScript API, the CLI flags and the web form use.

use serde::{Deserialize, Serialize};

use crate::{
    error::{Result, VatError},
    spec::ModelSpec,
};

/// The seed's CNN: conv(f) 3x3, relu, conv(f) 3x3, relu, maxpool 2, [dropout], dense(hidden),
/// relu, [dropout], dense(classes). The defaults are the seed's; smaller values give the tiny
/// models that the finite-difference and golden tests use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Height and width of the (square, single-channel) input.
    pub image_size: usize,
    pub conv_filters: usize,
    pub hidden: usize,
    pub classes: usize,
    /// The seed's dropout: `dropoutConv` after the pool, `dropoutDense` after the hidden layer.
    pub dropout: bool,
    pub dropout_conv: f64,
    pub dropout_dense: f64,
    /// Any other model, as a spec ([`crate::spec`]): then the fields above other than
    /// `classes` (which must match the spec's) do not apply, and the spec engine trains it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<ModelSpec>,
    /// Per-channel standardisation of every input, `(x - mean[c]) / std[c]`, applied by the
    /// trainer before the model (so VAT perturbs the standardised input); absent: pixel / scale
    /// as the data gives it. Kept in the weights file's model_config like the rest of the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
}

/// Per-channel mean and standard deviation of the training images (after / pixel scale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// `x` (`[n, c, h, w]`) standardised per channel.
    pub fn apply(&self, x: &[f32], plane: usize) -> Vec<f32> {
        let c = self.mean.len();
        let mut out = x.to_vec();
        for (i, v) in out.iter_mut().enumerate() {
            let ch = (i / plane) % c;
            *v = (*v - self.mean[ch]) / self.std[ch];
        }
        out
    }

    /// A perturbation of the standardised input as a perturbation of the pixels: times std.
    pub fn unscale(&self, r: &[f32], plane: usize) -> Vec<f32> {
        let c = self.mean.len();
        r.iter()
            .enumerate()
            .map(|(i, v)| v * self.std[(i / plane) % c])
            .collect()
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            image_size: 28,
            conv_filters: 32,
            hidden: 128,
            classes: 10,
            dropout: false,
            dropout_conv: 0.25,
            dropout_dense: 0.5,
            spec: None,
            normalization: None,
        }
    }
}

impl ModelConfig {
    /// Side of the map after two valid 3x3 convolutions and a 2x2 max pool (floor).
    pub fn pooled_size(&self) -> usize {
        (self.image_size - 4) / 2
    }

    /// Width of the flattened pooled map, in (channel, row, column) order.
    pub fn flat_features(&self) -> usize {
        self.conv_filters * self.pooled_size() * self.pooled_size()
    }

    /// Values per example: `c * h * w` (the seed's CNN: one channel, `image_size` square).
    pub fn pixels(&self) -> usize {
        match &self.spec {
            Some(s) => s.input_len(),
            None => self.image_size * self.image_size,
        }
    }

    /// `[channels, height, width]` of one example.
    pub fn input_shape(&self) -> [usize; 3] {
        match &self.spec {
            Some(s) => s.input,
            None => [1, self.image_size, self.image_size],
        }
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(n) = &self.normalization {
            let c = self.input_shape()[0];
            if n.mean.len() != c || n.std.len() != c {
                return Err(VatError::InvalidConfig(format!(
                    "normalization needs a mean and a std for each of the {c} channels, got {} and {}",
                    n.mean.len(),
                    n.std.len()
                )));
            }
            if n.mean.iter().any(|m| !m.is_finite()) || n.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(VatError::InvalidConfig(format!(
                    "normalization needs finite means and positive stds, got {:?} and {:?}",
                    n.mean, n.std
                )));
            }
        }
        if let Some(spec) = &self.spec {
            spec.validate()?;
            if spec.classes != self.classes {
                return Err(VatError::InvalidConfig(format!(
                    "classes is {} but the model spec has {}; they must match",
                    self.classes, spec.classes
                )));
            }
            return Ok(());
        }
        if self.image_size < 6 {
            return Err(VatError::InvalidConfig(format!(
                "imageSize must be at least 6 (two 3x3 convolutions and a 2x2 pool), got {}",
                self.image_size
            )));
        }
        if self.conv_filters == 0 || self.hidden == 0 || self.classes < 2 {
            return Err(VatError::InvalidConfig(
                "convFilters and hidden must be positive and classes at least 2".into(),
            ));
        }
        for (name, p) in [("dropoutConv", self.dropout_conv), ("dropoutDense", self.dropout_dense)] {
            if !(0.0..1.0).contains(&p) {
                return Err(VatError::InvalidConfig(format!("{name} must be in [0, 1), got {p}")));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// The seed's optimiser (Keras defaults: lr 1.0, rho 0.95, epsilon 1e-7).
    Adadelta,
    /// The paper's optimiser (Kingma & Ba; beta1 0.9, beta2 0.999, epsilon 1e-7 as in Keras/tfjs).
    Adam,
}

/// Everything that shapes one training step. The learning rate is not here: the caller passes
/// it with each step, so that schedules (the paper's per-epoch decay) live with the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TrainConfig {
    pub model: ModelConfig,
    /// Seeds weight init, dropout masks and the VAT direction d.
    pub seed: u64,
    /// Add the VAT term alpha * LDS to the loss.
    pub vat: bool,
    /// Norm of r_adv, per sample (the paper's epsilon).
    pub eps: f64,
    /// Norm of the probe direction xi * d in the power iteration.
    pub xi: f64,
    /// Rounds of the power iteration (the paper's Ip; 1 suffices in its experiments).
    pub power_iterations: usize,
    /// Weight of LDS in the total loss.
    pub alpha: f64,
    /// Add the conditional entropy of p(y|x) on the VAT batch (the paper's VAT+EntMin).
    pub entmin: bool,
    /// Weight of that entropy in the total loss (the paper's VAT+EntMin: 1).
    pub entmin_weight: f64,
    pub optimizer: OptimizerKind,
    pub rho: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            seed: 42,
            vat: true,
            eps: 1.0,
            xi: 10.0,
            power_iterations: 1,
            alpha: 1.0,
            entmin: false,
            entmin_weight: 1.0,
            optimizer: OptimizerKind::Adadelta,
            rho: 0.95,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl TrainConfig {
    /// This config with every trainer setting that `options` gives replaced (loop settings in
    /// `options` are ignored), checked.
    pub fn with_overrides(&self, options: &Options) -> Result<Self> {
        let given = serde_json::to_value(options).expect("serialises");
        let mut v = serde_json::to_value(self).expect("serialises");
        let model_keys: Vec<String> = v["model"].as_object().expect("an object").keys().cloned().collect();
        if options.model.is_some() || options.model_spec.is_some() {
            // The model asked for, built for this config's inputs: compared with the
            // checkpoint's like any other setting.
            let asked = Options {
                model: options.model.clone(),
                model_spec: options.model_spec.clone(),
                input_shape: Some(self.model.input_shape()),
                classes: Some(self.model.classes),
                ..Default::default()
            }
            .spec()?;
            v["model"]["spec"] = serde_json::to_value(asked).expect("serialises");
        }
        if let Some(n) = &options.normalization {
            // Like the spec, present in the model only when set: compared as a model setting.
            v["model"]["normalization"] = serde_json::to_value(n).expect("serialises");
        }
        for (k, value) in given.as_object().expect("an object") {
            if value.is_null() || ["model", "modelSpec", "inputShape", "normalization"].contains(&k.as_str()) {
                continue;
            }
            if model_keys.contains(k) {
                v["model"][k] = value.clone();
            } else if v.get(k).is_some() {
                v[k] = value.clone();
            }
        }
        let c: Self = serde_json::from_value(v).map_err(|e| VatError::InvalidConfig(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    pub fn from_json(json: &str) -> Result<Self> {
        let config: Self =
            serde_json::from_str(json).map_err(|e| VatError::InvalidConfig(format!("{e} (in {json})")))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        let positive = [("eps", self.eps), ("xi", self.xi), ("epsilon", self.epsilon)];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(VatError::InvalidConfig(format!(
                    "{name} must be a positive number, got {v}"
                )));
            }
        }
        for (name, v) in [("alpha", self.alpha), ("entminWeight", self.entmin_weight)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(VatError::InvalidConfig(format!("{name} must be >= 0, got {v}")));
            }
        }
        for (name, v) in [("rho", self.rho), ("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(VatError::InvalidConfig(format!("{name} must be in [0, 1), got {v}")));
            }
        }
        if self.power_iterations > 16 {
            return Err(VatError::InvalidConfig(format!(
                "powerIterations must be at most 16, got {} (the paper uses 1)",
                self.power_iterations
            )));
        }
        Ok(())
    }
}

/// Everything about a run that is not the step: the loop's epochs and batches, the data split,
/// the learning-rate schedule, evaluation and checkpoints. The defaults are the seed's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LoopConfig {
    pub epochs: u32,
    /// Labeled examples per step (the seed's 128).
    pub batch_size: u32,
    /// Unlabeled examples per step in semi-supervised mode (the paper's 250).
    pub unlabeled_batch_size: u32,
    /// Semi-supervised: keep this many labels (balanced per class); VAT runs on unlabeled batches.
    pub labeled: Option<u32>,
    /// Use only this many training examples (after the validation hold-out).
    pub train_size: Option<u32>,
    /// Hold out this many training examples for validation; 0 validates on the test set, as the
    /// seed did.
    pub val_size: u32,
    /// The learning rate; `None` takes the optimiser's ([`LoopConfig::default_lr`]).
    pub lr: Option<f64>,
    /// Multiply the learning rate by this after every epoch.
    pub lr_decay: f64,
    pub eval_batch_size: u32,
    /// Write a checkpoint at least this often, in seconds (and at every epoch end).
    pub checkpoint_seconds: f64,
    /// After the last epoch, re-estimate batch norm's running statistics over the training
    /// images (the official VAT code's last step; [`crate::train::Trainer::accumulate_bn`]).
    pub reestimate_bn: bool,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 128,
            unlabeled_batch_size: 250,
            labeled: None,
            train_size: None,
            val_size: 5000,
            lr: None,
            lr_decay: 1.0,
            eval_batch_size: 250,
            checkpoint_seconds: 60.0,
            reestimate_bn: false,
        }
    }
}

impl LoopConfig {
    /// The optimiser's learning rate when none is given: Keras's 1.0 for Adadelta (the seed ran
    /// it), the paper's 0.002 for Adam.
    pub fn default_lr(optimizer: OptimizerKind) -> f64 {
        match optimizer {
            OptimizerKind::Adadelta => 1.0,
            OptimizerKind::Adam => 0.002,
        }
    }

    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("epochs", self.epochs),
            ("batchSize", self.batch_size),
            ("unlabeledBatchSize", self.unlabeled_batch_size),
            ("evalBatchSize", self.eval_batch_size),
        ] {
            if v == 0 {
                return Err(VatError::InvalidConfig(format!(
                    "{name} must be a positive integer, got 0"
                )));
            }
        }
        for (name, v) in [("labeled", self.labeled), ("trainSize", self.train_size)] {
            if v == Some(0) {
                return Err(VatError::InvalidConfig(format!(
                    "{name} must be a positive integer, got 0"
                )));
            }
        }
        if let Some(lr) = self.lr
            && !(lr.is_finite() && lr > 0.0)
        {
            return Err(VatError::InvalidConfig(format!(
                "lr must be a positive number, got {lr}"
            )));
        }
        if !(self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return Err(VatError::InvalidConfig(format!(
                "lrDecay must be in (0, 1], got {}",
                self.lr_decay
            )));
        }
        if !(self.checkpoint_seconds.is_finite() && self.checkpoint_seconds > 0.0) {
            return Err(VatError::InvalidConfig(format!(
                "checkpointSeconds must be a positive number, got {}",
                self.checkpoint_seconds
            )));
        }
        Ok(())
    }
}

/// A run's options as users write them (the TypeScript API, the CLI flags and the web form use
/// these names): flat, every field optional. [`Options::resolve`] fills in the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Options {
    /// A model preset by name ([`crate::spec::PRESETS`]); `seed-cnn` (the default) is the seed's CNN.
    pub model: Option<String>,
    /// A model given as a spec, instead of a preset.
    pub model_spec: Option<ModelSpec>,
    /// `[channels, height, width]` of one example, which a preset is built for (default
    /// `[1, imageSize, imageSize]`).
    pub input_shape: Option<[usize; 3]>,
    /// Per-channel standardisation of the inputs (the CLI's `--normalize standardize` computes it
    /// from the training images).
    pub normalization: Option<Normalization>,
    pub image_size: Option<usize>,
    pub conv_filters: Option<usize>,
    pub hidden: Option<usize>,
    pub classes: Option<usize>,
    pub dropout: Option<bool>,
    pub dropout_conv: Option<f64>,
    pub dropout_dense: Option<f64>,
    pub seed: Option<u64>,
    pub vat: Option<bool>,
    pub eps: Option<f64>,
    pub xi: Option<f64>,
    pub power_iterations: Option<usize>,
    pub alpha: Option<f64>,
    pub entmin: Option<bool>,
    pub entmin_weight: Option<f64>,
    pub optimizer: Option<OptimizerKind>,
    pub rho: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub epsilon: Option<f64>,
    pub epochs: Option<u32>,
    pub batch_size: Option<u32>,
    pub unlabeled_batch_size: Option<u32>,
    pub labeled: Option<u32>,
    pub train_size: Option<u32>,
    pub val_size: Option<u32>,
    pub lr: Option<f64>,
    pub lr_decay: Option<f64>,
    pub eval_batch_size: Option<u32>,
    pub checkpoint_seconds: Option<f64>,
    pub reestimate_bn: Option<bool>,
}

/// A run's options with every default filled in and every value checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    pub train: TrainConfig,
    /// `lr` is always set here: the optimiser's default when none was given.
    #[serde(rename = "loop")]
    pub run: LoopConfig,
}

impl Options {
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| VatError::InvalidConfig(format!("{e} (in {json})")))
    }

    /// The model spec these options ask for: `None` for the seed's CNN (no model, or
    /// `seed-cnn`), a preset built for `inputShape` and `classes`, or the spec given.
    pub fn spec(&self) -> Result<Option<ModelSpec>> {
        let m = ModelConfig::default();
        let classes = self.classes.unwrap_or(m.classes);
        let size = self.image_size.unwrap_or(m.image_size);
        let input = self.input_shape.unwrap_or([1, size, size]);
        match (&self.model_spec, self.model.as_deref()) {
            (Some(_), Some(_)) => Err(VatError::InvalidConfig(
                "give a preset (model) or a spec (modelSpec), not both".into(),
            )),
            (Some(s), None) => {
                s.validate()?;
                if self.input_shape.is_some_and(|i| i != s.input) {
                    return Err(VatError::InvalidConfig(format!(
                        "the model spec takes {:?} inputs, but the data is {input:?}",
                        s.input
                    )));
                }
                Ok(Some(s.clone()))
            }
            (None, None | Some("seed-cnn")) => Ok(None),
            (None, Some(name)) => ModelSpec::preset(name, input, classes).map(Some),
        }
    }

    /// The one place defaults are applied: the seed's defaults ([`TrainConfig::default`],
    /// [`LoopConfig::default`]), then these options, then the optimiser's learning rate.
    pub fn resolve(&self) -> Result<Resolved> {
        let (t, m, l) = (TrainConfig::default(), ModelConfig::default(), LoopConfig::default());
        let spec = self.spec()?;
        let image_size = match (&spec, self.input_shape) {
            (None, Some([c, h, w])) if c != 1 || h != w => {
                return Err(VatError::InvalidConfig(format!(
                    "the seed's CNN takes square single-channel images, and these are {c}x{h}x{w}; pick a model that takes them with the model option (--model in the CLI: {}, or a model spec's JSON file)",
                    crate::spec::PRESETS[1..]
                        .iter()
                        .map(|p| p.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            (None, Some([_, h, _])) => h,
            _ => self.image_size.unwrap_or(m.image_size),
        };
        let model = ModelConfig {
            image_size,
            conv_filters: self.conv_filters.unwrap_or(m.conv_filters),
            hidden: self.hidden.unwrap_or(m.hidden),
            classes: self.classes.or(spec.as_ref().map(|s| s.classes)).unwrap_or(m.classes),
            dropout: self.dropout.unwrap_or(m.dropout),
            dropout_conv: self.dropout_conv.unwrap_or(m.dropout_conv),
            dropout_dense: self.dropout_dense.unwrap_or(m.dropout_dense),
            spec,
            normalization: self.normalization.clone(),
        };
        let train = TrainConfig {
            model,
            seed: self.seed.unwrap_or(t.seed),
            vat: self.vat.unwrap_or(t.vat),
            eps: self.eps.unwrap_or(t.eps),
            xi: self.xi.unwrap_or(t.xi),
            power_iterations: self.power_iterations.unwrap_or(t.power_iterations),
            alpha: self.alpha.unwrap_or(t.alpha),
            entmin: self.entmin.unwrap_or(t.entmin),
            entmin_weight: self.entmin_weight.unwrap_or(t.entmin_weight),
            optimizer: self.optimizer.unwrap_or(t.optimizer),
            rho: self.rho.unwrap_or(t.rho),
            beta1: self.beta1.unwrap_or(t.beta1),
            beta2: self.beta2.unwrap_or(t.beta2),
            epsilon: self.epsilon.unwrap_or(t.epsilon),
        };
        let run = LoopConfig {
            epochs: self.epochs.unwrap_or(l.epochs),
            batch_size: self.batch_size.unwrap_or(l.batch_size),
            unlabeled_batch_size: self.unlabeled_batch_size.unwrap_or(l.unlabeled_batch_size),
            labeled: self.labeled.or(l.labeled),
            train_size: self.train_size.or(l.train_size),
            val_size: self.val_size.unwrap_or(l.val_size),
            lr: Some(self.lr.unwrap_or(LoopConfig::default_lr(train.optimizer))),
            lr_decay: self.lr_decay.unwrap_or(l.lr_decay),
            eval_batch_size: self.eval_batch_size.unwrap_or(l.eval_batch_size),
            checkpoint_seconds: self.checkpoint_seconds.unwrap_or(l.checkpoint_seconds),
            reestimate_bn: self.reestimate_bn.unwrap_or(l.reestimate_bn),
        };
        train.validate()?;
        run.validate()?;
        Ok(Resolved { train, run })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_defaults_are_the_seed_settings() {
        let c = TrainConfig::from_json("{}").unwrap();
        assert_eq!(c, TrainConfig::default());
        assert_eq!((c.eps, c.xi, c.power_iterations), (1.0, 10.0, 1));
        assert_eq!(c.model.flat_features(), 32 * 12 * 12);
    }

    #[test]
    fn resolving_fills_in_the_optimisers_learning_rate_and_keeps_what_was_given() {
        let adam = Options {
            optimizer: Some(OptimizerKind::Adam),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(adam.run.lr, Some(0.002));
        let seed = Options::default().resolve().unwrap();
        assert_eq!((seed.train, seed.run.lr), (TrainConfig::default(), Some(1.0)));
        let given = Options {
            lr: Some(0.3),
            seed: Some(7),
            epochs: Some(3),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!((given.run.lr, given.train.seed, given.run.epochs), (Some(0.3), 7, 3));
    }

    #[test]
    fn resolving_rejects_unknown_names_and_values_no_run_can_use() {
        assert!(matches!(
            Options::from_json(r#"{"epoch": 2}"#),
            Err(VatError::InvalidConfig(_))
        ));
        for bad in [
            r#"{"epochs": 0}"#,
            r#"{"lr": -1}"#,
            r#"{"lrDecay": 1.5}"#,
            r#"{"eps": 0}"#,
            r#"{"trainSize": 0}"#,
        ] {
            let r = Options::from_json(bad).and_then(|o| o.resolve());
            assert!(matches!(r, Err(VatError::InvalidConfig(_))), "{bad}: {r:?}");
        }
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(matches!(
            TrainConfig::from_json(r#"{"epz": 1}"#),
            Err(VatError::InvalidConfig(_))
        ));
        assert!(matches!(
            TrainConfig::from_json(r#"{"eps": -1}"#),
            Err(VatError::InvalidConfig(_))
        ));
        assert!(matches!(
            TrainConfig::from_json(r#"{"optimizer": "sgd"}"#),
            Err(VatError::InvalidConfig(_))
        ));
        assert!(matches!(
            TrainConfig::from_json(r#"{"model": {"imageSize": 4}}"#),
            Err(VatError::InvalidConfig(_))
        ));
    }
}
