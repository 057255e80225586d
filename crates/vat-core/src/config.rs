//! Plain configuration structs. They cross the wasm boundary as JSON with camelCase keys, the
//! same names the TypeScript API, the CLI flags and the web form use.

use serde::{Deserialize, Serialize};

use crate::error::{Result, VatError};

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

    pub fn pixels(&self) -> usize {
        self.image_size * self.image_size
    }

    pub fn validate(&self) -> Result<()> {
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
            optimizer: OptimizerKind::Adadelta,
            rho: 0.95,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl TrainConfig {
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
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(VatError::InvalidConfig(format!(
                "alpha must be >= 0, got {}",
                self.alpha
            )));
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
