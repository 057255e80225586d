//! Any [`crate::spec::ModelSpec`] as a burn autodiff graph, for the burn backends (burn-flex and
//! WebGPU): the layers, batch-norm modes and training step of [`crate::cpu::net`] and
//! [`crate::cpu::net_step`], from the same plan ([`Net`]) and the same draws, held to them by the
//! tests and the golden parity cases.
//!
//! Every value between layers is a `[n, c, h, w]` tensor; a flat batch of `f` features is
//! `[n, f, 1, 1]`, so that batch norm, the activations, dropout and noise have one form, and a
//! dense layer's flatten is NCHW's (channel, row, column) order. Parameters are rank-1 tensors in
//! [`Net::params`] order (PyTorch layouts), reshaped where a layer uses them.

use burn::tensor::{
    Device, Tensor, TensorData,
    activation::{leaky_relu, relu},
    module::{conv2d, max_pool2d},
    ops::{ConvOptions, MaxPoolOptions, PadMode},
};

use crate::{
    config::TrainConfig,
    cpu::net::{Mode, Net, StepDraws, nchw_nhwc, spatial},
    graph::{StepOutputs, leaf_grads},
    spec::{Layer, Shape},
    vat,
};

/// Batch norm's statistics of one training pass over a layer, outside autodiff.
#[derive(Debug, Clone)]
pub struct BnBatch {
    pub mean: Tensor<1>,
    /// Biased (divided by the row count), as used to normalise.
    pub var: Tensor<1>,
    pub rows: usize,
}

/// One forward pass: the logits `[n, classes]` and, per layer, batch norm's batch statistics
/// (training only).
pub struct Pass {
    pub logits: Tensor<2>,
    pub bn: Vec<Option<BnBatch>>,
}

/// The draws of one step on the device: per stochastic layer `[n, c, h, w]` (a flat layer's as
/// `[n, f, 1, 1]`), and the power iteration's direction d.
pub struct GraphDraws {
    pub d: Option<Tensor<4>>,
    pub labeled: Vec<Tensor<4>>,
    pub unlabeled: Option<Vec<Tensor<4>>>,
}

/// A shape as the graph holds it, per example: `[c, h, w]`, or `[f, 1, 1]` when flat.
fn dims(s: Shape) -> [usize; 3] {
    match s {
        Shape::Map { c, h, w } => [c, h, w],
        Shape::Flat(f) => [f, 1, 1],
    }
}

/// Host parameters (in [`Net::params`] order) as rank-1 tensors on `device`.
pub fn upload(values: Vec<Vec<f32>>, device: &Device) -> Vec<Tensor<1>> {
    values
        .into_iter()
        .map(|v| {
            let n = v.len();
            Tensor::from_data(TensorData::new(v, [n]), device)
        })
        .collect()
}

impl GraphDraws {
    /// Uploads a step's host draws (NHWC per layer, as the CPU engine takes them) as NCHW.
    pub fn upload(net: &Net, draws: &StepDraws, device: &Device) -> Self {
        let input = dims(net.spec.input_shape());
        let pass = |host: &[Vec<f32>]| -> Vec<Tensor<4>> {
            net.steps()
                .iter()
                .filter(|s| s.draw.is_some())
                .zip(host)
                .map(|(s, v)| {
                    let [c, h, w] = dims(s.output);
                    let (ch, hw) = spatial(s.output);
                    let n = v.len() / (c * h * w);
                    Tensor::from_data(TensorData::new(nchw_nhwc(v, ch, hw, true), [n, c, h, w]), device)
                })
                .collect()
        };
        Self {
            d: draws.d.as_ref().map(|d| {
                let n = d.len() / net.input_len();
                Tensor::from_data(TensorData::new(d.clone(), [n, input[0], input[1], input[2]]), device)
            }),
            labeled: pass(&draws.labeled),
            unlabeled: draws.unlabeled.as_deref().map(pass),
        }
    }
}

/// Images `[n * c * h * w]` (NCHW) as a tensor.
pub fn images(net: &Net, x: &[f32], device: &Device) -> Tensor<4> {
    let [c, h, w] = dims(net.spec.input_shape());
    Tensor::from_data(TensorData::new(x.to_vec(), [x.len() / (c * h * w), c, h, w]), device)
}

