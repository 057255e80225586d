//! The model's eight parameters as host arrays: their names, shapes and initialisation. Shared
//! by both implementations of the model (the CPU kernels and the burn graph) and by the
//! safetensors files, so the same seed gives the same starting weights everywhere.

use crate::{config::ModelConfig, rng::Rng};

/// Parameter names, in the order every list in this crate uses. The layouts are PyTorch's, so
/// that the safetensors file loads into `torch.nn` directly:
/// conv weights `[out, in, 3, 3]`, dense weights `[out, in]`, biases `[out]`.
pub const PARAM_NAMES: [&str; 8] = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
];

/// The eight parameters, flat, in [`PARAM_NAMES`] order.
pub type HostParams = [Vec<f32>; 8];

/// Shapes of the eight parameters, in [`PARAM_NAMES`] order.
pub fn param_shapes(c: &ModelConfig) -> [Vec<usize>; 8] {
    let f = c.conv_filters;
    [
        vec![f, 1, 3, 3],
        vec![f],
        vec![f, f, 3, 3],
        vec![f],
        vec![c.hidden, c.flat_features()],
        vec![c.hidden],
        vec![c.classes, c.hidden],
        vec![c.classes],
    ]
}

/// Glorot-uniform kernels and zero biases, as Keras initialises the seed model.
pub fn init_params(config: &ModelConfig, rng: &mut Rng) -> HostParams {
    param_shapes(config).map(|shape| {
        let n: usize = shape.iter().product();
        match shape.len() {
            1 => vec![0.0; n],
            // Receptive field 3x3 for conv kernels (fan = channels * 9), 1 for dense.
            _ => {
                let field: usize = shape[2..].iter().product();
                rng.glorot_uniform(n, shape[1] * field, shape[0] * field)
            }
        }
    })
}

/// Splits the eight parameters concatenated in [`PARAM_NAMES`] order (the parity tests' format).
pub fn split_params(config: &ModelConfig, flat: &[f32]) -> crate::error::Result<HostParams> {
    let sizes = param_shapes(config).map(|s| s.iter().product::<usize>());
    let total: usize = sizes.iter().sum();
    if flat.len() != total {
        return Err(crate::error::VatError::InvalidInput(format!(
            "weights must hold {total} values (the eight parameters concatenated), got {}",
            flat.len()
        )));
    }
    let mut at = 0;
    Ok(sizes.map(|n| {
        at += n;
        flat[at - n..at].to_vec()
    }))
}
