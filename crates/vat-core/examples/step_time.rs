//! Times training steps of the seed CNN natively, for profiling and A/B tests of the kernels:
//! `cargo run --release --example step_time -- [backend] [threads] [steps] [batch] [vat|plain]`.
//! Prints one line per step and the median.

use std::time::Instant;

use pollster::block_on;
use vat_core::{
    backend::{Backend, BackendKind},
    config::TrainConfig,
    rng::Rng,
    train::Trainer,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let kind: BackendKind = arg(0, "cpu").parse().unwrap();
    let threads: usize = arg(1, "1").parse().unwrap();
    let steps: usize = arg(2, "10").parse().unwrap();
    let batch: usize = arg(3, "128").parse().unwrap();
    let vat = arg(4, "vat") == "vat";
    let config = TrainConfig { vat, ..Default::default() };
    let mut t = Trainer::new(config.clone(), block_on(Backend::start(kind, threads)).unwrap()).unwrap();
    // MNIST-like input: mostly zeros, some bright strokes.
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..batch * 784).map(|_| if rng.uniform() < 0.2 { rng.uniform() as f32 } else { 0.0 }).collect();
    let y: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let mut ms = Vec::new();
    for i in 0..steps + 1 {
        let t0 = Instant::now();
        let s = block_on(t.train_step(&x, &y, None, 1.0)).unwrap();
        let dt = t0.elapsed().as_secs_f64() * 1000.0;
        eprintln!("step {i}: {dt:.1} ms, loss {:.4}", s.loss);
        if i > 0 {
            ms.push(dt);
        }
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = ms[ms.len() / 2];
    println!(
        "{} {} threads, batch {batch}, {}: median {median:.1} ms/step, {:.0} img/s",
        kind.as_str(),
        t.backend.threads.count(),
        if vat { "VAT" } else { "plain" },
        batch as f64 * 1000.0 / median
    );
}
