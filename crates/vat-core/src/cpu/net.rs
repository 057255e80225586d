//! Forward and backward passes of any [`ModelSpec`] on the CPU kernels.
//!
//! The seed's CNN keeps its own hand-fused kernels ([`super::model`]); this is the general
//! engine behind every other spec, held to those kernels by a test that runs the seed's spec
//! through both. Like them it works in NHWC (`[n, h, w, c]`, channels innermost), so a feature
//! map and a flat batch are both `[rows, channels]` matrices: batch norm, relu and dropout see
//! one layout. Inputs and input gradients cross in PyTorch's NCHW.
//!
//! A convolution is im2col + one matrix product over a block of images (gemm spreads the
//! product over the threads; the images' im2col and col2im run one per thread). Its kernel is
//! reordered to `[f, k, k, c]` once per pass ([`Prepared`]), and its gradient back to PyTorch's
//! `[f, c, k, k]` at the end ([`Grads::into_pytorch`]).
//!
//! Random draws (dropout masks, noise) come in per layer ([`Draws`]), in NHWC, so that a pass
//! repeated on the same batch (the power iteration, the adversarial pass) sees the same ones,
//! as in the seed's kernels.

use super::{
    kernels::{View, matmul, ohwi_to_oihw, oihw_to_ohwi},
    par::{Disjoint, Threads},
};
use crate::{
    rng::Rng,
    spec::{Init, Layer, ModelSpec, Padding, ParamSpec, Shape},
};

/// im2col builds the patches of at most this many floats at once (16 MB).
const BLOCK_FLOATS: usize = 1 << 22;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics in batch norm; dropout and noise on.
    Train,
    /// Running statistics; dropout and noise off.
    Eval,
    /// Batch statistics in batch norm, dropout and noise off: the pass that re-estimates the
    /// running statistics ([`Net::accumulate_bn`]).
    Stats,
}

/// The geometry of one convolution on one image.
#[derive(Debug, Clone, Copy)]
struct Geom {
    h: usize,
    w: usize,
    c: usize,
    k: usize,
    stride: usize,
    top: usize,
    left: usize,
    oh: usize,
    ow: usize,
    f: usize,
}

impl Geom {
    fn of(input: Shape, output: Shape, kernel: usize, stride: usize, padding: Padding) -> Self {
        let (Shape::Map { c, h, w }, Shape::Map { c: f, h: oh, w: ow }) = (input, output) else {
            unreachable!("a validated conv maps a map to a map")
        };
        Self {
            h,
            w,
            c,
            k: kernel,
            stride,
            top: padding.amounts(h, oh, kernel, stride).0,
            left: padding.amounts(w, ow, kernel, stride).0,
            oh,
            ow,
            f,
        }
    }
    /// Length of one patch row, `k * k * c`.
    fn kk(&self) -> usize {
        self.k * self.k * self.c
    }
    fn pixels(&self) -> usize {
        self.oh * self.ow
    }
    /// The input row of output row `o` and tap `t`, if inside the image.
    fn src(&self, o: usize, t: usize, start: usize, side: usize) -> Option<usize> {
        (o * self.stride + t).checked_sub(start).filter(|&i| i < side)
    }

    fn im2col(&self, x: &[f32], patches: &mut [f32]) {
        let (k, c, kk) = (self.k, self.c, self.kk());
        for oy in 0..self.oh {
            for ox in 0..self.ow {
                let row = &mut patches[(oy * self.ow + ox) * kk..][..kk];
                for ky in 0..k {
                    let Some(iy) = self.src(oy, ky, self.top, self.h) else {
                        row[ky * k * c..(ky + 1) * k * c].fill(0.0);
                        continue;
                    };
                    for kx in 0..k {
                        let dst = &mut row[(ky * k + kx) * c..][..c];
                        match self.src(ox, kx, self.left, self.w) {
                            Some(ix) => dst.copy_from_slice(&x[(iy * self.w + ix) * c..][..c]),
                            None => dst.fill(0.0),
                        }
                    }
                }
            }
        }
    }

