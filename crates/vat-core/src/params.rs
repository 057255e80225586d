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

/// The model's tensors as flat host arrays, in [`param_names`] order: the seed's eight, or a
/// spec's parameters and batch norm buffers ([`crate::spec::ModelSpec::params`]).
pub type HostParams = Vec<Vec<f32>>;

/// The names of the model's tensors: [`PARAM_NAMES`] for the seed's CNN.
pub fn param_names(c: &ModelConfig) -> Vec<String> {
    match &c.spec {
        Some(s) => s.params().into_iter().map(|p| p.name).collect(),
        None => PARAM_NAMES.iter().map(|n| n.to_string()).collect(),
    }
}

/// Shapes of the model's tensors, in [`param_names`] order.
pub fn param_shapes(c: &ModelConfig) -> Vec<Vec<usize>> {
    if let Some(s) = &c.spec {
        return s.params().into_iter().map(|p| p.shape).collect();
    }
    let f = c.conv_filters;
    vec![
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
/// A spec's tensors are initialised by [`crate::cpu::net::Net::init`], which draws the same
/// numbers for the seed's spec.
pub fn init_params(config: &ModelConfig, rng: &mut Rng) -> HostParams {
    if let Some(s) = &config.spec {
        let net = crate::cpu::net::Net::new(s).expect("a validated spec");
        return net.init(rng);
    }
    param_shapes(config)
        .into_iter()
        .map(|shape| {
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
        .collect()
}

/// Splits the tensors concatenated in [`param_names`] order (the parity tests' format).
pub fn split_params(config: &ModelConfig, flat: &[f32]) -> crate::error::Result<HostParams> {
    let sizes: Vec<usize> = param_shapes(config)
        .iter()
        .map(|s| s.iter().product::<usize>())
        .collect();
    let total: usize = sizes.iter().sum();
    if flat.len() != total {
        return Err(crate::error::VatError::InvalidInput(format!(
            "weights must hold {total} values (the model's tensors concatenated), got {}",
            flat.len()
        )));
    }
    let mut at = 0;
    Ok(sizes
        .into_iter()
        .map(|n| {
            at += n;
            flat[at - n..at].to_vec()
        })
        .collect())
}

/// The seed's eight tensors as the array its kernels take.
pub fn seed_eight(params: &[Vec<f32>]) -> &[Vec<f32>; 8] {
    params.try_into().expect("the seed's CNN has eight tensors")
}