/// The forward pass of `x` (`[n, c, h, w]`). In [`Mode::Train`] batch norm uses the batch's
/// statistics (returned, for the running update) and dropout and noise apply `draws`; in
/// [`Mode::Eval`] batch norm uses the running statistics and `draws` is not read.
pub fn forward(net: &Net, params: &[Tensor<1>], x: Tensor<4>, mode: Mode, draws: &[Tensor<4>]) -> Pass {
    let train = mode == Mode::Train;
    let n = x.dims()[0];
    let mut bn = vec![None; net.steps().len()];
    let mut h = x;
    for (i, s) in net.steps().iter().enumerate() {
        let param = |k: usize| params[s.param.expect("the layer has parameters") + k].clone();
        h = match s.layer {
            Layer::Conv {
                filters,
                kernel,
                stride,
                padding,
                ..
            } => {
                let ([c, ih, iw], [_, oh, ow]) = (dims(s.input), dims(s.output));
                let (top, bottom) = padding.amounts(ih, oh, kernel, stride);
                let (left, right) = padding.amounts(iw, ow, kernel, stride);
                let h = if top + bottom + left + right == 0 {
                    h
                } else {
                    h.pad((left, right, top, bottom), PadMode::Constant(0.0))
                };
                let w = param(0).reshape([filters, c, kernel, kernel]);
                let b = s.bias.map(|bi| params[bi].clone());
                conv2d(h, w, b, ConvOptions::new([stride, stride], [0, 0], [1, 1], 1))
            }
            Layer::MaxPool { size, stride } => {
                let st = stride.unwrap_or(size);
                let mut options = MaxPoolOptions::new([size, size]);
                options.stride = [st, st];
                max_pool2d(h, options)
            }
            Layer::GlobalAvgPool => h.mean_dim(3).mean_dim(2),
            Layer::Dense { units, .. } => {
                let d = s.input.len();
                let mut out = h.reshape([n, d]).matmul(param(0).reshape([units, d]).transpose());
                if let Some(bi) = s.bias {
                    out = out + params[bi].clone().unsqueeze();
                }
                out.reshape([n, units, 1, 1])
            }
            Layer::Relu => relu(h),
            Layer::LeakyRelu { slope } => leaky_relu(h, slope),
            Layer::Dropout { .. } if train => h * draws[s.draw.expect("a dropout layer draws")].clone(),
            Layer::GaussianNoise { std } if train => h + draws[s.draw.expect("a noise layer draws")].clone() * std,
            Layer::Dropout { .. } | Layer::GaussianNoise { .. } => h,
            Layer::BatchNorm { eps, .. } => {
                let c = s.input.channels();
                let per_channel = |t: Tensor<1>| t.reshape([1, c, 1, 1]);
                let (gamma, beta) = (per_channel(param(0)), per_channel(param(1)));
                if train {
                    let [_, _, hh, ww] = h.dims();
                    let mean = h.clone().mean_dim(0).mean_dim(2).mean_dim(3);
                    let centred = h - mean.clone();
                    let var = centred.clone().square().mean_dim(0).mean_dim(2).mean_dim(3);
                    bn[i] = Some(BnBatch {
                        mean: mean.without_autodiff().reshape([c]),
                        var: var.clone().without_autodiff().reshape([c]),
                        rows: n * hh * ww,
                    });
                    centred / (var + eps).sqrt() * gamma + beta
                } else {
                    let (mean, var) = (per_channel(param(2)), per_channel(param(3)));
                    (h - mean) / (var + eps).sqrt() * gamma + beta
                }
            }
        };
    }
    Pass {
        logits: h.reshape([n, net.classes()]),
        bn,
    }
}

/// The running statistics after the labeled clean pass `bn`: `running = (1 - momentum) * running
/// + momentum * batch`, with the unbiased batch variance ([`Net::update_running_stats`]'s rule).
pub fn update_running_stats(net: &Net, bn: &[Option<BnBatch>], params: &mut [Tensor<1>]) {
    for (s, b) in net.steps().iter().zip(bn) {
        if let (Layer::BatchNorm { momentum, .. }, Some(b)) = (s.layer, b) {
            let p = s.param.expect("batch norm has gamma");
            let unbias = b.rows as f64 / (b.rows.max(2) - 1) as f64;
            params[p + 2] = params[p + 2].clone() * (1.0 - momentum) + b.mean.clone() * momentum;
            params[p + 3] = params[p + 3].clone() * (1.0 - momentum) + b.var.clone() * (momentum * unbias);
        }
    }
}