    /// Adds the patch gradients back onto the image gradient `dx` (which the caller zeroed).
    fn col2im(&self, dpatches: &[f32], dx: &mut [f32]) {
        let (k, c, kk) = (self.k, self.c, self.kk());
        for oy in 0..self.oh {
            for ox in 0..self.ow {
                let row = &dpatches[(oy * self.ow + ox) * kk..][..kk];
                for ky in 0..k {
                    let Some(iy) = self.src(oy, ky, self.top, self.h) else {
                        continue;
                    };
                    for kx in 0..k {
                        if let Some(ix) = self.src(ox, kx, self.left, self.w) {
                            let dst = &mut dx[(iy * self.w + ix) * c..][..c];
                            for (d, v) in dst.iter_mut().zip(&row[(ky * k + kx) * c..][..c]) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Images per im2col block.
    fn block(&self) -> usize {
        (BLOCK_FLOATS / (self.pixels() * self.kk()).max(1)).max(1)
    }
}

/// One layer as the engines run it (this one, and the burn graph of [`crate::spec_graph`]).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) layer: Layer,
    pub(crate) input: Shape,
    pub(crate) output: Shape,
    /// Index in [`Net::params`] of the layer's first tensor (weight, or batch norm's gamma).
    pub(crate) param: Option<usize>,
    /// Index of its bias, when it has one.
    pub(crate) bias: Option<usize>,
    /// Index in [`Draws`] of the layer's random draws (dropout, noise).
    pub(crate) draw: Option<usize>,
}

/// A spec ready to run: its layers with their shapes and parameter indices.
#[derive(Debug, Clone)]
pub struct Net {
    pub spec: ModelSpec,
    /// Every tensor, in [`ModelSpec::params`] order: what `params` slices hold.
    pub params: Vec<ParamSpec>,
    steps: Vec<Step>,
    /// Values per example of each stochastic layer's draws, in layer order.
    draw_lens: Vec<usize>,
}

/// Per stochastic layer, in layer order: a dropout mask (0 or 1/keep) or unit normals for a
/// noise layer (scaled by its std there), `[n, h, w, c]` or `[n, features]`.
pub type Draws = Vec<Vec<f32>>;

/// The random draws of one step: for the labeled batch, for the unlabeled batch, and the power
/// iteration's starting direction d (NCHW, shaped like the VAT batch).
#[derive(Debug, Clone, Default)]
pub struct StepDraws {
    pub d: Option<Vec<f32>>,
    pub labeled: Draws,
    pub unlabeled: Option<Draws>,
}

/// The parameters with each conv kernel reordered for the products.
pub struct Prepared<'a> {
    params: &'a [Vec<f32>],
    kernels: Vec<Option<Vec<f32>>>,
}

/// Batch norm's batch statistics in training, kept for the backward pass.
#[derive(Debug, Clone)]
pub struct BnBatch {
    pub mean: Vec<f32>,
    /// Biased (divided by the row count), as used to normalise.
    pub var: Vec<f32>,
    pub rows: usize,
    xhat: Vec<f32>,
    inv_std: Vec<f32>,
}

/// What the forward pass keeps for the backward.
pub struct Cache {
    n: usize,
    mode: Mode,
    /// `acts[i]` is step i's input (NHWC); the last one is the logits `[n, classes]`.
    acts: Vec<Vec<f32>>,
    argmax: Vec<Option<Vec<u32>>>,
    /// Per step, batch norm's batch statistics (training only).
    pub bn: Vec<Option<BnBatch>>,
}

impl Cache {
    pub fn logits(&self) -> &[f32] {
        self.acts.last().expect("a pass keeps its logits")
    }
}

/// Gradients in [`Net::params`] order; conv kernels in the products' `[f, k, k, c]` order
/// until [`Grads::into_pytorch`]. Buffers' entries stay zero.
pub struct Grads(pub Vec<Vec<f32>>);

/// `[n, c, hw]` to `[n, hw, c]`, or back with `back`.
pub fn nchw_nhwc(x: &[f32], c: usize, hw: usize, back: bool) -> Vec<f32> {
    if c == 1 || hw == 1 {
        return x.to_vec();
    }
    let mut out = vec![0.0; x.len()];
    for (src, dst) in x.chunks_exact(c * hw).zip(out.chunks_exact_mut(c * hw)) {
        for ch in 0..c {
            for p in 0..hw {
                if back {
                    dst[ch * hw + p] = src[p * c + ch];
                } else {
                    dst[p * c + ch] = src[ch * hw + p];
                }
            }
        }
    }
    out
}

/// `(channels, pixels)` of a shape (a flat vector: `(features, 1)`).
pub(crate) fn spatial(s: Shape) -> (usize, usize) {
    match s {
        Shape::Map { c, h, w } => (c, h * w),
        Shape::Flat(n) => (n, 1),
    }
}

impl Net {
    pub fn new(spec: &ModelSpec) -> crate::error::Result<Self> {
        spec.validate()?;
        let shapes = spec.shapes()?;
        let params = spec.params();
        let mut steps = Vec::with_capacity(spec.layers.len());
        let mut draw_lens = Vec::new();
        let mut input = spec.input_shape();
        for (i, (&layer, &output)) in spec.layers.iter().zip(&shapes).enumerate() {
            let first = params.iter().position(|p| p.layer == i);
            let bias = params
                .iter()
                .position(|p| p.layer == i && p.name.ends_with(".bias"))
                .filter(|_| !matches!(layer, Layer::BatchNorm { .. }));
            let draw = matches!(layer, Layer::Dropout { .. } | Layer::GaussianNoise { .. }).then(|| {
                draw_lens.push(output.len());
                draw_lens.len() - 1
            });
            steps.push(Step {
                layer,
                input,
                output,
                param: first,
                bias,
                draw,
            });
            input = output;
        }
        Ok(Self {
            spec: spec.clone(),
            params,
            steps,
            draw_lens,
        })
    }

    /// The layers with their shapes and parameter and draw indices.
    #[cfg(feature = "burn")]
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn input_len(&self) -> usize {
        self.spec.input_len()
    }

    pub fn classes(&self) -> usize {
        self.spec.classes
    }

    /// Fresh parameters and buffers: Glorot-uniform kernels drawn in order from `rng` (the same
    /// draws as [`crate::params::init_params`] for the seed's spec), zero biases, batch norm's
    /// gamma 1 and beta 0, running mean 0 and variance 1.
    pub fn init(&self, rng: &mut Rng) -> Vec<Vec<f32>> {
        self.params
            .iter()
            .map(|p| match p.init {
                Init::Glorot { fan_in, fan_out } => rng.glorot_uniform(p.len(), fan_in, fan_out),
                Init::Zeros => vec![0.0; p.len()],
                Init::Ones => vec![1.0; p.len()],
            })
            .collect()
    }

    /// The draws of one pass over `n` examples, in layer order (see [`Draws`]).
    pub fn draw(&self, rng: &mut Rng, n: usize) -> Draws {
        let mut out = Vec::with_capacity(self.draw_lens.len());
        for step in &self.steps {
            match step.layer {
                Layer::Dropout { rate } => out.push(rng.dropout_mask(n * step.output.len(), rate)),
                Layer::GaussianNoise { .. } => out.push(rng.normals(n * step.output.len())),
                _ => {}
            }
        }
        out
    }

    /// The draws of one step: the labeled batch's, the unlabeled batch's, then d, in that order.
    pub fn draw_step(&self, rng: &mut Rng, vat: bool, n_labeled: usize, n_unlabeled: Option<usize>) -> StepDraws {
        let labeled = self.draw(rng, n_labeled);
        let unlabeled = n_unlabeled.map(|n| self.draw(rng, n));
        let d = vat.then(|| rng.normals(n_unlabeled.unwrap_or(n_labeled) * self.input_len()));
        StepDraws { d, labeled, unlabeled }
    }

    /// Injected draws (the parity tests'): every stochastic layer's, concatenated in layer order,
    /// each NCHW as PyTorch lays out its activations, for `n` examples; empty when the model has
    /// no dropout or noise.
    pub fn draws_from_nchw(&self, n: usize, flat: Option<&[f32]>, what: &str) -> crate::error::Result<Draws> {
        let total: usize = self.draw_lens.iter().map(|l| l * n).sum();
        let flat = match flat {
            Some(f) => f,
            None if total == 0 => return Ok(Vec::new()),
            None => {
                return Err(crate::error::VatError::InvalidInput(format!(
                    "the model has dropout or noise layers, so {what} must hold their draws ({total} values)"
                )));
            }
        };
        if flat.len() != total {
            return Err(crate::error::VatError::InvalidInput(format!(
                "{what} must hold {total} values (the draws of the model's dropout and noise layers for {n} examples), got {}",
                flat.len()
            )));
        }
        let mut at = 0;
        let mut out = Vec::with_capacity(self.draw_lens.len());
        for s in self.steps.iter().filter(|s| s.draw.is_some()) {
            let len = n * s.output.len();
            let (c, hw) = spatial(s.output);
            out.push(nchw_nhwc(&flat[at..at + len], c, hw, false));
            at += len;
        }
        Ok(out)
    }

    pub fn prepare<'a>(&self, params: &'a [Vec<f32>]) -> Prepared<'a> {
        let kernels = self
            .steps
            .iter()
            .map(|s| match s.layer {
                Layer::Conv { kernel, filters, .. } => {
                    let w = &params[s.param.expect("a conv has a weight")];
                    Some(oihw_to_ohwi(w, filters, s.input.channels(), kernel * kernel))
                }
                _ => None,
            })
            .collect();
        Prepared { params, kernels }
    }

    pub fn zero_grads(&self) -> Grads {
        Grads(self.params.iter().map(|p| vec![0.0; p.len()]).collect())
    }

    /// Logits of `x` (`[n, c, h, w]`) in evaluation mode, `[n, classes]`.
    pub fn logits(&self, w: &Prepared, x: &[f32], threads: &Threads) -> Vec<f32> {
        let mut cache = self.forward(w, x, Mode::Eval, &[], threads);
        cache.acts.pop().expect("logits")
    }

    /// The forward pass on `x` (`[n, c, h, w]`), keeping what [`Self::backward`] needs.
    /// `draws` is read in [`Mode::Train`] only.
    pub fn forward(&self, w: &Prepared, x: &[f32], mode: Mode, draws: &[Vec<f32>], threads: &Threads) -> Cache {
        let n = x.len() / self.input_len();
        let (c0, hw0) = spatial(self.spec.input_shape());
        let mut cur = nchw_nhwc(x, c0, hw0, false);
        let mut cache = Cache {
            n,
            mode,
            acts: Vec::with_capacity(self.steps.len() + 1),
            argmax: vec![None; self.steps.len()],
            bn: vec![None; self.steps.len()],
        };
        threads.install(|| {
            for (i, s) in self.steps.iter().enumerate() {
                let next = self.step_forward(i, s, w, &cur, n, mode, draws, &mut cache, threads);
                cache.acts.push(std::mem::replace(&mut cur, next));
            }
        });
        cache.acts.push(cur);
        cache
    }

    #[allow(clippy::too_many_arguments)]
    fn step_forward(
        &self,
        i: usize,
        s: &Step,
        w: &Prepared,
        x: &[f32],
        n: usize,
        mode: Mode,
        draws: &[Vec<f32>],
        cache: &mut Cache,
        threads: &Threads,
    ) -> Vec<f32> {
        let train = mode == Mode::Train;
        match s.layer {
            Layer::Conv {
                kernel,
                stride,
                padding,
                ..
            } => {
                let g = Geom::of(s.input, s.output, kernel, stride, padding);
                let kern = w.kernels[i].as_ref().expect("prepared kernel");
                let (p, kk, f) = (g.pixels(), g.kk(), g.f);
                let mut out = vec![0.0; n * p * f];
                let mut patches = vec![0.0; g.block().min(n) * p * kk];
                for b0 in (0..n).step_by(g.block()) {
                    let b = g.block().min(n - b0);
                    let pd = Disjoint::new(&mut patches);
                    threads.for_each(b, |j| {
                        let img = &x[(b0 + j) * g.h * g.w * g.c..][..g.h * g.w * g.c];
                        // SAFETY: image j owns its rows of the patches.
                        g.im2col(img, unsafe { pd.slice(j * p * kk..(j + 1) * p * kk) });
                    });
                    matmul(
                        b * p,
                        f,
                        kk,
                        &mut out[b0 * p * f..(b0 + b) * p * f],
                        f,
                        false,
                        View::rows(&patches, kk),
                        View::transposed(kern, kk),
                        threads.gemm(),
                    );
                }
                if let Some(bi) = s.bias {
                    add_rows(&mut out, &w.params[bi]);
                }
                out
            }
            Layer::Dense { units, .. } => {
                let (c, hw) = spatial(s.input);
                let flat = nchw_nhwc(x, c, hw, true);
                let d = s.input.len();
                let mut out = vec![0.0; n * units];
                let wt = &w.params[s.param.expect("a dense layer has a weight")];
                matmul(
                    n,
                    units,
                    d,
                    &mut out,
                    units,
                    false,
                    View::rows(&flat, d),
                    View::transposed(wt, d),
                    threads.gemm(),
                );
                if let Some(bi) = s.bias {
                    add_rows(&mut out, &w.params[bi]);
                }
                out
            }
            Layer::MaxPool { size, stride } => {
                let (Shape::Map { c, h, w: iw }, Shape::Map { h: oh, w: ow, .. }) = (s.input, s.output) else {
                    unreachable!("a validated pool maps a map to a map")
                };
                let st = stride.unwrap_or(size);
                let (ilen, olen) = (h * iw * c, oh * ow * c);
                let mut out = vec![0.0; n * olen];
                let mut arg = vec![0u32; n * olen];
                let (od, ad) = (Disjoint::new(&mut out), Disjoint::new(&mut arg));
                threads.for_each(n, |j| {
                    let img = &x[j * ilen..][..ilen];
                    // SAFETY: image j owns its part of both outputs.
                    let (o, a) = unsafe { (od.slice(j * olen..(j + 1) * olen), ad.slice(j * olen..(j + 1) * olen)) };
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for ch in 0..c {
                                let (mut best, mut at) = (f32::NEG_INFINITY, 0usize);
                                for ky in 0..size {
                                    for kx in 0..size {
                                        let idx = ((oy * st + ky) * iw + ox * st + kx) * c + ch;
                                        // First maximum wins, as in PyTorch and the seed kernels.
                                        if img[idx] > best {
                                            best = img[idx];
                                            at = idx;
                                        }
                                    }
                                }
                                let q = (oy * ow + ox) * c + ch;
                                o[q] = best;
                                a[q] = at as u32;
                            }
                        }
                    }
                });
                cache.argmax[i] = Some(arg);
                out
            }
            Layer::GlobalAvgPool => {
                let (c, hw) = spatial(s.input);
                let mut out = vec![0.0; n * c];
                for (img, o) in x.chunks_exact(hw * c).zip(out.chunks_exact_mut(c)) {
                    for px in img.chunks_exact(c) {
                        o.iter_mut().zip(px).for_each(|(a, b)| *a += b);
                    }
                    o.iter_mut().for_each(|v| *v /= hw as f32);
                }
                out
            }
            Layer::Relu => x.iter().map(|v| v.max(0.0)).collect(),
            Layer::LeakyRelu { slope } => {
                let a = slope as f32;
                x.iter().map(|&v| if v > 0.0 { v } else { a * v }).collect()
            }
            Layer::Dropout { .. } if train => {
                let m = &draws[s.draw.expect("a dropout layer draws")];
                x.iter().zip(m).map(|(a, b)| a * b).collect()
            }
            Layer::GaussianNoise { std } if train => {
                let z = &draws[s.draw.expect("a noise layer draws")];
                let sd = std as f32;
                x.iter().zip(z).map(|(a, b)| a + sd * b).collect()
            }
            Layer::Dropout { .. } | Layer::GaussianNoise { .. } => x.to_vec(),
            Layer::BatchNorm { eps, .. } => {
                let p = s.param.expect("batch norm has gamma");
                let (gamma, beta) = (&w.params[p], &w.params[p + 1]);
                let c = s.input.channels();
                let rows = x.len() / c;
                let mut out = vec![0.0; x.len()];
                if mode != Mode::Eval {
                    let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
                    for row in x.chunks_exact(c) {
                        for (j, &v) in row.iter().enumerate() {
                            sum[j] += v as f64;
                        }
                    }
                    let mean: Vec<f64> = sum.iter().map(|s| s / rows as f64).collect();
                    for row in x.chunks_exact(c) {
                        for (j, &v) in row.iter().enumerate() {
                            sq[j] += (v as f64 - mean[j]).powi(2);
                        }
                    }
                    let var: Vec<f64> = sq.iter().map(|s| s / rows as f64).collect();
                    let inv_std: Vec<f32> = var.iter().map(|v| (1.0 / (v + eps).sqrt()) as f32).collect();
                    let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
                    let mut xhat = vec![0.0; x.len()];
                    for ((row, xh), o) in x
                        .chunks_exact(c)
                        .zip(xhat.chunks_exact_mut(c))
                        .zip(out.chunks_exact_mut(c))
                    {
                        for j in 0..c {
                            xh[j] = (row[j] - mean32[j]) * inv_std[j];
                            o[j] = gamma[j] * xh[j] + beta[j];
                        }
                    }
                    cache.bn[i] = Some(BnBatch {
                        mean: mean32,
                        var: var.iter().map(|&v| v as f32).collect(),
                        rows,
                        xhat,
                        inv_std,
                    });
                } else {
                    let (rm, rv) = (&w.params[p + 2], &w.params[p + 3]);
                    let scale: Vec<f32> = (0..c).map(|j| gamma[j] / (rv[j] + eps as f32).sqrt()).collect();
                    for (row, o) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
                        for j in 0..c {
                            o[j] = (row[j] - rm[j]) * scale[j] + beta[j];
                        }
                    }
                }
                out
            }
        }
    }

    /// Back-propagates `dlogits` through the pass in `cache`: into `grads` when given (summed
    /// onto what they hold), and returns the gradient with respect to the input (NCHW) when
    /// `want_input` is set.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        w: &Prepared,
        cache: &Cache,
        dlogits: &[f32],
        draws: &[Vec<f32>],
        mut grads: Option<&mut Grads>,
        want_input: bool,
        threads: &Threads,
    ) -> Option<Vec<f32>> {
        let n = cache.n;
        let mut dy = dlogits.to_vec();
        threads.install(|| {
            for i in (0..self.steps.len()).rev() {
                let need_dx = want_input || i > 0;
                dy = self.step_backward(i, w, cache, &dy, draws, grads.as_deref_mut(), need_dx, n, threads);
            }
        });
        want_input.then(|| {
            let (c0, hw0) = spatial(self.spec.input_shape());
            nchw_nhwc(&dy, c0, hw0, true)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn step_backward(
        &self,
        i: usize,
        w: &Prepared,
        cache: &Cache,
        dy: &[f32],
        draws: &[Vec<f32>],
        grads: Option<&mut Grads>,
        need_dx: bool,
        n: usize,
        threads: &Threads,
    ) -> Vec<f32> {
        let s = &self.steps[i];
        let x = &cache.acts[i];
        let train = cache.mode == Mode::Train;
        match s.layer {
            Layer::Conv {
                kernel,
                stride,
                padding,
                ..
            } => {
                let g = Geom::of(s.input, s.output, kernel, stride, padding);
                let kern = w.kernels[i].as_ref().expect("prepared kernel");
                let (p, kk, f, ilen) = (g.pixels(), g.kk(), g.f, g.h * g.w * g.c);
                let mut patches = vec![0.0; g.block().min(n) * p * kk];
                let mut dx = vec![0.0; if need_dx { n * ilen } else { 0 }];
                let mut grads = grads;
                for b0 in (0..n).step_by(g.block()) {
                    let b = g.block().min(n - b0);
                    let dyb = &dy[b0 * p * f..(b0 + b) * p * f];
                    if let Some(gr) = grads.as_deref_mut() {
                        let pd = Disjoint::new(&mut patches);
                        threads.for_each(b, |j| {
                            // SAFETY: image j owns its rows of the patches.
                            g.im2col(&x[(b0 + j) * ilen..][..ilen], unsafe {
                                pd.slice(j * p * kk..(j + 1) * p * kk)
                            });
                        });
                        let wi = s.param.expect("a conv has a weight");
                        matmul(
                            f,
                            kk,
                            b * p,
                            &mut gr.0[wi],
                            kk,
                            true,
                            View::transposed(dyb, f),
                            View::rows(&patches[..b * p * kk], kk),
                            threads.gemm(),
                        );
                        if let Some(bi) = s.bias {
                            add_column_sums(&mut gr.0[bi], dyb);
                        }
                    }
                    if need_dx {
                        matmul(
                            b * p,
                            kk,
                            f,
                            &mut patches[..b * p * kk],
                            kk,
                            false,
                            View::rows(dyb, f),
                            View::rows(kern, kk),
                            threads.gemm(),
                        );
                        let dd = Disjoint::new(&mut dx);
                        let patches = &patches;
                        threads.for_each(b, |j| {
                            // SAFETY: image j owns its part of dx.
                            let d = unsafe { dd.slice((b0 + j) * ilen..(b0 + j + 1) * ilen) };
                            g.col2im(&patches[j * p * kk..(j + 1) * p * kk], d);
                        });
                    }
                }
                dx
            }
            Layer::Dense { units, .. } => {
                let (c, hw) = spatial(s.input);
                let d = s.input.len();
                let wi = s.param.expect("a dense layer has a weight");
                if let Some(gr) = grads {
                    let flat = nchw_nhwc(x, c, hw, true);
                    matmul(
                        units,
                        d,
                        n,
                        &mut gr.0[wi],
                        d,
                        true,
                        View::transposed(dy, units),
                        View::rows(&flat, d),
                        threads.gemm(),
                    );
                    if let Some(bi) = s.bias {
                        add_column_sums(&mut gr.0[bi], dy);
                    }
                }
                if !need_dx {
                    return Vec::new();
                }
                let mut dflat = vec![0.0; n * d];
                matmul(
                    n,
                    d,
                    units,
                    &mut dflat,
                    d,
                    false,
                    View::rows(dy, units),
                    View::rows(&w.params[wi], d),
                    threads.gemm(),
                );
                nchw_nhwc(&dflat, c, hw, false)
            }
            Layer::MaxPool { .. } => {
                let (ilen, olen) = (s.input.len(), s.output.len());
                let arg = cache.argmax[i].as_ref().expect("the forward pass kept the argmax");
                let mut dx = vec![0.0; n * ilen];
                for j in 0..n {
                    let d = &mut dx[j * ilen..][..ilen];
                    for (q, &a) in arg[j * olen..][..olen].iter().enumerate() {
                        d[a as usize] += dy[j * olen + q];
                    }
                }
                dx
            }
            Layer::GlobalAvgPool => {
                let (c, hw) = spatial(s.input);
                let mut dx = vec![0.0; n * c * hw];
                for (d, g) in dx.chunks_exact_mut(c * hw).zip(dy.chunks_exact(c)) {
                    for px in d.chunks_exact_mut(c) {
                        px.iter_mut().zip(g).for_each(|(a, b)| *a = b / hw as f32);
                    }
                }
                dx
            }
            Layer::Relu => x.iter().zip(dy).map(|(&v, &g)| if v > 0.0 { g } else { 0.0 }).collect(),
            Layer::LeakyRelu { slope } => {
                let a = slope as f32;
                x.iter()
                    .zip(dy)
                    .map(|(&v, &g)| if v > 0.0 { g } else { a * g })
                    .collect()
            }
            Layer::Dropout { .. } if train => {
                let m = &draws[s.draw.expect("a dropout layer draws")];
                dy.iter().zip(m).map(|(a, b)| a * b).collect()
            }
            Layer::Dropout { .. } | Layer::GaussianNoise { .. } => dy.to_vec(),
            Layer::BatchNorm { eps, .. } => {
                let p = s.param.expect("batch norm has gamma");
                let gamma = &w.params[p];
                let c = s.input.channels();
                match &cache.bn[i] {
                    Some(bn) => {
                        let (mut sum_dy, mut sum_dyx) = (vec![0f64; c], vec![0f64; c]);
                        for (g, xh) in dy.chunks_exact(c).zip(bn.xhat.chunks_exact(c)) {
                            for j in 0..c {
                                sum_dy[j] += g[j] as f64;
                                sum_dyx[j] += (g[j] * xh[j]) as f64;
                            }
                        }
                        if let Some(gr) = grads {
                            for j in 0..c {
                                gr.0[p][j] += sum_dyx[j] as f32;
                                gr.0[p + 1][j] += sum_dy[j] as f32;
                            }
                        }
                        // dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)).
                        let m = bn.rows as f64;
                        let mdy: Vec<f32> = sum_dy.iter().map(|v| (v / m) as f32).collect();
                        let mdyx: Vec<f32> = sum_dyx.iter().map(|v| (v / m) as f32).collect();
                        let mut dx = vec![0.0; dy.len()];
                        for ((d, g), xh) in dx
                            .chunks_exact_mut(c)
                            .zip(dy.chunks_exact(c))
                            .zip(bn.xhat.chunks_exact(c))
                        {
                            for j in 0..c {
                                d[j] = gamma[j] * bn.inv_std[j] * (g[j] - mdy[j] - xh[j] * mdyx[j]);
                            }
                        }
                        dx
                    }
                    None => {
                        let (rm, rv) = (&w.params[p + 2], &w.params[p + 3]);
                        let inv: Vec<f32> = (0..c).map(|j| 1.0 / (rv[j] + eps as f32).sqrt()).collect();
                        if let Some(gr) = grads {
                            for (g, row) in dy.chunks_exact(c).zip(x.chunks_exact(c)) {
                                for j in 0..c {
                                    gr.0[p][j] += g[j] * (row[j] - rm[j]) * inv[j];
                                    gr.0[p + 1][j] += g[j];
                                }
                            }
                        }
                        let inv = &inv;
                        dy.chunks_exact(c)
                            .flat_map(|g| (0..c).map(move |j| g[j] * gamma[j] * inv[j]))
                            .collect()
                    }
                }
            }
        }
    }

    /// The running statistics after a training pass: `running = (1 - momentum) * running +
    /// momentum * batch`, with the unbiased batch variance, written into `params`.
    pub fn update_running_stats(&self, cache: &Cache, params: &mut [Vec<f32>]) {
        for (i, s) in self.steps.iter().enumerate() {
            if let (Layer::BatchNorm { momentum, .. }, Some(bn)) = (s.layer, &cache.bn[i]) {
                let p = s.param.expect("batch norm has gamma");
                let m = momentum as f32;
                let unbias = bn.rows as f32 / (bn.rows.max(2) - 1) as f32;
                let (head, tail) = params.split_at_mut(p + 3);
                let (mean, var) = (&mut head[p + 2], &mut tail[0]);
                for (((rm, rv), bm), bv) in mean.iter_mut().zip(var.iter_mut()).zip(&bn.mean).zip(&bn.var) {
                    *rm = (1.0 - m) * *rm + m * bm;
                    *rv = (1.0 - m) * *rv + m * bv * unbias;
                }
            }
        }
    }

    pub fn has_batch_norm(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.layer, Layer::BatchNorm { .. }))
    }

    /// Adds the batch statistics of every batch norm layer on `x` (`[n, c, h, w]`, one batch,
    /// each layer normalising with its batch's statistics as in training; dropout and noise off).
    pub fn accumulate_bn(&self, est: &mut BnEstimate, params: &[Vec<f32>], x: &[f32], threads: &Threads) {
        let cache = self.forward(&self.prepare(params), x, Mode::Stats, &[], threads);
        if est.sums.is_empty() {
            est.sums = vec![None; self.steps.len()];
        }
        for (sum, bn) in est.sums.iter_mut().zip(&cache.bn) {
            if let Some(bn) = bn {
                let (mean, var) = sum.get_or_insert_with(|| (vec![0.0; bn.mean.len()], vec![0.0; bn.var.len()]));
                let unbias = bn.rows as f64 / (bn.rows.max(2) - 1) as f64;
                for (((m, v), bm), bv) in mean.iter_mut().zip(var.iter_mut()).zip(&bn.mean).zip(&bn.var) {
                    *m += cache.n as f64 * *bm as f64;
                    *v += cache.n as f64 * *bv as f64 * unbias;
                }
            }
        }
        est.images += cache.n;
    }

    /// Writes the accumulated statistics into `params` as the running mean and (unbiased)
    /// variance: each the average over the batches, weighted by their images.
    pub fn apply_bn(&self, est: &BnEstimate, params: &mut [Vec<f32>]) {
        for (s, sum) in self.steps.iter().zip(&est.sums) {
            if let Some((mean, var)) = sum {
                let p = s.param.expect("batch norm has gamma");
                let n = est.images as f64;
                params[p + 2] = mean.iter().map(|m| (m / n) as f32).collect();
                params[p + 3] = var.iter().map(|v| (v / n) as f32).collect();
            }
        }
    }
}

