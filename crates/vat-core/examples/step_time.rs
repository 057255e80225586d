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
    let config = TrainConfig {
        vat,
        ..Default::default()
    };
    let mut t = Trainer::new(config.clone(), block_on(Backend::start(kind, threads)).unwrap()).unwrap();
    // MNIST-like input: mostly zeros, some bright strokes.
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..batch * 784)
        .map(|_| if rng.uniform() < 0.2 { rng.uniform() as f32 } else { 0.0 })
        .collect();
    let y: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let mut ms = Vec::new();
    let mut profiled = Vec::new();
    for i in 0..steps + 1 {
        let t0 = Instant::now();
        let s = block_on(t.train_step(&x, &y, None, 1.0)).unwrap();
        let dt = t0.elapsed().as_secs_f64() * 1000.0;
        eprintln!("step {i}: {dt:.1} ms, loss {:.4}", s.loss);
        let p = vat_core::cpu::profile::take();
        if i > 0 {
            ms.push(dt);
            profiled.push(p);
        }
    }
    // With the `profile` feature: mean ms per step of each kind of work in the CPU kernels.
    if profiled.iter().any(|p| !p.is_empty()) {
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        let mut covered = 0.0;
        for (j, (op, _)) in profiled[0].iter().enumerate() {
            let v = profiled.iter().map(|p| p[j].1).sum::<f64>() * 1000.0 / profiled.len() as f64;
            covered += v;
            println!("| {op:?} | {v:.1} | {:.0}% |", 100.0 * v / mean);
        }
        println!(
            "| other (allocation, the step's glue) | {:.1} | {:.0}% |",
            mean - covered,
            100.0 * (mean - covered) / mean
        );
        println!("| step (mean) | {mean:.1} | 100% |");
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
