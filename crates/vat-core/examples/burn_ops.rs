//! Times burn-flex's operations one at a time, natively, at the seed CNN's shapes (batch 128), and
//! composes a VAT and a plain step from them by counting how often each runs: the per-op
//! breakdown of the `burn-cpu` backend in docs/results.md ("Where the time goes").
//! `cargo run --release --example burn_ops [repeats]`.

use std::time::Instant;

use burn::tensor::{
    Device, Tensor, TensorData,
    activation::{log_softmax, relu},
    module::{conv2d, max_pool2d},
    ops::{ConvOptions, MaxPoolOptions},
};
use pollster::block_on;
use vat_core::{config::TrainConfig, model::Params, optim::OptimState, rng::Rng, state::read_f32};

fn t4(rng: &mut Rng, shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(rng.normals(n), shape), device)
}

fn t2(rng: &mut Rng, shape: [usize; 2], device: &Device) -> Tensor<2> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(rng.normals(n), shape), device)
}

/// Median milliseconds of `f` over `repeats` runs, each ended by a read-back so lazy work is counted.
fn ms(repeats: usize, mut f: impl FnMut() -> Tensor<1>) -> f64 {
    let mut v: Vec<f64> = (0..repeats)
        .map(|_| {
            let t0 = Instant::now();
            block_on(read_f32(f())).unwrap();
            t0.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let repeats: usize = std::env::args().nth(1).map_or(5, |s| s.parse().unwrap());
    let device = Device::flex();
    let mut rng = Rng::new(1);
    let n = 128;
    let valid = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let sum = |t: Tensor<4>| t.sum().reshape([1]);

    let x1 = t4(&mut rng, [n, 1, 28, 28], &device);
    let w1 = t4(&mut rng, [32, 1, 3, 3], &device);
    let x2 = t4(&mut rng, [n, 32, 26, 26], &device);
    let w2 = t4(&mut rng, [32, 32, 3, 3], &device);
    let g1 = t4(&mut rng, [n, 32, 26, 26], &device);
    let g2 = t4(&mut rng, [n, 32, 24, 24], &device);

    // Forward, and forward + backward to the input or the kernel only (their difference is the backward).
    let f1 = ms(repeats, || sum(conv2d(x1.clone(), w1.clone(), None, valid.clone())));
    let f2 = ms(repeats, || sum(conv2d(x2.clone(), w2.clone(), None, valid.clone())));
    let grad_of = |x: &Tensor<4>, w: &Tensor<4>, g: &Tensor<4>, wrt_x: bool| {
        let (x, w) = if wrt_x {
            (x.clone().autodiff().require_grad(), w.clone().autodiff())
        } else {
            (x.clone().autodiff(), w.clone().autodiff().require_grad())
        };
        let y = conv2d(x.clone(), w.clone(), None, valid.clone());
        let loss = (y * g.clone().autodiff()).sum();
        let grads = loss.backward();
        let gx = if wrt_x {
            x.grad(&grads).unwrap()
        } else {
            w.grad(&grads).unwrap()
        };
        gx.sum().reshape([1])
    };
    let x1_grad = ms(repeats, || grad_of(&x1, &w1, &g1, true)) - f1;
    let w1_grad = ms(repeats, || grad_of(&x1, &w1, &g1, false)) - f1;
    let x2_grad = ms(repeats, || grad_of(&x2, &w2, &g2, true)) - f2;
    let w2_grad = ms(repeats, || grad_of(&x2, &w2, &g2, false)) - f2;

    // The dense layers: forward [n, 4608] x [4608, 128], and its two backward products.
    let a = t2(&mut rng, [n, 4608], &device);
    let fw = t2(&mut rng, [128, 4608], &device);
    let dh = t2(&mut rng, [n, 128], &device);
    let dense_f = ms(repeats, || a.clone().matmul(fw.clone().transpose()).sum().reshape([1]));
    let dense_b = ms(repeats, || {
        let dx = dh.clone().matmul(fw.clone());
        let dw = dh.clone().transpose().matmul(a.clone());
        dx.sum().reshape([1]) + dw.sum().reshape([1])
    });

    // Element-wise: relu of both conv outputs and the 2x2 max pool, forward and back.
    let elem_f = ms(repeats, || {
        let h = relu(g1.clone());
        let p = max_pool2d(relu(g2.clone()), MaxPoolOptions::new([2, 2]));
        sum(h) + sum(p)
    });
    let elem_fb = ms(repeats, || {
        let y1 = g1.clone().autodiff().require_grad();
        let y2 = g2.clone().autodiff().require_grad();
        let loss = relu(y1.clone()).sum() + max_pool2d(relu(y2.clone()), MaxPoolOptions::new([2, 2])).sum();
        let grads = loss.backward();
        y1.grad(&grads).unwrap().sum().reshape([1]) + y2.grad(&grads).unwrap().sum().reshape([1])
    });
    let elem_b = elem_fb - elem_f;

    // Softmax and KL on [n, 10], forward and back.
    let logits = t2(&mut rng, [n, 10], &device);
    let kl = ms(repeats, || {
        let q = logits.clone().autodiff().require_grad();
        let log_p = log_softmax(logits.clone(), 1).autodiff();
        let log_q = log_softmax(q.clone(), 1);
        let v = (log_p.clone().exp() * (log_p - log_q)).sum_dim(1).mean();
        q.grad(&v.backward()).unwrap().sum().reshape([1])
    });

    // The optimiser: one Adadelta update of the eight parameters.
    let config = TrainConfig::default();
    let params = Params::init(&config.model, &mut rng, &device);
    let grads = params.flat();
    let mut opt = OptimState::zeros_like(config.optimizer, &params.flat());
    let optim = ms(repeats, || {
        let new = opt.step(&config, 1.0, params.flat().to_vec(), grads.to_vec());
        new.into_iter()
            .map(|t| t.sum().reshape([1]))
            .reduce(|a, b| a + b)
            .unwrap()
    });

    // Host to device: one batch of images, and the step's read-back (four scalars, the logits).
    let host = rng.normals(n * 784);
    let copies = ms(repeats, || {
        let t: Tensor<4> = Tensor::from_data(TensorData::new(host.clone(), [n, 1, 28, 28]), &device);
        t.flatten::<1>(0, 3).narrow(0, 0, 4 + n * 10)
    });

    // One VAT step runs: 3 forward passes (clean, probe, adversarial); backward to the input 3 times
    // (the probe to x, the other two through conv2 to conv1) and to the weights 2 times; the input
    // gradient of conv1 only for the probe; 2 KLs and a cross-entropy. A plain step: 1 and 1.
    let rows = [
        ("conv forward", 3.0 * (f1 + f2), f1 + f2),
        ("conv input gradient", x1_grad + 3.0 * x2_grad, x2_grad),
        ("conv weight gradient", 2.0 * (w1_grad + w2_grad), w1_grad + w2_grad),
        (
            "matmul (dense layers)",
            3.0 * dense_f + 3.0 * dense_b,
            dense_f + dense_b,
        ),
        ("element-wise (relu, pool)", 3.0 * (elem_f + elem_b), elem_f + elem_b),
        ("softmax / KL", 3.0 * kl, kl),
        ("optimiser", optim, optim),
        ("host-device copies", copies, copies),
    ];
    println!("| operation (burn-flex, native, batch {n}) | VAT step, ms | plain step, ms |");
    println!("|---|---:|---:|");
    let (mut tv, mut tp) = (0.0, 0.0);
    for (name, v, p) in rows {
        tv += v;
        tp += p;
        println!("| {name} | {v:.1} | {p:.1} |");
    }
    println!("| sum of the parts | {tv:.1} | {tp:.1} |");
}
