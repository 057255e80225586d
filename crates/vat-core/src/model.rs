//! The seed's CNN as pure burn code: parameters, initialisation and the forward pass.
//!
//! Parameters are plain tensors rather than `nn` modules so that the optimiser state, the
//! safetensors layout and the parity tests can name and address each one directly.

use burn::tensor::{
    Device, Tensor, TensorData,
    activation::relu,
    module::{conv2d, max_pool2d},
    ops::{ConvOptions, MaxPoolOptions},
};

use crate::{config::ModelConfig, params::init_params, rng::Rng};

pub use crate::params::{PARAM_NAMES, param_shapes};

/// The model's parameters. Dense weights are stored `[out, in]` like conv weights (and
/// PyTorch), and transposed inside [`Params::forward`].
#[derive(Debug, Clone)]
pub struct Params {
    pub conv1_w: Tensor<4>,
    pub conv1_b: Tensor<1>,
    pub conv2_w: Tensor<4>,
    pub conv2_b: Tensor<1>,
    pub fc1_w: Tensor<2>,
    pub fc1_b: Tensor<1>,
    pub fc2_w: Tensor<2>,
    pub fc2_b: Tensor<1>,
}

/// Inverted-dropout masks for one batch, already scaled by 1/keep.
/// # Shapes
/// - `conv`: `[batch, filters, pooled, pooled]`
/// - `dense`: `[batch, hidden]`
#[derive(Debug, Clone)]
pub struct DropoutMasks {
    pub conv: Tensor<4>,
    pub dense: Tensor<2>,
}

impl DropoutMasks {
    /// Uploads masks drawn on the host ([`crate::rng::Draws`]) for `batch` inputs.
    pub fn upload(config: &ModelConfig, batch: usize, masks: &(Vec<f32>, Vec<f32>), device: &Device) -> Self {
        let p = config.pooled_size();
        Self {
            conv: Tensor::from_data(
                TensorData::new(masks.0.clone(), [batch, config.conv_filters, p, p]),
                device,
            ),
            dense: Tensor::from_data(TensorData::new(masks.1.clone(), [batch, config.hidden]), device),
        }
    }
}

impl Params {
    /// Glorot-uniform kernels and zero biases ([`init_params`]).
    pub fn init(config: &ModelConfig, rng: &mut Rng, device: &Device) -> Self {
        Self::from_vecs(config, init_params(config, rng), device)
    }

    /// Builds parameters from host vectors in [`PARAM_NAMES`] order (shapes from `config`).
    pub fn from_vecs(config: &ModelConfig, values: Vec<Vec<f32>>, device: &Device) -> Self {
        let shapes = param_shapes(config);
        let mut it = values.into_iter().zip(shapes);
        let mut next = || {
            let (v, s) = it.next().expect("eight parameter arrays");
            TensorData::new(v, s)
        };
        Self {
            conv1_w: Tensor::from_data(next(), device),
            conv1_b: Tensor::from_data(next(), device),
            conv2_w: Tensor::from_data(next(), device),
            conv2_b: Tensor::from_data(next(), device),
            fc1_w: Tensor::from_data(next(), device),
            fc1_b: Tensor::from_data(next(), device),
            fc2_w: Tensor::from_data(next(), device),
            fc2_b: Tensor::from_data(next(), device),
        }
    }

    /// The eight tensors flattened to rank 1, in [`PARAM_NAMES`] order.
    pub fn flat(&self) -> [Tensor<1>; 8] {
        [
            self.conv1_w.clone().flatten(0, 3),
            self.conv1_b.clone(),
            self.conv2_w.clone().flatten(0, 3),
            self.conv2_b.clone(),
            self.fc1_w.clone().flatten(0, 1),
            self.fc1_b.clone(),
            self.fc2_w.clone().flatten(0, 1),
            self.fc2_b.clone(),
        ]
    }

    /// Rebuilds parameters from rank-1 tensors in [`PARAM_NAMES`] order.
    pub fn from_flat(config: &ModelConfig, flat: [Tensor<1>; 8]) -> Self {
        let s = param_shapes(config);
        let [a, b, c, d, e, f, g, h] = flat;
        Self {
            conv1_w: a.reshape([s[0][0], s[0][1], s[0][2], s[0][3]]),
            conv1_b: b,
            conv2_w: c.reshape([s[2][0], s[2][1], s[2][2], s[2][3]]),
            conv2_b: d,
            fc1_w: e.reshape([s[4][0], s[4][1]]),
            fc1_b: f,
            fc2_w: g.reshape([s[6][0], s[6][1]]),
            fc2_b: h,
        }
    }

    /// Rebuilds parameters from the eight rank-1 tensors of a list (a trainer's, an optimiser's).
    pub fn from_list(config: &ModelConfig, list: &[Tensor<1>]) -> Self {
        let eight: [Tensor<1>; 8] = list.to_vec().try_into().expect("the seed's CNN has eight tensors");
        Self::from_flat(config, eight)
    }

    /// Applies `f` to every tensor (flattened), for example to start or stop tracking gradients.
    pub fn map(&self, config: &ModelConfig, f: impl Fn(Tensor<1>) -> Tensor<1>) -> Self {
        Self::from_flat(config, self.flat().map(f))
    }

    /// Copies that autodiff tracks, so that `loss.backward()` yields their gradients.
    pub fn tracked(&self, config: &ModelConfig) -> Self {
        self.map(config, |t| t.autodiff().require_grad())
    }

    /// Copies outside autodiff: constants for the power iteration and for evaluation.
    pub fn constant(&self, config: &ModelConfig) -> Self {
        self.map(config, |t| t.without_autodiff())
    }

    /// The forward pass, returning logits.
    ///
    /// # Shapes
    /// input `[batch, 1, size, size]` -> `[batch, classes]`
    pub fn forward(&self, x: Tensor<4>, masks: Option<&DropoutMasks>) -> Tensor<2> {
        let valid = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let h = relu(conv2d(
            x,
            self.conv1_w.clone(),
            Some(self.conv1_b.clone()),
            valid.clone(),
        ));
        let h = relu(conv2d(h, self.conv2_w.clone(), Some(self.conv2_b.clone()), valid));
        let mut h = max_pool2d(h, MaxPoolOptions::new([2, 2]));
        if let Some(m) = masks {
            h = h * m.conv.clone();
        }
        // Flatten in (channel, row, column) order, as PyTorch's `flatten(1)` does on NCHW.
        let h = h.flatten::<2>(1, 3);
        let mut h = relu(h.matmul(self.fc1_w.clone().transpose()) + self.fc1_b.clone().unsqueeze());
        if let Some(m) = masks {
            h = h * m.dense.clone();
        }
        h.matmul(self.fc2_w.clone().transpose()) + self.fc2_b.clone().unsqueeze()
    }
}
