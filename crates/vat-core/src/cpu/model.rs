//! The seed CNN's forward and backward passes on the CPU kernels.
//!
//! Images run through the convolutions one at a time, in chunks of [`CHUNK`] images spread over
//! the threads, so each image's activations stay in cache; the dense layers run as whole-batch
//! matrix products. Gradients are written out in PyTorch's layouts (the same as the weights).

use super::{
    kernels::{self, Conv, View, matmul},
    par::{Disjoint, Threads},
    profile::{Op, time},
};
use crate::config::ModelConfig;

/// Images per unit of work. Fixed, so that the partial sums of the weight gradients (one per
/// chunk, added in chunk order) come out the same on any number of threads.
pub const CHUNK: usize = 4;

/// The parameters in the layouts the kernels use, prepared once per step.
pub struct Weights {
    /// `[f, 3, 3, 1]`
    w1: Vec<f32>,
    b1: Vec<f32>,
    /// `[f, 3, 3, f]` (OHWI)
    w2: Vec<f32>,
    b2: Vec<f32>,
    /// `[hidden, p * p * f]`: fc1's columns reordered for an NHWC-flattened input.
    fc1: Vec<f32>,
    b3: Vec<f32>,
    /// `[classes, hidden]`
    fc2: Vec<f32>,
    b4: Vec<f32>,
}

/// The layer sizes of one model.
#[derive(Debug, Clone, Copy)]
struct Dims {
    conv1: Conv,
    conv2: Conv,
    /// Side of the pooled map.
    p: usize,
    /// Width of the flattened pooled map.
    d: usize,
    hidden: usize,
    classes: usize,
}

impl Dims {
    fn of(mc: &ModelConfig) -> Self {
        let (s, f) = (mc.image_size, mc.conv_filters);
        let p = mc.pooled_size();
        Self {
            conv1: Conv { h: s, w: s, c: 1, f },
            conv2: Conv {
                h: s - 2,
                w: s - 2,
                c: f,
                f,
            },
            p,
            d: p * p * f,
            hidden: mc.hidden,
            classes: mc.classes,
        }
    }
    fn pixels(&self) -> usize {
        self.conv1.in_len()
    }
    fn scratch_len(&self) -> usize {
        self.conv1.patches_len().max(self.conv2.patches_len())
    }
}

impl Weights {
    /// From the eight parameters in `PARAM_NAMES` order and PyTorch layouts.
    pub fn prepare(mc: &ModelConfig, params: &[Vec<f32>; 8], threads: &Threads) -> Self {
        let dims = Dims::of(mc);
        let f = mc.conv_filters;
        let hw = dims.p * dims.p;
        time(Op::Layout, || Self {
            w1: kernels::oihw_to_ohwi(&params[0], f, 1, 9),
            b1: params[1].clone(),
            w2: kernels::oihw_to_ohwi(&params[2], f, f, 9),
            b2: params[3].clone(),
            fc1: map_rows(threads, &params[4], dims.d, |src, dst| {
                kernels::chw_to_hwc(src, dst, f, hw)
            }),
            b3: params[5].clone(),
            fc2: params[6].clone(),
            b4: params[7].clone(),
        })
    }
}

/// Inverted-dropout masks for one batch (scaled by 1/keep), in NHWC order for the pooled map.
pub struct Masks {
    /// `[n, p, p, f]`
    conv: Vec<f32>,
    /// `[n, hidden]`
    dense: Vec<f32>,
}

impl Masks {
    /// From masks drawn in the burn model's order: the conv mask `[n, f, p, p]` (NCHW).
    pub fn from_nchw(mc: &ModelConfig, n: usize, conv_nchw: &[f32], dense: Vec<f32>) -> Self {
        let (f, p) = (mc.conv_filters, mc.pooled_size());
        let hw = p * p;
        let mut conv = vec![0.0; conv_nchw.len()];
        for i in 0..n {
            let (src, dst) = (&conv_nchw[i * f * hw..][..f * hw], &mut conv[i * f * hw..][..f * hw]);
            for ch in 0..f {
                for q in 0..hw {
                    dst[q * f + ch] = src[ch * hw + q];
                }
            }
        }
        Self { conv, dense }
    }
}

