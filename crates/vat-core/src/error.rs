//! The crate's one error type. Each variant maps to a stable JS error `name`
//! (see [`VatError::name`]); messages say what the user should do.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum VatError {
    /// A caller passed arrays whose sizes or values do not fit the model or each other.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A configuration value is out of range or unknown.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The loss became NaN or infinite; training cannot continue from this state.
    #[error(
        "the loss is not finite ({0}) at step {1}; lower the learning rate or eps, or resume from the last checkpoint"
    )]
    NonFiniteLoss(String, u64),
    /// A weights or checkpoint file could not be read or does not fit the architecture.
    #[error("bad weights file: {0}")]
    WeightsFormat(String),
    /// The requested backend cannot start (no WebGPU adapter, backend not compiled in, ...).
    #[error("backend unavailable: {0}")]
    BackendUnavailable(String),
    /// The device failed while running (for example a lost WebGPU device).
    #[error("backend failure: {0}")]
    BackendFailure(String),
}

impl VatError {
    /// The stable `name` of the JS `Error` this becomes. Tests and callers match on this, not on
    /// the message.
    pub fn name(&self) -> &'static str {
        match self {
            VatError::InvalidInput(_) => "InvalidInputError",
            VatError::InvalidConfig(_) => "InvalidConfigError",
            VatError::NonFiniteLoss(..) => "NonFiniteLossError",
            VatError::WeightsFormat(_) => "WeightsFormatError",
            VatError::BackendUnavailable(_) => "BackendUnavailableError",
            VatError::BackendFailure(_) => "BackendFailureError",
        }
    }
}

pub type Result<T> = core::result::Result<T, VatError>;

#[cfg(target_family = "wasm")]
impl From<VatError> for wasm_bindgen::JsValue {
    fn from(err: VatError) -> Self {
        let js = js_sys::Error::new(&err.to_string());
        js.set_name(err.name());
        js.into()
    }
}