/// The loss of one step and its gradients: [`crate::cpu::net_step::forward_backward`]'s
/// computation (CE + alpha * LDS [+ entropy]) and batch-norm modes, through autodiff.
pub fn forward_backward(
    config: &TrainConfig,
    net: &Net,
    params: &[Tensor<1>],
    x: Tensor<4>,
    targets: Tensor<2>,
    x_u: Option<Tensor<4>>,
    draws: &GraphDraws,
) -> StepOutputs {
    let leaves: Vec<Tensor<1>> = params
        .iter()
        .map(|t| t.clone().without_autodiff().autodiff().require_grad())
        .collect();
    let constant: Vec<Tensor<1>> = params.iter().map(|t| t.clone().without_autodiff()).collect();
    let dl = &draws.labeled;
    let clean = forward(net, &leaves, x.clone(), Mode::Train, dl);
    let ce = vat::cross_entropy(clean.logits.clone(), targets);
    let mut loss = ce.clone();

    let dv = draws.unlabeled.as_ref().unwrap_or(dl);
    let semi = x_u.is_some();
    let xv = x_u.unwrap_or(x);
    // The clean pass of the VAT batch: the labeled one when supervised; tracked only when the
    // entropy term needs its gradient.
    let clean_v = match (semi, config.entmin, config.vat) {
        (false, _, _) => Some(clean.logits.clone()),
        (true, true, _) => Some(forward(net, &leaves, xv.clone(), Mode::Train, dv).logits),
        (true, false, true) => Some(forward(net, &constant, xv.clone(), Mode::Train, dv).logits),
        (true, false, false) => None,
    };

    let zero = || Tensor::<1>::zeros([1], &xv.device());
    let (mut lds, mut entropy, mut r_adv) = (zero(), zero(), None);
    if let (true, Some(cv)) = (config.vat, &clean_v) {
        let p = cv.clone().without_autodiff();
        let d = draws.d.clone().expect("a VAT step needs a direction d");
        let forward_constant = |z| forward(net, &constant, z, Mode::Train, dv).logits;
        let r = vat::power_iteration(forward_constant, xv.clone(), p.clone(), d, config);
        let adv = forward(net, &leaves, xv.clone() + r.clone(), Mode::Train, dv).logits;
        lds = vat::kl_with_logits(p, adv);
        loss = loss + lds.clone() * config.alpha;
        r_adv = Some(r);
    }
    if let (true, Some(cv)) = (config.entmin, clean_v) {
        entropy = vat::entropy_with_logits(cv);
        loss = loss + entropy.clone() * config.entmin_weight;
    }

    let grads = leaf_grads(&loss, &leaves);
    StepOutputs {
        loss: loss.without_autodiff(),
        ce: ce.without_autodiff(),
        lds: lds.without_autodiff(),
        entropy: entropy.without_autodiff(),
        logits: clean.logits.without_autodiff(),
        r_adv,
        grads,
        bn: clean.bn,
    }
}

/// Logits in evaluation mode (running statistics, no dropout or noise).
pub fn eval_logits(net: &Net, params: &[Tensor<1>], x: Tensor<4>) -> Tensor<2> {
    let constant: Vec<Tensor<1>> = params.iter().map(|t| t.clone().without_autodiff()).collect();
    forward(net, &constant, x, Mode::Eval, &[]).logits
}

/// r_adv for `x` from direction `d` in evaluation mode (the VAT view): the power iteration on
/// the running statistics, without draws.
pub fn eval_r_adv(config: &TrainConfig, net: &Net, params: &[Tensor<1>], x: Tensor<4>, d: Tensor<4>) -> Tensor<4> {
    let constant: Vec<Tensor<1>> = params.iter().map(|t| t.clone().without_autodiff()).collect();
    let clean = forward(net, &constant, x.clone(), Mode::Eval, &[]).logits;
    vat::power_iteration(
        |z| forward(net, &constant, z, Mode::Eval, &[]).logits,
        x,
        clean,
        d,
        config,
    )
}