/// What the backward pass needs from a forward pass. (Recomputing conv1 in the backward instead
/// of keeping it saves 11 MB per pass at batch 128, but measured 4% slower on 2 threads.)
pub struct Cache {
    pub n: usize,
    /// conv1 after relu, `[n, s-2, s-2, f]`: conv2's input.
    conv1: Vec<f32>,
    /// The pooled map (relu outputs), `[n, p, p, f]`, and each window's winner.
    pooled: Vec<f32>,
    arg: Vec<u8>,
    /// fc1's input (the pooled map after dropout), `[n, d]`.
    a: Vec<f32>,
    /// fc1 after relu, before dropout, `[n, hidden]`.
    h: Vec<f32>,
    /// fc2's input (after dropout), `[n, hidden]`.
    hd: Vec<f32>,
    /// `[n, classes]`
    pub logits: Vec<f32>,
}

/// Gradients in `PARAM_NAMES` order: in PyTorch's layouts ([`Grads::to_pytorch`]), or, while
/// [`backward`] adds to them, in the kernels' (conv kernels OHWI, fc1's columns NHWC-flattened),
/// so each step reorders them once rather than once per backward pass.
pub struct Grads(pub [Vec<f32>; 8]);

impl Grads {
    pub fn zeros(mc: &ModelConfig) -> Self {
        let zeros: Vec<Vec<f32>> = crate::params::param_shapes(mc)
            .iter()
            .map(|s| vec![0.0; s.iter().product()])
            .collect();
        Self(zeros.try_into().expect("the seed's eight tensors"))
    }

    /// From the kernels' layouts to PyTorch's.
    pub fn to_pytorch(self, mc: &ModelConfig, threads: &Threads) -> [Vec<f32>; 8] {
        let dims = Dims::of(mc);
        let f = mc.conv_filters;
        let hw = dims.p * dims.p;
        let [w1, b1, w2, b2, fc1, b3, fc2, b4] = self.0;
        time(Op::Layout, || {
            [
                kernels::ohwi_to_oihw(&w1, f, 1, 9),
                b1,
                kernels::ohwi_to_oihw(&w2, f, f, 9),
                b2,
                map_rows(threads, &fc1, dims.d, |src, dst| kernels::hwc_to_chw(src, dst, f, hw)),
                b3,
                fc2,
                b4,
            ]
        })
    }
}

/// `f(src_row, dst_row)` for every row of length `d` of `src`, spread over the threads: the
/// reorders of fc1's 590K weights, which would otherwise run on the calling thread alone.
fn map_rows(threads: &Threads, src: &[f32], d: usize, f: impl Fn(&[f32], &mut [f32]) + Send + Sync) -> Vec<f32> {
    const ROWS: usize = 8;
    let mut out = vec![0.0; src.len()];
    let rows = src.len() / d;
    threads.install(|| {
        let o = Disjoint::new(&mut out);
        threads.for_each(rows.div_ceil(ROWS), |c| {
            for r in c * ROWS..((c + 1) * ROWS).min(rows) {
                // SAFETY: each chunk owns its rows of `out`.
                f(&src[r * d..][..d], unsafe { o.slice(r * d..(r + 1) * d) });
            }
        })
    });
    out
}

/// Adds `bias` to every row of `m` and applies relu.
fn bias_relu(m: &mut [f32], bias: &[f32]) {
    for row in m.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = (*v + b).max(0.0);
        }
    }
}

