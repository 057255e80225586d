//! The spec engine held to finite differences, to the seed's kernels and to the paper's batch
//! norm rules.

use super::{
    net::{Mode, Net, StepDraws, nchw_nhwc},
    net_step,
    par::Threads,
};
use crate::{
    config::{ModelConfig, TrainConfig},
    params::init_params,
    rng::{Draws, Rng},
    spec::ModelSpec,
};

fn one() -> Threads {
    Threads::new(1).unwrap()
}

fn spec(json: &str) -> Net {
    Net::new(&ModelSpec::from_json(json).unwrap()).unwrap()
}

/// Every layer kind: same-padded strided conv, batch norm on a map and on a vector, leaky relu,
/// valid conv, relu, overlapping max pool, dropout, noise, dense on a map and global average pooling.
const EVERY_LAYER: [&str; 2] = [
    r#"{"input":[2,7,6],"classes":3,"layers":[
        {"type":"conv","filters":3,"kernel":3,"stride":2,"padding":"same"},
        {"type":"batchNorm"},{"type":"leakyRelu","slope":0.2},
        {"type":"conv","filters":4,"kernel":2,"bias":false},{"type":"relu"},
        {"type":"maxPool","size":2,"stride":1},{"type":"dropout","rate":0.3},
        {"type":"gaussianNoise","std":0.5},
        {"type":"dense","units":5},{"type":"batchNorm"},{"type":"relu"},
        {"type":"dense","units":3}]}"#,
    r#"{"input":[3,5,5],"classes":3,"layers":[
        {"type":"conv","filters":4,"kernel":3,"padding":"same"},{"type":"leakyRelu"},
        {"type":"globalAvgPool"},{"type":"batchNorm"},{"type":"dense","units":3}]}"#,
];

/// A smooth scalar of the logits: sum(logits * r).
fn probe_loss(logits: &[f32], r: &[f32]) -> f32 {
    logits.iter().zip(r).map(|(a, b)| a * b).sum()
}

#[test]
fn every_layer_backward_matches_finite_differences_in_training_and_evaluation() {
    for json in EVERY_LAYER {
        let net = spec(json);
        let n = 4;
        let mut rng = Rng::new(5);
        let mut params = net.init(&mut rng);
        // Biases, gammas and running statistics away from their trivial starts.
        for (p, spec) in params.iter_mut().zip(&net.params) {
            if spec.shape.len() == 1 {
                let shift = if spec.name.ends_with("running_var") { 1.5 } else { 0.0 };
                *p = rng
                    .normals(p.len())
                    .iter()
                    .map(|v| shift + 0.3 * v.abs() + 0.1 * v)
                    .collect();
            }
        }
        let x = rng.normals(n * net.input_len());
        let draws = net.draw(&mut rng, n);
        let r = rng.normals(n * net.classes());
        for mode in [Mode::Train, Mode::Eval] {
            // The loss, and which side of each relu and max pool kink it was on.
            let loss = |params: &[Vec<f32>], x: &[f32]| {
                let w = net.prepare(params);
                let c = net.forward(&w, x, mode, &draws, &one());
                (probe_loss(c.logits(), &r), net.kinks(&c))
            };
            let w = net.prepare(&params);
            let cache = net.forward(&w, &x, mode, &draws, &one());
            let mut grads = net.zero_grads();
            let dx = net
                .backward(&w, &cache, &r, &draws, Some(&mut grads), true, &one())
                .unwrap();
            let grads = grads.into_pytorch(&net);
            let h = 1e-2f32;
            let mut checked = 0;
            let mut check = |what: &str, i: usize, a: (f32, Vec<u32>), b: (f32, Vec<u32>), g: f32| {
                // A nudge across a kink measures the other side's slope too: not comparable.
                if a.1 != b.1 {
                    return;
                }
                checked += 1;
                let fd = (a.0 - b.0) / (2.0 * h);
                assert!(
                    (fd - g).abs() <= 5e-3 + 1e-2 * g.abs(),
                    "{json}\n{mode:?} {what}[{i}]: finite difference {fd}, gradient {g}"
                );
            };
            for i in 0..x.len() {
                let (mut a, mut b) = (x.clone(), x.clone());
                a[i] += h;
                b[i] -= h;
                check("input", i, loss(&params, &a), loss(&params, &b), dx[i]);
            }
            for (t, spec) in net.params.iter().enumerate() {
                if ModelSpec::is_buffer(&spec.name) {
                    continue;
                }
                for i in 0..spec.len() {
                    let (mut a, mut b) = (params.clone(), params.clone());
                    a[t][i] += h;
                    b[t][i] -= h;
                    check(&spec.name, i, loss(&a, &x), loss(&b, &x), grads[t][i]);
                }
            }
            let total = x.len()
                + net
                    .params
                    .iter()
                    .filter(|p| !ModelSpec::is_buffer(&p.name))
                    .map(|p| p.len())
                    .sum::<usize>();
            assert!(
                checked * 10 >= total * 8,
                "{mode:?}: only {checked} of {total} nudges stayed clear of a kink"
            );
        }
    }
}