/// Batch norm statistics summed over batches, for re-estimating the running statistics after
/// training (the official VAT code's last step): per step, the image-weighted sums of the batch
/// means and unbiased variances.
#[derive(Debug, Clone, Default)]
pub struct BnEstimate {
    pub images: usize,
    sums: Vec<Option<(Vec<f64>, Vec<f64>)>>,
}

#[cfg(test)]
impl Net {
    /// Which side of every kink the pass was on: the sign of each relu's input and each max
    /// pool's winner. Finite differences are only valid where a nudge leaves this unchanged.
    pub(crate) fn kinks(&self, cache: &Cache) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            match s.layer {
                Layer::Relu | Layer::LeakyRelu { .. } => out.extend(cache.acts[i].iter().map(|v| (*v > 0.0) as u32)),
                Layer::MaxPool { .. } => out.extend(cache.argmax[i].as_ref().expect("argmax")),
                _ => {}
            }
        }
        out
    }
}

impl Grads {
    /// Conv kernel gradients back in PyTorch's `[f, c, k, k]`.
    pub fn into_pytorch(mut self, net: &Net) -> Vec<Vec<f32>> {
        for s in &net.steps {
            if let Layer::Conv { kernel, filters, .. } = s.layer {
                let wi = s.param.expect("a conv has a weight");
                self.0[wi] = ohwi_to_oihw(&self.0[wi], filters, s.input.channels(), kernel * kernel);
            }
        }
        self.0
    }
}

fn add_rows(m: &mut [f32], bias: &[f32]) {
    for row in m.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

fn add_column_sums(dst: &mut [f32], m: &[f32]) {
    for row in m.chunks_exact(dst.len()) {
        dst.iter_mut().zip(row).for_each(|(d, v)| *d += v);
    }
}
