//! Every intermediate of one training step, with the random draws injected.
//!
//! Other implementations (the tfjs reference, a reviewer's PyTorch script) call this with the
//! same weights, inputs and direction d, and compare whole arrays.

use crate::{
    backend::{Backend, BackendKind},
    config::TrainConfig,
    cpu::{
        self,
        net::{Net, StepDraws},
        optim::HostOptim,
    },
    error::{Result, VatError},
    params::split_params,
    rng::Draws,
    train::{check_images, check_labels},
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
    /// `config.model.dropout`. For a spec model: the draws of its dropout and noise layers in
    /// layer order, each NCHW (`[n, c, h, w]`, or `[n, features]`): dropout masks scaled by 1/keep,
    /// unit normals for noise (the layer scales them by its std).
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
    /// The weights after one step of the configured optimiser from fresh state (a spec's batch
    /// norm running statistics moved by the labeled clean pass).
    pub updated: Vec<f32>,
    /// The logits of `x` in evaluation mode on the given weights: no dropout or noise, and batch
    /// norm's running statistics (as given, before the step).
    pub eval_logits: Vec<f32>,
}

fn masks(config: &TrainConfig, n: usize, flat: Option<&[f32]>) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    let mc = &config.model;
    if !mc.dropout {
        return Ok(None);
    }
    let flat = flat.ok_or_else(|| VatError::InvalidInput("dropout is on, so dropout masks are required".into()))?;
    let (nc, nd) = (n * mc.flat_features(), n * mc.hidden);
    if flat.len() != nc + nd {
        return Err(VatError::InvalidInput(format!(
            "dropout masks must hold {} values, got {}",
            nc + nd,
            flat.len()
        )));
    }
    Ok(Some((flat[..nc].to_vec(), flat[nc..].to_vec())))
}

pub async fn inspect(config: &TrainConfig, backend: &Backend, input: InspectInput<'_>) -> Result<Inspection> {
    config.validate()?;
    backend.check_alive()?;
    let mc = &config.model;
    let params = split_params(mc, input.weights)?;
    let n = check_images(mc, input.x)?;
    check_labels(mc, input.y, n)?;
    let n_u = input.x_u.map(|u| check_images(mc, u)).transpose()?;
    let n_v = n_u.unwrap_or(n);
    let d = match (config.vat, input.d) {
        (false, _) => None,
        (true, None) => {
            return Err(VatError::InvalidInput("VAT is on, so a direction d is required".into()));
        }
        (true, Some(d)) => {
            if d.len() != n_v * mc.pixels() {
                return Err(VatError::InvalidInput(format!(
                    "d must be shaped like the VAT batch ({} values), got {}",
                    n_v * mc.pixels(),
                    d.len()
                )));
            }
            check_images(mc, d)?;
            Some(d.to_vec())
        }
    };
    if let Some(spec) = &mc.spec {
        let net = Net::new(spec)?;
        let draws = StepDraws {
            d,
            labeled: net.draws_from_nchw(n, input.masks_labeled, "masksLabeled")?,
            unlabeled: match n_u {
                Some(nu) => Some(net.draws_from_nchw(nu, input.masks_unlabeled, "masksUnlabeled")?),
                None => None,
            },
        };
        if backend.kind != BackendKind::Cpu {
            #[cfg(feature = "burn")]
            return inspect_spec_graph(config, backend, &net, params, &input, &draws, n).await;
            #[cfg(not(feature = "burn"))]
            unreachable!("this build starts only the CPU backend");
        }
        let threads = &backend.threads;
        let out = cpu::net_step::forward_backward(config, &net, &params, input.x, input.y, input.x_u, &draws, threads);
        let mut updated = params.clone();
        HostOptim::zeros_like(config.optimizer, &params).step(config, input.lr, &mut updated, &out.grads, threads);
        net.update_running_stats(&out.clean, &mut updated);
        return Ok(Inspection {
            eval_logits: net.logits(&net.prepare(&params), input.x, threads),
            logits: out.logits,
            loss: out.loss,
            ce: out.ce,
            lds: out.lds,
            entropy: out.entropy,
            r_adv: out.r_adv.unwrap_or_default(),
            grads: out.grads.concat(),
            updated: updated.concat(),
        });
    }
    let draws = Draws {
        d,
        masks_labeled: masks(config, n, input.masks_labeled)?,
        masks_unlabeled: match n_u {
            Some(nu) => masks(config, nu, input.masks_unlabeled)?,
            None => None,
        },
    };
    let flat = |v: &[Vec<f32>]| v.concat();
    match backend.kind {
        BackendKind::Cpu => {
            let out = cpu::step::forward_backward(
                config,
                crate::params::seed_eight(&params),
                input.x,
                input.y,
                input.x_u,
                &draws,
                &backend.threads,
            );
            let mut updated = params.clone();
            HostOptim::zeros_like(config.optimizer, &params).step(
                config,
                input.lr,
                &mut updated,
                &out.grads,
                &backend.threads,
            );
            let w = cpu::model::Weights::prepare(mc, crate::params::seed_eight(&params), &backend.threads);
            Ok(Inspection {
                eval_logits: cpu::model::logits(mc, &w, input.x, &backend.threads),
                logits: out.logits,
                loss: out.loss,
                ce: out.ce,
                lds: out.lds,
                entropy: out.entropy,
                r_adv: out.r_adv.unwrap_or_default(),
                grads: flat(&out.grads),
                updated: flat(&updated),
            })
        }
        #[cfg(feature = "burn")]
        _ => inspect_graph(config, backend, &params, &input, &draws, n, n_u).await,
        #[cfg(not(feature = "burn"))]
        _ => unreachable!("this build starts only the CPU backend"),
    }
}