fn add_column_sums(dst: &mut [f32], m: &[f32]) {
    for row in m.chunks_exact(dst.len()) {
        for (d, v) in dst.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// The forward pass on `x` (`[n, s, s]`, pixel values), keeping what the backward needs.
pub fn forward(mc: &ModelConfig, w: &Weights, x: &[f32], masks: Option<&Masks>, threads: &Threads) -> Cache {
    let dims = Dims::of(mc);
    let n = x.len() / dims.pixels();
    let (c1, c2) = (dims.conv1, dims.conv2);
    let mut cache = Cache {
        n,
        conv1: vec![0.0; n * c1.out_len()],
        pooled: vec![0.0; n * dims.d],
        arg: vec![0; n * dims.d],
        a: Vec::new(),
        h: vec![0.0; n * dims.hidden],
        hd: Vec::new(),
        logits: vec![0.0; n * dims.classes],
    };
    threads.install(|| {
        let conv1 = Disjoint::new(&mut cache.conv1);
        let pooled = Disjoint::new(&mut cache.pooled);
        let arg = Disjoint::new(&mut cache.arg);
        threads.for_each(n.div_ceil(CHUNK), |chunk| {
            let mut patches = vec![0.0; dims.scratch_len()];
            let mut out2 = vec![0.0; c2.out_len()];
            for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(n) {
                // SAFETY: image i's rows of each buffer belong to this chunk alone.
                let (pl, ag) = unsafe {
                    (
                        pooled.slice(i * dims.d..(i + 1) * dims.d),
                        arg.slice(i * dims.d..(i + 1) * dims.d),
                    )
                };
                let o1 = unsafe { conv1.slice(i * c1.out_len()..(i + 1) * c1.out_len()) };
                time(Op::ConvForward, || {
                    c1.forward_relu(&x[i * c1.in_len()..][..c1.in_len()], &w.w1, &w.b1, o1, &mut patches);
                    c2.forward_relu(o1, &w.w2, &w.b2, &mut out2, &mut patches);
                });
                time(Op::Elementwise, || {
                    kernels::max_pool_forward(&out2, c2.oh(), c2.ow(), c2.f, pl, ag)
                });
            }
        });
        cache.a = time(Op::Elementwise, || match masks {
            Some(m) => cache.pooled.iter().zip(&m.conv).map(|(v, k)| v * k).collect(),
            None => cache.pooled.clone(),
        });
        let par = threads.gemm();
        time(Op::Matmul, || {
            matmul(
                n,
                dims.hidden,
                dims.d,
                &mut cache.h,
                dims.hidden,
                false,
                View::rows(&cache.a, dims.d),
                View::transposed(&w.fc1, dims.d),
                par,
            )
        });
        cache.hd = time(Op::Elementwise, || {
            bias_relu(&mut cache.h, &w.b3);
            match masks {
                Some(m) => cache.h.iter().zip(&m.dense).map(|(v, k)| v * k).collect(),
                None => cache.h.clone(),
            }
        });
        time(Op::Matmul, || {
            matmul(
                n,
                dims.classes,
                dims.hidden,
                &mut cache.logits,
                dims.classes,
                false,
                View::rows(&cache.hd, dims.hidden),
                View::transposed(&w.fc2, dims.hidden),
                par,
            );
            for row in cache.logits.chunks_exact_mut(dims.classes) {
                for (v, b) in row.iter_mut().zip(&w.b4) {
                    *v += b;
                }
            }
        });
    });
    cache
}

/// Logits only (evaluation: no dropout, nothing kept).
pub fn logits(mc: &ModelConfig, w: &Weights, x: &[f32], threads: &Threads) -> Vec<f32> {
    forward(mc, w, x, None, threads).logits
}

/// Back-propagates `dlogits` (`[n, classes]`) through the pass in `cache` on input `x`.
/// Adds the parameter gradients to `grads` when given, and writes the input gradient to `dx`
/// (`[n, s, s]`) when given; the power iteration needs only the latter.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    mc: &ModelConfig,
    w: &Weights,
    x: &[f32],
    cache: &Cache,
    dlogits: &[f32],
    masks: Option<&Masks>,
    threads: &Threads,
    grads: Option<&mut Grads>,
    dx: Option<&mut [f32]>,
) {
    let dims = Dims::of(mc);
    let (c1, c2) = (dims.conv1, dims.conv2);
    let n = cache.n;
    let (hid, k, d) = (dims.hidden, dims.classes, dims.d);
    let want_dw = grads.is_some();
    let mut grads = grads;
    threads.install(|| {
        let par = threads.gemm();
        let mut dh = vec![0.0; n * hid];
        time(Op::Matmul, || {
            if let Some(g) = grads.as_deref_mut() {
                matmul(
                    k,
                    hid,
                    n,
                    &mut g.0[6],
                    hid,
                    true,
                    View::transposed(dlogits, k),
                    View::rows(&cache.hd, hid),
                    par,
                );
                add_column_sums(&mut g.0[7], dlogits);
            }
            matmul(
                n,
                hid,
                k,
                &mut dh,
                hid,
                false,
                View::rows(dlogits, k),
                View::rows(&w.fc2, hid),
                par,
            );
        });
        time(Op::Elementwise, || match masks {
            Some(m) => dh
                .iter_mut()
                .zip(&cache.h)
                .zip(&m.dense)
                .for_each(|((g, h), k)| *g = if *h > 0.0 { *g * k } else { 0.0 }),
            None => dh
                .iter_mut()
                .zip(&cache.h)
                .for_each(|(g, h)| *g = if *h > 0.0 { *g } else { 0.0 }),
        });
        let mut da = vec![0.0; n * d];
        time(Op::Matmul, || {
            if let Some(g) = grads.as_deref_mut() {
                matmul(
                    hid,
                    d,
                    n,
                    &mut g.0[4],
                    d,
                    true,
                    View::transposed(&dh, hid),
                    View::rows(&cache.a, d),
                    par,
                );
                add_column_sums(&mut g.0[5], &dh);
            }
            matmul(
                n,
                d,
                hid,
                &mut da,
                d,
                false,
                View::rows(&dh, hid),
                View::rows(&w.fc1, d),
                par,
            );
        });
        if let Some(m) = masks {
            time(Op::Elementwise, || {
                da.iter_mut().zip(&m.conv).for_each(|(g, k)| *g *= k)
            });
        }

        // Per image: pool, conv2 and conv1, with one gradient accumulator per chunk.
        let chunks = n.div_ceil(CHUNK);
        let acc_len = c2.f * c2.k() + c2.f + c1.f * c1.k() + c1.f;
        let mut partial = if want_dw {
            vec![0.0; chunks * acc_len]
        } else {
            Vec::new()
        };
        let mut no_dx = Vec::new();
        let dx_buf: &mut [f32] = match dx {
            Some(b) => b,
            None => &mut no_dx,
        };
        let want_dx = !dx_buf.is_empty();
        {
            let partial = Disjoint::new(&mut partial);
            let dxs = Disjoint::new(dx_buf);
            threads.for_each(chunks, |chunk| {
                let mut scratch = vec![0.0; dims.scratch_len()];
                let mut d2 = vec![0.0; c2.out_len()];
                let mut d1 = vec![0.0; c1.out_len()];
                // SAFETY: each chunk owns its accumulator and its images' rows of dx.
                let acc = if want_dw {
                    Some(unsafe { partial.slice(chunk * acc_len..(chunk + 1) * acc_len) })
                } else {
                    None
                };
                let mut acc = acc.map(|a| {
                    let (w2, rest) = a.split_at_mut(c2.f * c2.k());
                    let (b2, rest) = rest.split_at_mut(c2.f);
                    let (w1, b1) = rest.split_at_mut(c1.f * c1.k());
                    (w2, b2, w1, b1)
                });
                for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(n) {
                    let img = i * d..(i + 1) * d;
                    time(Op::Elementwise, || {
                        kernels::max_pool_relu_backward(
                            &da[img.clone()],
                            &cache.pooled[img.clone()],
                            &cache.arg[img],
                            c2.oh(),
                            c2.ow(),
                            c2.f,
                            &mut d2,
                        )
                    });
                    let xi = &x[i * c1.in_len()..][..c1.in_len()];
                    let o1 = &cache.conv1[i * c1.out_len()..][..c1.out_len()];
                    if let Some((w2, b2, _, _)) = acc.as_mut() {
                        time(Op::ConvWeightGrad, || {
                            c2.backward_weights(o1, &d2, w2, b2, &mut scratch)
                        });
                    }
                    time(Op::ConvInputGrad, || {
                        c2.backward_input(&w.w2, &d2, &mut d1, &mut scratch)
                    });
                    time(Op::Elementwise, || {
                        d1.iter_mut()
                            .zip(o1)
                            .for_each(|(g, o)| *g = if *o > 0.0 { *g } else { 0.0 })
                    });
                    if let Some((_, _, w1, b1)) = acc.as_mut() {
                        time(Op::ConvWeightGrad, || {
                            c1.backward_weights(xi, &d1, w1, b1, &mut scratch)
                        });
                    }
                    if want_dx {
                        let out = unsafe { dxs.slice(i * c1.in_len()..(i + 1) * c1.in_len()) };
                        time(Op::ConvInputGrad, || c1.backward_input(&w.w1, &d1, out, &mut scratch));
                    }
                }
            });
        }
        if let Some(g) = grads {
            // The chunks' partial sums, in chunk order, whatever the thread count.
            time(Op::Layout, || {
                for a in partial.chunks_exact(acc_len) {
                    let (pw2, rest) = a.split_at(c2.f * c2.k());
                    let (pb2, rest) = rest.split_at(c2.f);
                    let (pw1, pb1) = rest.split_at(c1.f * c1.k());
                    for (i, src) in [(2, pw2), (3, pb2), (0, pw1), (1, pb1)] {
                        g.0[i].iter_mut().zip(src).for_each(|(a, b)| *a += b);
                    }
                }
            });
        }
    });
}
