//! Every intermediate of one training step, with the random draws injected.
//!
//! Other implementations (the tfjs reference, a reviewer's PyTorch script) call this with the
//! same weights, inputs and direction d, and compare whole arrays.

use burn::tensor::{Tensor, TensorData};

use crate::{
    backend::Backend,
    config::TrainConfig,
    error::{Result, VatError},
    model::{DropoutMasks, Params, param_shapes},
    optim::OptimState,
    state::read_f32,
    train::{Noise, forward_backward, images, one_hot},
};

/// Inputs of [`inspect`]. All arrays are flat, row-major, NCHW.
pub struct InspectInput<'a> {
    /// The eight parameters concatenated in `PARAM_NAMES` order and layouts.
    pub weights: &'a [f32],
    pub x: &'a [f32],
    pub y: &'a [u32],
    /// Semi-supervised: the batch that VAT and EntMin use.
    pub x_u: Option<&'a [f32]>,
    /// Initial direction d, shaped like the VAT batch. Required when `config.vat`.
    pub d: Option<&'a [f32]>,
    /// Dropout masks (scaled by 1/keep) for the labeled and unlabeled batches, each the conv
    /// mask `[n, filters, p, p]` followed by the dense mask `[n, hidden]`. Required when
    /// `config.model.dropout`.
    pub masks_labeled: Option<&'a [f32]>,
    pub masks_unlabeled: Option<&'a [f32]>,
    /// Learning rate of the one optimiser step whose result is returned.
    pub lr: f64,
}

#[cfg_attr(target_family = "wasm", wasm_bindgen::prelude::wasm_bindgen(getter_with_clone))]
#[derive(Debug, Clone)]
pub struct Inspection {
    pub logits: Vec<f32>,
    pub loss: f32,
    pub ce: f32,
    pub lds: f32,
    pub entropy: f32,
    /// Empty when VAT is off.
    pub r_adv: Vec<f32>,
    /// Gradients of the loss, concatenated like the weights.
    pub grads: Vec<f32>,
    /// The weights after one step of the configured optimiser from fresh state.
    pub updated: Vec<f32>,
}

fn split_weights(config: &TrainConfig, w: &[f32]) -> Result<Vec<Vec<f32>>> {
    let sizes: Vec<usize> = param_shapes(&config.model).iter().map(|s| s.iter().product()).collect();
    let total: usize = sizes.iter().sum();
    if w.len() != total {
        return Err(VatError::InvalidInput(format!(
            "weights must hold {total} values (the eight parameters concatenated), got {}",
            w.len()
        )));
    }
    let mut out = Vec::with_capacity(8);
    let mut at = 0;
    for n in sizes {
        out.push(w[at..at + n].to_vec());
        at += n;
    }
    Ok(out)
}

fn masks(config: &TrainConfig, n: usize, flat: Option<&[f32]>, backend: &Backend) -> Result<Option<DropoutMasks>> {
    let mc = &config.model;
    if !mc.dropout {
        return Ok(None);
    }
    let flat = flat.ok_or_else(|| VatError::InvalidInput("dropout is on, so dropout masks are required".into()))?;
    let (nc, nd) = (n * mc.flat_features(), n * mc.hidden);
    if flat.len() != nc + nd {
        return Err(VatError::InvalidInput(format!("dropout masks must hold {} values, got {}", nc + nd, flat.len())));
    }
    let p = mc.pooled_size();
    let device = &backend.device;
    Ok(Some(DropoutMasks {
        conv: Tensor::from_data(TensorData::new(flat[..nc].to_vec(), [n, mc.conv_filters, p, p]), device),
        dense: Tensor::from_data(TensorData::new(flat[nc..].to_vec(), [n, mc.hidden]), device),
    }))
}

pub async fn inspect(config: &TrainConfig, backend: &Backend, input: InspectInput<'_>) -> Result<Inspection> {
    config.validate()?;
    backend.check_alive()?;
    let device = &backend.device;
    let mc = &config.model;
    let params = Params::from_vecs(mc, split_weights(config, input.weights)?, device);
    let x = images(mc, input.x, device)?;
    let n = x.dims()[0];
    let targets = one_hot(mc, input.y, n, device)?;
    let x_u = input.x_u.map(|u| images(mc, u, device)).transpose()?;
    let n_v = x_u.as_ref().map_or(n, |u| u.dims()[0]);
    let d = match (config.vat, input.d) {
        (false, _) => None,
        (true, None) => return Err(VatError::InvalidInput("VAT is on, so a direction d is required".into())),
        (true, Some(d)) => {
            if d.len() != n_v * mc.pixels() {
                return Err(VatError::InvalidInput(format!(
                    "d must be shaped like the VAT batch ({} values), got {}",
                    n_v * mc.pixels(),
                    d.len()
                )));
            }
            Some(images(mc, d, device)?)
        }
    };
    let noise = Noise {
        d,
        masks_labeled: masks(config, n, input.masks_labeled, backend)?,
        masks_unlabeled: match x_u {
            Some(_) => masks(config, n_v, input.masks_unlabeled, backend)?,
            None => None,
        },
    };
    let out = forward_backward(config, &params, x, targets, x_u, &noise);

    let mut grads = Vec::new();
    for g in out.grads.iter() {
        grads.extend(read_f32(g.clone()).await?);
    }
    let mut opt = OptimState::zeros_like(config.optimizer, &params.flat());
    let mut updated = Vec::new();
    for t in opt.step(config, input.lr, params.flat(), out.grads) {
        updated.extend(read_f32(t).await?);
    }
    let scalars = read_f32(Tensor::cat(vec![out.loss, out.ce, out.lds, out.entropy], 0)).await?;
    Ok(Inspection {
        logits: read_f32(out.logits.flatten::<1>(0, 1)).await?,
        loss: scalars[0],
        ce: scalars[1],
        lds: scalars[2],
        entropy: scalars[3],
        r_adv: match out.r_adv {
            Some(r) => read_f32(r.flatten::<1>(0, 3)).await?,
            None => Vec::new(),
        },
        grads,
        updated,
    })
}