fn tiny_seed(dropout: bool) -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            image_size: 10,
            conv_filters: 3,
            hidden: 6,
            classes: 4,
            dropout,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn seed_net(c: &TrainConfig) -> Net {
    let m = &c.model;
    let dropout = m.dropout.then_some((m.dropout_conv, m.dropout_dense));
    let spec = ModelSpec::seed_cnn(
        [1, m.image_size, m.image_size],
        m.classes,
        m.conv_filters,
        m.hidden,
        dropout,
    );
    Net::new(&spec).unwrap()
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * scale, "{what}[{i}]: {x} vs {y} (scale {scale})");
    }
}

#[test]
fn the_seed_spec_on_the_general_engine_takes_the_seed_kernels_step() {
    for (dropout, semi, entmin) in [
        (false, false, false),
        (true, false, true),
        (true, true, true),
        (false, true, false),
    ] {
        let mut config = tiny_seed(dropout);
        config.entmin = entmin;
        let net = seed_net(&config);
        let mc = &config.model;
        let (n, nu) = (5, 7);
        let mut rng = Rng::new(11);
        let params = init_params(mc, &mut rng);
        assert_eq!(net.init(&mut Rng::new(11)), params, "the same initial weights");
        let x: Vec<f32> = (0..n * mc.pixels()).map(|_| rng.uniform() as f32).collect();
        let xu: Vec<f32> = (0..nu * mc.pixels()).map(|_| rng.uniform() as f32).collect();
        let y: Vec<u32> = (0..n).map(|i| (i % mc.classes) as u32).collect();
        let x_u = semi.then_some(&xu[..]);
        let draws = Draws::draw(&config, &mut rng, n, semi.then_some(nu));
        // The seed draws its conv mask NCHW; the engine takes NHWC.
        let p = mc.pooled_size();
        let to_net = |m: &Option<(Vec<f32>, Vec<f32>)>| {
            m.as_ref()
                .map(|(c, d)| vec![nchw_nhwc(c, mc.conv_filters, p * p, false), d.clone()])
                .unwrap_or_default()
        };
        let net_draws = StepDraws {
            d: draws.d.clone(),
            labeled: to_net(&draws.masks_labeled),
            unlabeled: semi.then(|| to_net(&draws.masks_unlabeled)),
        };
        let seed =
            super::step::forward_backward(&config, crate::params::seed_eight(&params), &x, &y, x_u, &draws, &one());
        let general = net_step::forward_backward(&config, &net, &params, &x, &y, x_u, &net_draws, &one());
        let what = format!("dropout {dropout}, semi {semi}, entmin {entmin}");
        close(
            &[general.loss, general.ce, general.lds, general.entropy],
            &[seed.loss, seed.ce, seed.lds, seed.entropy],
            &format!("{what}: losses"),
        );
        close(&general.logits, &seed.logits, &format!("{what}: logits"));
        close(
            general.r_adv.as_ref().unwrap(),
            seed.r_adv.as_ref().unwrap(),
            &format!("{what}: r_adv"),
        );
        for (i, (g, s)) in general.grads.iter().zip(&seed.grads).enumerate() {
            close(g, s, &format!("{what}: grad {}", net.params[i].name));
        }
    }
}