#[cfg(feature = "burn")]
async fn inspect_graph(
    config: &TrainConfig,
    backend: &Backend,
    params: &crate::params::HostParams,
    input: &InspectInput<'_>,
    draws: &Draws,
    n: usize,
    n_u: Option<usize>,
) -> Result<Inspection> {
    use crate::{graph, model::Params, state::read_f32};
    let device = backend.burn_device().expect("a burn backend has a device");
    let mc = &config.model;
    let params = Params::from_vecs(mc, params.clone(), device);
    let x = graph::images(mc, input.x, device)?;
    let eval_logits = read_f32(params.forward(x.clone(), None).flatten::<1>(0, 1)).await?;
    let targets = graph::one_hot(mc, input.y, n, device)?;
    let x_u = input.x_u.map(|u| graph::images(mc, u, device)).transpose()?;
    let noise = graph::Noise::upload(mc, draws, n, n_u, device);
    let out = graph::forward_backward(config, &params, x, targets, x_u, &noise);
    read_back(config, None, params.flat().to_vec(), eval_logits, out, input.lr).await
}

/// [`inspect`] of a spec model on a burn backend ([`crate::spec_graph`]).
#[cfg(feature = "burn")]
async fn inspect_spec_graph(
    config: &TrainConfig,
    backend: &Backend,
    net: &Net,
    params: crate::params::HostParams,
    input: &InspectInput<'_>,
    draws: &StepDraws,
    n: usize,
) -> Result<Inspection> {
    use crate::{spec_graph as sg, state::read_f32};
    let device = backend.burn_device().expect("a burn backend has a device");
    let params = sg::upload(params, device);
    let x = sg::images(net, input.x, device);
    let eval_logits = read_f32(sg::eval_logits(net, &params, x.clone()).flatten::<1>(0, 1)).await?;
    let targets = crate::graph::one_hot(&config.model, input.y, n, device)?;
    let x_u = input.x_u.map(|u| sg::images(net, u, device));
    let out = sg::forward_backward(
        config,
        net,
        &params,
        x,
        targets,
        x_u,
        &sg::GraphDraws::upload(net, draws, device),
    );
    read_back(config, Some(net), params, eval_logits, out, input.lr).await
}

/// The end of a burn inspection: one optimiser step from fresh state (and, for a spec, the
/// running statistics the labeled pass moves), and every array read back to the host.
#[cfg(feature = "burn")]
async fn read_back(
    config: &TrainConfig,
    net: Option<&Net>,
    params: Vec<burn::tensor::Tensor<1>>,
    eval_logits: Vec<f32>,
    out: crate::graph::StepOutputs,
    lr: f64,
) -> Result<Inspection> {
    use burn::tensor::Tensor;

    use crate::{optim::OptimState, state::read_f32};
    let mut grads = Vec::new();
    for g in &out.grads {
        grads.extend(read_f32(g.clone()).await?);
    }
    let mut updated = OptimState::zeros_like(config.optimizer, &params).step(config, lr, params, out.grads);
    if let Some(net) = net {
        crate::spec_graph::update_running_stats(net, &out.bn, &mut updated);
    }
    let mut updated_host = Vec::new();
    for t in updated {
        updated_host.extend(read_f32(t).await?);
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
        updated: updated_host,
        eval_logits,
    })
}