const BN_MLP: &str = r#"{"input":[1,4,4],"classes":3,"layers":[
    {"type":"dense","units":6,"bias":false},{"type":"batchNorm","momentum":0.1},{"type":"relu"},
    {"type":"dense","units":3,"bias":false},{"type":"batchNorm","momentum":0.1}]}"#;

#[test]
fn only_the_clean_labeled_pass_moves_batch_norms_running_statistics() {
    let net = spec(BN_MLP);
    let config = TrainConfig {
        entmin: true,
        ..Default::default()
    };
    let mut rng = Rng::new(3);
    let params = net.init(&mut rng);
    let (n, nu) = (8, 10);
    let x = rng.normals(n * 16);
    let xu: Vec<f32> = rng.normals(nu * 16).iter().map(|v| 3.0 * v + 1.0).collect();
    let y: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let draws = net.draw_step(&mut rng, true, n, Some(nu));
    let out = net_step::forward_backward(&config, &net, &params, &x, &y, Some(&xu), &draws, &one());
    let mut after = params.clone();
    net.update_running_stats(&out.clean, &mut after);

    // What the labeled batch alone gives: mean and unbiased variance of fc1's output.
    let w = net.prepare(&params);
    let fc1: Vec<f32> = {
        let (wt, x) = (&params[0], &x);
        (0..n)
            .flat_map(|i| (0..6).map(move |u| (0..16).map(|j| x[i * 16 + j] * wt[u * 16 + j]).sum::<f32>()))
            .collect()
    };
    for u in 0..6 {
        let col: Vec<f64> = (0..n).map(|i| fc1[i * 6 + u] as f64).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let (rm, rv) = (after[3][u] as f64, after[4][u] as f64);
        assert!(
            (rm - 0.1 * mean).abs() < 1e-5,
            "running mean {u}: {rm} vs {}",
            0.1 * mean
        );
        assert!(
            (rv - (0.9 + 0.1 * var)).abs() < 1e-4,
            "running var {u}: {rv} vs {}",
            0.9 + 0.1 * var
        );
    }
    // Evaluation uses the running statistics: with them set to the batch's own (biased)
    // statistics, evaluation reproduces the training pass.
    let train = net.forward(&w, &x, Mode::Train, &[], &one());
    let mut set = params.clone();
    for (bn, p) in [(1usize, 1usize), (4, 6)] {
        let b = train.bn[bn].as_ref().unwrap();
        set[p + 2] = b.mean.clone();
        set[p + 3] = b.var.clone();
    }
    let eval = net.logits(&net.prepare(&set), &x, &one());
    close(&eval, train.logits(), "eval with the batch's statistics");
    let fresh = net.logits(&w, &x, &one());
    assert!(
        fresh.iter().zip(train.logits()).any(|(a, b)| (a - b).abs() > 1e-2),
        "eval is not the batch-statistics pass"
    );
}

#[test]
fn the_thread_count_does_not_change_a_bit_of_a_spec_step() {
    let net = spec(EVERY_LAYER[0]);
    let config = TrainConfig::default();
    let mut rng = Rng::new(9);
    let params = net.init(&mut rng);
    let n = 9;
    let x = rng.normals(n * net.input_len());
    let y: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let draws = net.draw_step(&mut rng, true, n, None);
    let run = |t: usize| {
        let out = net_step::forward_backward(&config, &net, &params, &x, &y, None, &draws, &Threads::new(t).unwrap());
        (out.loss, out.grads, out.r_adv)
    };
    assert_eq!(run(1), run(2));
}
