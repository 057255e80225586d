//! Behavioural tests of the VAT core. The trainer-level tests run on both CPU implementations,
//! this crate's kernels (`cpu`) and burn-flex running the burn graph (`burn-cpu`), and the two are
//! held to each other; the graph-level tests (finite differences, LDS properties) check the burn
//! graph directly. They call the same functions the wasm surface and the Node addon export.

use burn::tensor::{Device, Tensor, TensorData};
use pollster::block_on;
use vat_core::{
    VatError,
    backend::{Backend, BackendKind},
    config::{ModelConfig, OptimizerKind, Options, TrainConfig},
    graph::{Noise, forward_backward, images, one_hot},
    inspect::{InspectInput, inspect},
    model::{DropoutMasks, Params},
    rng::{Draws, Rng},
    state::{self, read_f32},
    train::Trainer,
    vat::{kl_with_logits, normalize_per_sample, r_adv},
    web,
};

/// burn-flex, for the graph-level tests.
fn burn_cpu() -> Backend {
    block_on(Backend::start(BackendKind::BurnCpu, 1)).unwrap()
}

fn start(kind: BackendKind, threads: usize) -> Backend {
    block_on(Backend::start(kind, threads)).unwrap()
}

/// Both CPU implementations, for the trainer-level tests.
const CPU_KINDS: [BackendKind; 2] = [BackendKind::Cpu, BackendKind::BurnCpu];

fn device(b: &Backend) -> Device {
    b.device.clone().expect("a burn backend")
}

/// A model small enough for finite differences: 8x8 input, 3 filters, 5 hidden units.
fn tiny() -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            image_size: 8,
            conv_filters: 3,
            hidden: 5,
            classes: 4,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn host(t: Tensor<1>) -> Vec<f32> {
    block_on(read_f32(t)).unwrap()
}

/// A learnable toy task: noise images in which the quadrant numbered by the label is bright.
fn batch(config: &TrainConfig, n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let s = config.model.image_size;
    let classes = config.model.classes as u32;
    let mut x = Vec::with_capacity(n * s * s);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let label = i as u32 % classes;
        for r in 0..s {
            for c in 0..s {
                let quadrant = (2 * (r >= s / 2) as u32 + (c >= s / 2) as u32) % classes;
                let bright = if quadrant == label { 0.6 } else { 0.0 };
                x.push((0.4 * rng.uniform() + bright) as f32);
            }
        }
        y.push(label);
    }
    (x, y)
}

fn tensor4(v: Vec<f32>, c: &TrainConfig, device: &Device) -> Tensor<4> {
    images(&c.model, &v, device).unwrap()
}

#[test]
fn r_adv_has_norm_eps_per_sample() {
    let b = burn_cpu();
    let device = device(&b);
    for eps in [0.3, 1.0, 5.0] {
        let config = TrainConfig { eps, ..tiny() };
        let mut rng = Rng::new(1);
        let params = Params::init(&config.model, &mut rng, &device);
        let (x, _) = batch(&config, 7, 2);
        let x = tensor4(x, &config, &device);
        let clean = params.forward(x.clone(), None);
        let d0 = tensor4(rng.normals(7 * config.model.pixels()), &config, &device);
        let r = r_adv(&params, x, clean, d0, &config, None);
        let norms = host(r.reshape([7, 64]).square().sum_dim(1).sqrt().flatten(0, 1));
        for n in norms {
            assert!((n as f64 - eps).abs() < 1e-5 * eps.max(1.0), "norm {n} != eps {eps}");
        }
    }
}

#[test]
fn normalize_survives_tiny_gradients() {
    // With xi = 1e-6 the power-iteration gradient is ~1e-12; its squares underflow f32 unless
    // the max is divided out first.
    let device = device(&burn_cpu());
    let d = Tensor::<4>::from_data(TensorData::new(vec![3e-20f32, -4e-20, 0.0, 0.0], [1, 1, 2, 2]), &device);
    let n = host(normalize_per_sample(d).flatten(0, 3));
    assert!((n[0] - 0.6).abs() < 1e-5 && (n[1] + 0.8).abs() < 1e-5, "{n:?}");
}

#[test]
fn lds_is_nonnegative_and_zero_without_perturbation() {
    let b = burn_cpu();
    let device = device(&b);
    let config = tiny();
    let mut rng = Rng::new(3);
    let params = Params::init(&config.model, &mut rng, &device);
    let (x, _) = batch(&config, 5, 4);
    let x = tensor4(x, &config, &device);
    let clean = params.forward(x.clone(), None);
    let same = host(kl_with_logits(clean.clone(), clean.clone()))[0];
    assert!(same.abs() < 1e-7, "KL(p||p) = {same}");
    for seed in 0..5 {
        let r = tensor4(Rng::new(seed).normals(5 * 64), &config, &device);
        let moved = params.forward(x.clone() + r, None);
        let kl = host(kl_with_logits(clean.clone(), moved))[0];
        assert!(kl >= 0.0, "KL = {kl}");
        assert!(kl > 1e-6, "a unit-variance perturbation should move p, KL = {kl}");
    }
}

#[test]
fn power_iteration_direction_matches_finite_differences() {
    // One power iteration returns the direction of grad_r KL(p(x) || p(x + r)) at r = xi * d.
    // Compare it with central differences of the same function, coordinate by coordinate.
    let b = burn_cpu();
    let device = device(&b);
    let config = TrainConfig {
        xi: 2.0,
        eps: 1.0,
        ..tiny()
    };
    let mut rng = Rng::new(5);
    let params = Params::init(&config.model, &mut rng, &device);
    let (x, _) = batch(&config, 1, 6);
    let xt = tensor4(x.clone(), &config, &device);
    let clean = params.forward(xt.clone(), None);
    let d0 = rng.normals(64);
    let r = host(
        r_adv(
            &params,
            xt.clone(),
            clean.clone(),
            tensor4(d0.clone(), &config, &device),
            &config,
            None,
        )
        .flatten(0, 3),
    );

    let probe = host(normalize_per_sample(tensor4(d0, &config, &device)).flatten(0, 3));
    let kl_at = |r: &[f32]| -> f64 {
        let shifted: Vec<f32> = x.iter().zip(r).map(|(a, b)| a + b * config.xi as f32).collect();
        let q = params.forward(tensor4(shifted, &config, &device), None);
        host(kl_with_logits(clean.clone(), q))[0] as f64
    };
    let h = 1e-2f32;
    let mut fd = vec![0f64; 64];
    for i in 0..64 {
        let mut plus = probe.clone();
        let mut minus = probe.clone();
        plus[i] += h;
        minus[i] -= h;
        // d/dr_i of KL at r = xi * probe, by the chain rule through r = xi * probe.
        fd[i] = (kl_at(&plus) - kl_at(&minus)) / (2.0 * h as f64 * config.xi);
    }
    let norm = fd.iter().map(|v| v * v).sum::<f64>().sqrt();
    let cosine: f64 = fd.iter().zip(&r).map(|(a, b)| a / norm * *b as f64).sum::<f64>() / config.eps;
    assert!(cosine > 0.99, "cosine(finite-difference gradient, r_adv) = {cosine}");
}

#[test]
fn a_few_steps_reduce_the_loss() {
    for kind in CPU_KINDS {
        for optimizer in [OptimizerKind::Adam, OptimizerKind::Adadelta] {
            let config = TrainConfig { optimizer, ..tiny() };
            let lr = if optimizer == OptimizerKind::Adam { 0.01 } else { 1.0 };
            let mut t = Trainer::new(config.clone(), start(kind, 1)).unwrap();
            let (x, y) = batch(&config, 16, 7);
            let first = block_on(t.train_step(&x, &y, None, lr)).unwrap();
            let mut last = first;
            // Adadelta's first updates are tiny (sqrt(epsilon) / |g|), so it gets more steps.
            let steps = if optimizer == OptimizerKind::Adam { 30 } else { 150 };
            for _ in 0..steps {
                last = block_on(t.train_step(&x, &y, None, lr)).unwrap();
            }
            assert!(
                last.loss < 0.7 * first.loss,
                "{kind:?} {optimizer:?}: loss {} -> {}",
                first.loss,
                last.loss
            );
            assert!(last.lds > 0.0);
        }
    }
}

#[test]
fn semi_supervised_step_applies_vat_and_entmin_to_the_unlabeled_batch() {
    let config = TrainConfig { entmin: true, ..tiny() };
    let b = burn_cpu();
    let device = device(&b);
    let mut rng = Rng::new(8);
    let params = Params::init(&config.model, &mut rng, &device);
    let (x, y) = batch(&config, 3, 9);
    let (xu, _) = batch(&config, 6, 10);
    let noise = Noise {
        d: Some(tensor4(rng.normals(6 * 64), &config, &device)),
        masks_labeled: None,
        masks_unlabeled: None,
    };
    let out = forward_backward(
        &config,
        &params,
        tensor4(x, &config, &device),
        one_hot(&config.model, &y, 3, &device).unwrap(),
        Some(tensor4(xu, &config, &device)),
        &noise,
    );
    assert_eq!(out.r_adv.unwrap().dims(), [6, 1, 8, 8]);
    let [loss, ce, lds, ent] = [out.loss, out.ce, out.lds, out.entropy].map(|t| host(t)[0]);
    assert!(lds > 0.0 && ent > 0.0);
    assert!((loss - (ce + lds + ent)).abs() < 1e-5);
}

#[test]
fn the_entropy_weight_scales_the_entropy_terms_gradient_on_both_engines() {
    // grads(w) = grads(0) + w * (grads(1) - grads(0)), and weight 0 is the step without the term.
    let config = TrainConfig { entmin: true, ..tiny() };
    let mut rng = Rng::new(31);
    let weights: Vec<f32> = vat_core::params::init_params(&config.model, &mut rng).concat();
    let (x, y) = batch(&config, 3, 32);
    let (xu, _) = batch(&config, 6, 33);
    let draws = Draws::draw(&config, &mut rng, 3, Some(6));
    let (cpu, graph) = (start(BackendKind::Cpu, 1), burn_cpu());
    for (engine, backend) in [("cpu kernels", &cpu), ("burn graph", &graph)] {
        let step = |entmin: bool, entmin_weight: f64| {
            let c = TrainConfig {
                entmin,
                entmin_weight,
                ..config.clone()
            };
            let input = InspectInput {
                weights: &weights,
                x: &x,
                y: &y,
                x_u: Some(&xu),
                d: draws.d.as_deref(),
                masks_labeled: None,
                masks_unlabeled: None,
                lr: 0.5,
            };
            block_on(inspect(&c, backend, input)).unwrap()
        };
        let (off, zero, one, w) = (step(false, 1.0), step(true, 0.0), step(true, 1.0), step(true, 2.5));
        assert!(
            rel_err(&off.grads, &zero.grads) < 1e-6,
            "{engine}: weight 0 is not the step without the term"
        );
        assert!((zero.loss - off.loss).abs() < 1e-6 && zero.entropy > 0.0, "{engine}");
        let expected: Vec<f32> = zero
            .grads
            .iter()
            .zip(&one.grads)
            .map(|(a, b)| a + 2.5 * (b - a))
            .collect();
        let e = rel_err(&w.grads, &expected);
        assert!(e < 1e-5, "{engine}: weight 2.5 gives grads off by {e:e}");
        assert!(
            (w.loss - (w.ce + w.lds + 2.5 * w.entropy)).abs() < 1e-5,
            "{engine}: loss {}",
            w.loss
        );
        assert!(one.grads != zero.grads, "{engine}: the entropy term moved nothing");
    }
}

#[test]
fn dropout_masks_are_shared_so_lds_stays_zero_at_r_zero() {
    let config = TrainConfig {
        model: ModelConfig {
            dropout: true,
            ..tiny().model
        },
        ..tiny()
    };
    let b = burn_cpu();
    let device = device(&b);
    let mut rng = Rng::new(11);
    let params = Params::init(&config.model, &mut rng, &device);
    let draws = Draws::draw(&config, &mut rng, 4, None);
    let masks = DropoutMasks::upload(&config.model, 4, draws.masks_labeled.as_ref().unwrap(), &device);
    let (x, _) = batch(&config, 4, 12);
    let x = tensor4(x, &config, &device);
    let a = params.forward(x.clone(), Some(&masks));
    let c = params.forward(x.clone(), Some(&masks));
    assert!(host(kl_with_logits(a.clone(), c))[0].abs() < 1e-7);
    let no_dropout = params.forward(x, None);
    assert!(
        host(kl_with_logits(a, no_dropout))[0] > 1e-6,
        "the masks must change the output"
    );
}

#[test]
fn weights_round_trip_exactly() {
    for kind in CPU_KINDS {
        let config = tiny();
        let mut t = Trainer::new(config.clone(), start(kind, 1)).unwrap();
        let (x, y) = batch(&config, 8, 13);
        block_on(t.train_step(&x, &y, None, 1.0)).unwrap();
        let params = block_on(t.params()).unwrap();
        let bytes = state::export_weights(&params, &config.model).unwrap();
        assert_eq!(state::import_weights(&bytes, &config.model).unwrap(), params);
        // ...and into a trainer, whatever its backend.
        let mut other = Trainer::new(config.clone(), start(BackendKind::Cpu, 1)).unwrap();
        other.restore(state::import_weights(&bytes, &config.model).unwrap(), None);
        assert_eq!(block_on(other.params()).unwrap(), params);
    }
}

#[test]
fn a_checkpoint_alone_resumes_the_same_run() {
    for kind in CPU_KINDS {
        let config = TrainConfig {
            model: ModelConfig {
                dropout: true,
                ..tiny().model
            },
            optimizer: OptimizerKind::Adam,
            eps: 2.5,
            ..tiny()
        };
        let (x, y) = batch(&config, 8, 14);
        let mut a = Trainer::new(config.clone(), start(kind, 1)).unwrap();
        for _ in 0..3 {
            block_on(a.train_step(&x, &y, None, 0.01)).unwrap();
        }
        let (params, opt) = block_on(a.snapshot()).unwrap();
        let ck = state::export_checkpoint(&params, &opt, a.rng.state(), &a.config, r#"{"epoch":2}"#).unwrap();
        let next_a = block_on(a.train_step(&x, &y, None, 0.01)).unwrap();

        // Nothing but the file: the config (eps 2.5, the seed, dropout) comes from it.
        let (mut b, loop_state, changed) =
            Trainer::from_checkpoint(&ck, start(kind, 1), &Options::default(), false).unwrap();
        assert_eq!(
            (b.config.clone(), loop_state.as_str(), changed.len()),
            (config.clone(), r#"{"epoch":2}"#, 0)
        );
        let next_b = block_on(b.train_step(&x, &y, None, 0.01)).unwrap();
        assert_eq!(next_a, next_b, "{kind:?}");
        assert_eq!(b.step(), 4);
    }
}

#[test]
fn a_resume_with_other_settings_is_refused_naming_them_unless_allowed() {
    let config = tiny();
    let t = Trainer::new(config.clone(), start(BackendKind::Cpu, 1)).unwrap();
    let (params, opt) = block_on(t.snapshot()).unwrap();
    let ck = state::export_checkpoint(&params, &opt, t.rng.state(), &t.config, "{}").unwrap();
    let eps = Options {
        eps: Some(2.0),
        xi: Some(config.xi),
        ..Default::default()
    };
    let refused = Trainer::from_checkpoint(&ck, start(BackendKind::Cpu, 1), &eps, false)
        .err()
        .unwrap();
    assert!(
        matches!(&refused, VatError::InvalidConfig(m) if m.contains("eps (checkpoint 1.0, asked 2.0)") && !m.contains("xi")),
        "{refused}"
    );
    let (b, _, changed) = Trainer::from_checkpoint(&ck, start(BackendKind::Cpu, 1), &eps, true).unwrap();
    assert_eq!((b.config.eps, changed), (2.0, vec!["eps".to_string()]));
    // The model, the optimiser and the seed never change, override or not.
    for never in [
        Options {
            hidden: Some(6),
            ..Default::default()
        },
        Options {
            optimizer: Some(OptimizerKind::Adam),
            ..Default::default()
        },
        Options {
            seed: Some(1),
            ..Default::default()
        },
    ] {
        let e = Trainer::from_checkpoint(&ck, start(BackendKind::Cpu, 1), &never, true)
            .err()
            .unwrap();
        assert!(
            matches!(&e, VatError::InvalidConfig(m) if m.contains("a resume cannot change")),
            "{e}"
        );
    }
    // import_checkpoint, which takes the config as given, refuses any difference.
    let other = TrainConfig { alpha: 0.5, ..config };
    assert!(matches!(state::import_checkpoint(&ck, &other), Err(VatError::InvalidConfig(m)) if m.contains("alpha")));
}

#[test]
fn rejects_weights_for_another_architecture() {
    let small = tiny();
    let t = Trainer::new(small.clone(), start(BackendKind::Cpu, 1)).unwrap();
    let bytes = state::export_weights(&block_on(t.params()).unwrap(), &small.model).unwrap();
    let other = ModelConfig {
        hidden: 6,
        ..small.model.clone()
    };
    assert!(matches!(
        state::import_weights(&bytes, &other),
        Err(VatError::WeightsFormat(_))
    ));
    assert!(matches!(
        state::import_weights(b"not safetensors", &small.model),
        Err(VatError::WeightsFormat(_))
    ));
    // A weights file is not a checkpoint.
    assert!(matches!(
        state::import_checkpoint(&bytes, &small),
        Err(VatError::WeightsFormat(_))
    ));
}

/// `bytes` with its metadata's model_config replaced (the header rewritten, the data kept).
fn with_model_config(bytes: &[u8], model_json: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"]["model_config"] = model_json.into();
    let mut json = serde_json::to_vec(&header).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn a_weights_file_is_held_to_its_declared_model_before_anything_is_built() {
    let c = TrainConfig::default();
    let t = Trainer::new(c.clone(), start(BackendKind::Cpu, 1)).unwrap();
    let bytes = state::export_weights(&block_on(t.params()).unwrap(), &c.model).unwrap();
    assert_eq!(state::weights_model(&bytes).unwrap(), c.model);
    // Declaring 512x512 inputs (a 1 GB dense layer) over 28x28 tensors is refused from the header.
    let mut big = serde_json::to_value(&c.model).unwrap();
    big["imageSize"] = 512.into();
    let lying = with_model_config(&bytes, &big.to_string());
    match state::weights_model(&lying) {
        Err(VatError::WeightsFormat(m)) => assert!(m.contains("tensor 'fc1.weight' has shape [128, 4608]"), "{m}"),
        other => panic!("expected a WeightsFormat error, got {other:?}"),
    }
    assert!(block_on(web::trainer_from_weights("cpu".into(), lying, 1)).is_err());
    let ok = block_on(web::trainer_from_weights("cpu".into(), bytes, 1)).unwrap();
    assert_eq!(ok.config_json(), serde_json::to_string(&c).unwrap());
}

#[test]
fn a_damaged_but_finite_value_fails_the_checksum() {
    let c = TrainConfig::default();
    let t = Trainer::new(c.clone(), start(BackendKind::Cpu, 1)).unwrap();
    let (params, opt) = block_on(t.snapshot()).unwrap();
    let ck = state::export_checkpoint(&params, &opt, t.rng.state(), &t.config, "{}").unwrap();
    let n = u64::from_le_bytes(ck[..8].try_into().unwrap()) as usize;
    let mut bad = ck.clone();
    // The last byte of the first value: 1e30-sized, but finite.
    bad[8 + n + 3] = 0x72;
    assert!(f32::from_le_bytes(bad[8 + n..8 + n + 4].try_into().unwrap()).is_finite());
    match state::import_checkpoint(&bad, &c) {
        Err(VatError::WeightsFormat(m)) => assert!(m.contains("does not match its checksum"), "{m}"),
        _ => panic!("a damaged checkpoint was accepted"),
    }
    assert!(state::import_checkpoint(&ck, &c).is_ok());
}

#[test]
fn a_batch_that_cannot_fit_in_wasm_memory_is_refused_naming_the_largest_that_can() {
    use vat_core::train::check_batch_fits;
    const LIMIT: u64 = 4 << 30;
    let m = ModelConfig::default();
    assert!(check_batch_fits(&m, BackendKind::Cpu, 128, LIMIT).is_ok());
    match check_batch_fits(&m, BackendKind::BurnCpu, 6000, LIMIT) {
        Err(VatError::InvalidConfig(msg)) => {
            assert!(msg.contains("a batch of 6000 images needs about"), "{msg}");
            let largest: usize = msg
                .split("the largest batch that fits is about ")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(check_batch_fits(&m, BackendKind::BurnCpu, largest, LIMIT).is_ok());
            assert!(check_batch_fits(&m, BackendKind::BurnCpu, largest + 1, LIMIT).is_err());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn train_step_rejects_mismatched_or_non_finite_input() {
    for kind in CPU_KINDS {
        let config = tiny();
        let mut t = Trainer::new(config.clone(), start(kind, 1)).unwrap();
        let (x, y) = batch(&config, 4, 15);
        assert!(matches!(
            block_on(t.train_step(&x[..10], &y, None, 1.0)),
            Err(VatError::InvalidInput(_))
        ));
        assert!(matches!(
            block_on(t.train_step(&x, &y[..3], None, 1.0)),
            Err(VatError::InvalidInput(_))
        ));
        assert!(matches!(
            block_on(t.train_step(&x, &[0, 1, 2, 9], None, 1.0)),
            Err(VatError::InvalidInput(_))
        ));
        let mut nan = x.clone();
        nan[5] = f32::NAN;
        assert!(matches!(
            block_on(t.train_step(&nan, &y, None, 1.0)),
            Err(VatError::InvalidInput(_))
        ));
    }
}

#[test]
fn a_diverging_run_stops_with_non_finite_loss_and_keeps_its_weights() {
    for kind in CPU_KINDS {
        let config = TrainConfig {
            optimizer: OptimizerKind::Adam,
            ..tiny()
        };
        let mut t = Trainer::new(config.clone(), start(kind, 1)).unwrap();
        let (x, y) = batch(&config, 4, 16);
        // Adam moves every weight by about lr, so lr = 1e38 pushes the next logits past f32::MAX.
        block_on(t.train_step(&x, &y, None, 1e38)).unwrap();
        let before = block_on(t.params()).unwrap();
        let err = block_on(t.train_step(&x, &y, None, 1e38)).unwrap_err();
        assert!(matches!(err, VatError::NonFiniteLoss(..)), "{kind:?}: {err:?}");
        assert_eq!(err.name(), "NonFiniteLossError");
        assert_eq!(block_on(t.params()).unwrap(), before);
        assert_eq!(t.step(), 1, "the failed step must not count");
    }
}

#[test]
fn web_surface_reports_typed_errors() {
    let err = block_on(web::create_trainer("tpu".into(), "{}".into(), 1))
        .err()
        .unwrap();
    assert_eq!(err.name(), "InvalidConfigError");
    let err = block_on(web::create_trainer("cpu".into(), r#"{"eps": 0}"#.into(), 1))
        .err()
        .unwrap();
    assert_eq!(err.name(), "InvalidConfigError");
    let err = block_on(web::create_trainer("burn-cpu".into(), "{}".into(), 2))
        .err()
        .unwrap();
    assert_eq!(err.name(), "InvalidConfigError", "burn-flex runs on one thread");
    #[cfg(not(feature = "webgpu"))]
    {
        let err = block_on(web::create_trainer("webgpu".into(), "{}".into(), 1))
            .err()
            .unwrap();
        assert_eq!(err.name(), "BackendUnavailableError");
        let err = block_on(web::start_webgpu()).err().unwrap();
        assert_eq!(err.name(), "BackendUnavailableError");
        assert!(err.to_string().contains("feature 'webgpu'"), "{err}");
    }
}

#[test]
fn web_trainer_evaluates_and_inspects() {
    let config = tiny();
    let json = serde_json::to_string(&config).unwrap();
    let mut t = block_on(web::create_trainer("cpu".into(), json.clone(), 1)).unwrap();
    let (x, y) = batch(&config, 6, 17);
    let s = block_on(t.train_step(x.clone(), y.clone(), None, 1.0)).unwrap();
    assert_eq!(s.batch, 6);
    assert_eq!(t.step(), 1.0);
    let e = block_on(t.evaluate(x.clone(), y.clone(), 4)).unwrap();
    assert_eq!(e.count, 6);
    assert_eq!(e.confusion.iter().sum::<u32>(), 6);
    let probs = block_on(t.predict(x.clone())).unwrap();
    for row in probs.chunks(4) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    // inspect() on the exported weights reproduces the trainer's clean logits, on both backends.
    let bytes = block_on(t.export_weights()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let weights: Vec<f32> = vat_core::params::PARAM_NAMES
        .iter()
        .flat_map(|n| {
            st.tensor(n)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect();
    let d = Rng::new(1).normals(x.len());
    for backend in ["cpu", "burn-cpu"] {
        let ins = block_on(web::inspect(
            backend.into(),
            1,
            json.clone(),
            weights.clone(),
            x.clone(),
            y.clone(),
            None,
            Some(d.clone()),
            None,
            None,
            1.0,
        ))
        .unwrap();
        let k = 4;
        for (row_l, row_p) in ins.logits.chunks(k).zip(probs.chunks(k)) {
            let m = row_l.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let z: f32 = row_l.iter().map(|v| (v - m).exp()).sum();
            for (l, p) in row_l.iter().zip(row_p) {
                assert!(((l - m).exp() / z - p).abs() < 1e-5, "{backend}");
            }
        }
        assert_eq!(ins.r_adv.len(), x.len());
        assert_eq!(ins.grads.len(), ins.updated.len());
    }
}

/// Largest |a - b| relative to the largest |b| of the array (floored at 1).
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn cpu_kernels_agree_with_the_burn_graph_on_every_kind_of_step() {
    // Every quantity of one step, from the same weights and draws: the CPU kernels' explicit
    // gradients against burn's autodiff. Both run in f32, in different orders of addition.
    let base = TrainConfig {
        model: ModelConfig {
            image_size: 11,
            conv_filters: 5,
            hidden: 7,
            classes: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let dropout = ModelConfig {
        dropout: true,
        ..base.model.clone()
    };
    let cases: Vec<(&str, TrainConfig, bool)> = vec![
        ("supervised VAT, Adadelta", base.clone(), false),
        (
            "no VAT",
            TrainConfig {
                vat: false,
                ..base.clone()
            },
            false,
        ),
        (
            "two power iterations, Adam",
            TrainConfig {
                power_iterations: 2,
                optimizer: OptimizerKind::Adam,
                eps: 2.5,
                xi: 0.5,
                alpha: 0.7,
                ..base.clone()
            },
            false,
        ),
        (
            "dropout",
            TrainConfig {
                model: dropout.clone(),
                ..base.clone()
            },
            false,
        ),
        (
            "supervised EntMin",
            TrainConfig {
                entmin: true,
                ..base.clone()
            },
            false,
        ),
        ("semi-supervised", base.clone(), true),
        (
            "semi-supervised, dropout, EntMin",
            TrainConfig {
                model: dropout,
                entmin: true,
                ..base.clone()
            },
            true,
        ),
        (
            "semi-supervised EntMin without VAT",
            TrainConfig {
                vat: false,
                entmin: true,
                ..base.clone()
            },
            true,
        ),
        (
            "semi-supervised VAT, EntMin at weight 0.3",
            TrainConfig {
                entmin: true,
                entmin_weight: 0.3,
                ..base.clone()
            },
            true,
        ),
    ];
    let (cpu, graph) = (start(BackendKind::Cpu, 1), burn_cpu());
    for (name, config, semi) in cases {
        let mut rng = Rng::new(21);
        let weights: Vec<f32> = vat_core::params::init_params(&config.model, &mut rng).concat();
        let (x, y) = batch(&config, 5, 22);
        let (xu, _) = batch(&config, 6, 23);
        let draws = Draws::draw(&config, &mut rng, 5, semi.then_some(6));
        let concat = |m: &Option<(Vec<f32>, Vec<f32>)>| m.as_ref().map(|(a, b)| [a.as_slice(), b.as_slice()].concat());
        let (ml, mu) = (concat(&draws.masks_labeled), concat(&draws.masks_unlabeled));
        let input = || InspectInput {
            weights: &weights,
            x: &x,
            y: &y,
            x_u: semi.then_some(xu.as_slice()),
            d: draws.d.as_deref(),
            masks_labeled: ml.as_deref(),
            masks_unlabeled: mu.as_deref(),
            lr: 0.5,
        };
        let a = block_on(inspect(&config, &cpu, input())).unwrap();
        let b = block_on(inspect(&config, &graph, input())).unwrap();
        for (what, x, y, tol) in [
            // Tolerances: at least 10x the largest difference seen over these cases (1.2e-7,
            // 2.7e-5 after two power iterations, 5.7e-7 and 2.3e-5).
            ("logits", &a.logits, &b.logits, 2e-6),
            ("r_adv", &a.r_adv, &b.r_adv, 3e-4),
            ("grads", &a.grads, &b.grads, 1e-5),
            // Adam's first step divides each gradient by its own magnitude, so on near-zero
            // gradients it magnifies their rounding differences.
            ("updated", &a.updated, &b.updated, 3e-4),
        ] {
            let e = rel_err(x, y);
            assert!(e < tol, "{name}: {what} differ by {e:e} (tolerance {tol:e})");
        }
        for (what, x, y) in [
            ("loss", a.loss, b.loss),
            ("ce", a.ce, b.ce),
            ("lds", a.lds, b.lds),
            ("entropy", a.entropy, b.entropy),
        ] {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{name}: {what} {x} vs {y}");
        }
    }
}

#[test]
fn the_thread_count_does_not_change_a_single_bit() {
    // The CPU kernels split work into fixed chunks and add partial sums in chunk order, so the
    // same seed gives the same weights on any number of threads.
    let config = TrainConfig {
        model: ModelConfig {
            dropout: true,
            ..ModelConfig::default()
        },
        ..Default::default()
    };
    let (x, y) = batch(&config, 19, 24);
    let run = |threads: usize| {
        let mut t = Trainer::new(config.clone(), start(BackendKind::Cpu, threads)).unwrap();
        for _ in 0..2 {
            block_on(t.train_step(&x, &y, None, 1.0)).unwrap();
        }
        block_on(t.params()).unwrap()
    };
    let one = run(1);
    for threads in [2, 3] {
        assert!(run(threads) == one, "{threads} threads gave other weights than 1");
    }
}

/// A 4-class model from a spec's JSON, trained with Adam (the settings the spec tests share).
fn adam_spec_config(json: &str) -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            classes: 4,
            spec: Some(vat_core::spec::ModelSpec::from_json(json).unwrap()),
            ..Default::default()
        },
        optimizer: OptimizerKind::Adam,
        ..Default::default()
    }
}

/// A spec with batch norm, dropout and noise, on 2-channel 6x8 inputs: small enough to train in
/// a test, and every kind of state a spec model carries (running statistics, draws).
fn spec_config() -> TrainConfig {
    adam_spec_config(
        r#"{"input":[2,6,8],"classes":4,"layers":[
            {"type":"gaussianNoise","std":0.1},
            {"type":"conv","filters":4,"kernel":3,"padding":"same","bias":false},
            {"type":"batchNorm"},{"type":"leakyRelu"},{"type":"maxPool","size":2},
            {"type":"dropout","rate":0.2},{"type":"dense","units":4}]}"#,
    )
}

/// Two-channel toy data: the label picks which quadrant of which channel is bright.
fn spec_batch(n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let label = (i % 4) as u32;
        for c in 0..2 {
            for r in 0..6 {
                for col in 0..8 {
                    let lit = c == (label / 2) as usize && (col >= 4) == (label % 2 == 1) && r < 6;
                    x.push((0.3 * rng.uniform() + if lit { 0.7 } else { 0.0 }) as f32);
                }
            }
        }
        y.push(label);
    }
    (x, y)
}

#[test]
fn a_spec_model_learns_and_its_weights_carry_the_spec_and_the_running_statistics() {
    let config = spec_config();
    let mut t = Trainer::new(config.clone(), start(BackendKind::Cpu, 1)).unwrap();
    let (x, y) = spec_batch(32, 1);
    let before = block_on(t.evaluate(&x, &y, 16)).unwrap();
    for _ in 0..40 {
        block_on(t.train_step(&x, &y, None, 0.01)).unwrap();
    }
    let after = block_on(t.evaluate(&x, &y, 16)).unwrap();
    assert!(after.loss < 0.5 * before.loss, "loss {} -> {}", before.loss, after.loss);
    assert!(after.accuracy > 0.9, "accuracy {}", after.accuracy);

    let params = block_on(t.params()).unwrap();
    let bytes = state::export_weights(&params, &config.model).unwrap();
    // The file alone rebuilds the model (the spec is in its metadata) and its predictions.
    let model = state::weights_model(&bytes).unwrap();
    assert_eq!(model, config.model);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "bn1.weight",
            "conv1.weight",
            "fc1.bias",
            "fc1.weight"
        ]
    );
    let running = st.tensor("bn1.running_mean").unwrap();
    assert!(
        running.data().iter().any(|b| *b != 0),
        "training moved the running mean"
    );
    let mut loaded = Trainer::new(
        TrainConfig {
            model,
            ..config.clone()
        },
        start(BackendKind::Cpu, 1),
    )
    .unwrap();
    loaded.restore(state::import_weights(&bytes, &config.model).unwrap(), None);
    assert_eq!(
        block_on(loaded.logits(&x, 8)).unwrap(),
        block_on(t.logits(&x, 8)).unwrap()
    );
    // Evaluation is deterministic: no dropout, no noise, the running statistics.
    assert_eq!(block_on(t.logits(&x, 8)).unwrap(), block_on(t.logits(&x, 32)).unwrap());
    let view = block_on(t.vat_view(&x[..2 * 96], 3)).unwrap();
    let norm: f32 = view.r_adv[..96].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - config.eps as f32).abs() < 1e-3, "r_adv norm {norm}");
}

#[test]
fn a_spec_checkpoint_resumes_the_same_run_and_refuses_another_model() {
    let config = spec_config();
    let (x, y) = spec_batch(8, 2);
    let (xu, _) = spec_batch(12, 3);
    let mut a = Trainer::new(config.clone(), start(BackendKind::Cpu, 2)).unwrap();
    for _ in 0..3 {
        block_on(a.train_step(&x, &y, Some(&xu), 0.01)).unwrap();
    }
    let (params, opt) = block_on(a.snapshot()).unwrap();
    let ck = state::export_checkpoint(&params, &opt, a.rng.state(), &a.config, "{}").unwrap();
    let next_a = block_on(a.train_step(&x, &y, Some(&xu), 0.01)).unwrap();
    let (mut b, _, _) = Trainer::from_checkpoint(&ck, start(BackendKind::Cpu, 1), &Options::default(), false).unwrap();
    assert_eq!(b.config, config);
    assert_eq!(next_a, block_on(b.train_step(&x, &y, Some(&xu), 0.01)).unwrap());
    assert_eq!(block_on(a.params()).unwrap(), block_on(b.params()).unwrap());

    for other in [Some("seed-cnn"), Some("mlp-1200-1200")] {
        let asked = Options {
            model: other.map(String::from),
            ..Default::default()
        };
        let err = Trainer::from_checkpoint(&ck, start(BackendKind::Cpu, 1), &asked, true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("cannot change model") && err.contains("conv 4 3x3 same"),
            "{other:?}: {err}"
        );
    }
}

#[test]
fn model_options_pick_a_preset_for_the_data_and_refuse_what_cannot_run() {
    let conv = Options {
        model: Some("conv-small".into()),
        input_shape: Some([3, 32, 32]),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let spec = conv.train.model.spec.as_ref().unwrap();
    assert_eq!(
        (spec.input, spec.classes, conv.train.model.pixels()),
        ([3, 32, 32], 10, 3072)
    );
    let mlp = Options {
        model: Some("mlp-1200-600-300-150".into()),
        classes: Some(5),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(mlp.train.model.spec.as_ref().unwrap().input, [1, 28, 28]);
    assert_eq!(mlp.train.model.classes, 5);
    // No model: the seed's CNN, exactly as before.
    assert_eq!(Options::default().resolve().unwrap().train, TrainConfig::default());
    let seed_on_colour = Options {
        input_shape: Some([3, 32, 32]),
        ..Default::default()
    }
    .resolve()
    .unwrap_err()
    .to_string();
    assert!(
        seed_on_colour.contains("square single-channel") && seed_on_colour.contains("conv-small"),
        "{seed_on_colour}"
    );
    let both = Options {
        model: Some("conv-small".into()),
        model_spec: Some(spec.clone()),
        ..Default::default()
    }
    .resolve()
    .unwrap_err()
    .to_string();
    assert!(both.contains("not both"), "{both}");
    // The burn graph builds any spec too (conv-small on burn-flex here; on WebGPU in the suites).
    assert!(Trainer::new(conv.train.clone(), start(BackendKind::BurnCpu, 1)).is_ok());
    // Data of another shape than the spec's is refused at the step, naming the shape.
    let mut t = Trainer::new(spec_config(), start(BackendKind::Cpu, 1)).unwrap();
    let err = block_on(t.train_step(&[0.5; 28 * 28], &[1], None, 0.01))
        .unwrap_err()
        .to_string();
    assert!(err.contains("2x6x8"), "{err}");
}

#[test]
fn a_normalization_standardises_every_input_and_travels_with_the_weights() {
    let norm = vat_core::config::Normalization {
        mean: vec![0.3, 0.6],
        std: vec![0.5, 0.25],
    };
    let plain = spec_config();
    let config = TrainConfig {
        model: ModelConfig {
            normalization: Some(norm.clone()),
            ..plain.model.clone()
        },
        ..plain.clone()
    };
    let (x, y) = spec_batch(8, 4);
    let standardised = norm.apply(&x, 48);
    // The same run on standardised pixels without a normalization: the same numbers.
    let mut a = Trainer::new(config.clone(), start(BackendKind::Cpu, 1)).unwrap();
    let mut b = Trainer::new(plain.clone(), start(BackendKind::Cpu, 1)).unwrap();
    for _ in 0..3 {
        let sa = block_on(a.train_step(&x, &y, None, 0.01)).unwrap();
        let sb = block_on(b.train_step(&standardised, &y, None, 0.01)).unwrap();
        assert_eq!(sa, sb);
    }
    assert_eq!(
        block_on(a.logits(&x, 4)).unwrap(),
        block_on(b.logits(&standardised, 4)).unwrap()
    );
    // The view's r_adv is on the pixels: the standardised perturbation times each channel's std.
    let (va, vb) = (
        block_on(a.vat_view(&x[..96], 5)).unwrap(),
        block_on(b.vat_view(&standardised[..96], 5)).unwrap(),
    );
    assert_eq!(va.kl, vb.kl);
    assert_eq!(va.r_adv, norm.unscale(&vb.r_adv, 48));
    // The weights file carries it, and a resume cannot change it.
    let bytes = state::export_weights(&block_on(a.params()).unwrap(), &config.model).unwrap();
    assert_eq!(state::weights_model(&bytes).unwrap().normalization, Some(norm.clone()));
    let (params, opt) = block_on(a.snapshot()).unwrap();
    let ck = state::export_checkpoint(&params, &opt, a.rng.state(), &a.config, "{}").unwrap();
    let other = Options {
        normalization: Some(vat_core::config::Normalization {
            mean: vec![0.0, 0.0],
            std: vec![1.0, 1.0],
        }),
        ..Default::default()
    };
    let err = Trainer::from_checkpoint(&ck, start(BackendKind::Cpu, 1), &other, true)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cannot change normalization"), "{err}");
    // One mean and one positive std per channel.
    for bad in [(vec![0.1], vec![1.0]), (vec![0.1, 0.2], vec![1.0, 0.0])] {
        let c = TrainConfig {
            model: ModelConfig {
                normalization: Some(vat_core::config::Normalization {
                    mean: bad.0,
                    std: bad.1,
                }),
                ..plain.model.clone()
            },
            ..plain.clone()
        };
        assert!(matches!(c.validate(), Err(VatError::InvalidConfig(_))));
    }
}

/// A spec with every layer kind and both paddings, strides and batch-norm shapes: noise, a strided
/// same-padded conv (an odd total, so the extra row and column go bottom-right), batch norm on a
/// map, leaky relu, a strided max pool, dropout, a valid conv, relu, global average pooling,
/// batch norm on flat features, dense layers and the logits. The conv before batch norm has no
/// bias: its gradient would be zero up to rounding, and Adam's first step would amplify the
/// rounding's sign. The entropy term is weighted, so both engines apply the weight.
fn every_layer_config() -> TrainConfig {
    TrainConfig {
        entmin: true,
        entmin_weight: 0.4,
        xi: 0.5,
        eps: 0.8,
        ..adam_spec_config(
            r#"{"input":[2,6,8],"classes":4,"layers":[
                {"type":"gaussianNoise","std":0.1},
                {"type":"conv","filters":4,"kernel":3,"stride":2,"padding":"same","bias":false},
                {"type":"batchNorm","momentum":0.1},{"type":"leakyRelu","slope":0.2},
                {"type":"maxPool","size":2,"stride":1},{"type":"dropout","rate":0.25},
                {"type":"conv","filters":5,"kernel":2},{"type":"relu"},{"type":"globalAvgPool"},
                {"type":"batchNorm","momentum":0.1},{"type":"dense","units":6},{"type":"relu"},
                {"type":"dense","units":4}]}"#,
        )
    }
}

fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + x.abs()), "{what}[{i}]: cpu {x}, burn {y}");
    }
}

#[test]
fn a_spec_trains_the_same_on_the_burn_graph_as_on_the_cpu_kernels() {
    // The same config and seed on both engines: the same draws, so the same steps, weights and
    // running statistics (up to float32 reassociation), semi-supervised with VAT and EntMin.
    let config = every_layer_config();
    let (x, y) = spec_batch(8, 3);
    let (u, _) = spec_batch(12, 4);
    let mut cpu = Trainer::new(config.clone(), start(BackendKind::Cpu, 1)).unwrap();
    let mut burn = Trainer::new(config.clone(), start(BackendKind::BurnCpu, 1)).unwrap();
    for step in 0..4 {
        let a = block_on(cpu.train_step(&x, &y, Some(&u), 0.01)).unwrap();
        let b = block_on(burn.train_step(&x, &y, Some(&u), 0.01)).unwrap();
        let scalars = |s: &vat_core::train::StepStats| [s.loss, s.ce, s.lds, s.entropy];
        assert_close(
            &format!("step {step} loss, ce, lds, entropy"),
            &scalars(&a),
            &scalars(&b),
            1e-4,
        );
        assert!(
            a.lds > 0.0 && a.entropy > 0.0,
            "the VAT and entropy terms are on: {a:?}"
        );
    }
    let (pa, pb) = (block_on(cpu.params()).unwrap(), block_on(burn.params()).unwrap());
    let names: Vec<String> = config
        .model
        .spec
        .as_ref()
        .unwrap()
        .params()
        .into_iter()
        .map(|p| p.name)
        .collect();
    for ((name, a), b) in names.iter().zip(&pa).zip(&pb) {
        assert_close(name, a, b, 1e-4);
    }
    assert!(pa[3] != vec![0.0; 4], "bn1.running_mean moved: {:?}", pa[3]);
    // Evaluation (running statistics) and the VAT view agree too.
    let (ea, eb) = (
        block_on(cpu.evaluate(&x, &y, 3)).unwrap(),
        block_on(burn.evaluate(&x, &y, 3)).unwrap(),
    );
    assert!((ea.loss - eb.loss).abs() < 1e-4 * (1.0 + ea.loss), "{ea:?} {eb:?}");
    assert_eq!(ea.predicted, eb.predicted);
    let (va, vb) = (
        block_on(cpu.vat_view(&x, 9)).unwrap(),
        block_on(burn.vat_view(&x, 9)).unwrap(),
    );
    assert_close("r_adv", &va.r_adv, &vb.r_adv, 1e-3);
    assert_close("q", &va.q, &vb.q, 1e-4);
    // A checkpoint from one engine resumes on the other.
    let (params, opt) = block_on(burn.snapshot()).unwrap();
    let bytes = state::export_checkpoint(&params, &opt, burn.rng.state(), &burn.config, "{}").unwrap();
    let (resumed, _, _) =
        Trainer::from_checkpoint(&bytes, start(BackendKind::Cpu, 1), &Options::default(), false).unwrap();
    for (a, b) in block_on(resumed.params()).unwrap().iter().zip(&pb) {
        assert_eq!(a, b);
    }
}

#[test]
fn inspect_of_a_spec_agrees_between_the_cpu_kernels_and_the_burn_graph() {
    let config = every_layer_config();
    let net = vat_core::cpu::net::Net::new(config.model.spec.as_ref().unwrap()).unwrap();
    let mut rng = Rng::new(11);
    let weights: Vec<f32> = net.init(&mut rng).concat();
    let (x, y) = spec_batch(3, 5);
    let (u, _) = spec_batch(5, 6);
    // The draws of the noise and dropout layers, NCHW, in layer order.
    let draws = |n: usize, rng: &mut Rng| -> Vec<f32> {
        let mut v = rng.normals(n * 2 * 6 * 8);
        v.extend(rng.dropout_mask(n * 4 * 2 * 3, 0.25));
        v
    };
    let (ml, mu, d) = (draws(3, &mut rng), draws(5, &mut rng), rng.normals(5 * 96));
    let input = || InspectInput {
        weights: &weights,
        x: &x,
        y: &y,
        x_u: Some(&u),
        d: Some(&d),
        masks_labeled: Some(&ml),
        masks_unlabeled: Some(&mu),
        lr: 0.01,
    };
    let a = block_on(inspect(&config, &start(BackendKind::Cpu, 1), input())).unwrap();
    let b = block_on(inspect(&config, &start(BackendKind::BurnCpu, 1), input())).unwrap();
    assert_close("logits", &a.logits, &b.logits, 1e-4);
    assert_close("eval logits", &a.eval_logits, &b.eval_logits, 1e-4);
    assert_close("r_adv", &a.r_adv, &b.r_adv, 1e-3);
    assert_close("grads", &a.grads, &b.grads, 1e-3);
    assert_close("updated", &a.updated, &b.updated, 1e-4);
    assert_close(
        "scalars",
        &[a.loss, a.ce, a.lds, a.entropy],
        &[b.loss, b.ce, b.lds, b.entropy],
        1e-4,
    );
}

/// A batch-norm MLP on the 2x6x8 toy data, its running statistics set by each clean pass alone
/// (momentum 1), without VAT, so one training step leaves the running statistics of its batch.
fn bn_config(dropout: bool) -> TrainConfig {
    let json = format!(
        r#"{{"input":[2,6,8],"classes":4,"layers":[
            {{"type":"dense","units":6,"bias":false}},{{"type":"batchNorm","momentum":1}},{{"type":"relu"}},
            {}{{"type":"dense","units":4,"bias":false}},{{"type":"batchNorm","momentum":1}}]}}"#,
        if dropout {
            r#"{"type":"dropout","rate":0.3},"#
        } else {
            ""
        }
    );
    TrainConfig {
        vat: false,
        ..adam_spec_config(&json)
    }
}

/// The running means and variances of `params`, in layer order.
fn running_stats(config: &TrainConfig, params: &[Vec<f32>]) -> Vec<f32> {
    let spec = config.model.spec.as_ref().unwrap();
    spec.params()
        .iter()
        .zip(params)
        .filter(|(p, _)| p.name.contains("running_"))
        .flat_map(|(_, v)| v.clone())
        .collect()
}

#[test]
fn re_estimated_batch_norm_statistics_are_the_datas_batch_statistics_on_both_cpu_engines() {
    let config = bn_config(true);
    let (x, y) = spec_batch(64, 3);
    let half = x.len() / 2;
    for kind in CPU_KINDS {
        let trained = |steps: usize| {
            let mut t = Trainer::new(config.clone(), start(kind, 1)).unwrap();
            for _ in 0..steps {
                block_on(t.train_step(&x, &y, None, 0.01)).unwrap();
            }
            t
        };
        // The estimate over one batch is what a training pass with dropout off would keep at momentum 1.
        let mut t = trained(3);
        let before = block_on(t.params()).unwrap();
        block_on(t.accumulate_bn(&x)).unwrap();
        assert_eq!(t.apply_bn_estimate().unwrap(), 64);
        let after = block_on(t.params()).unwrap();
        let no_dropout = bn_config(false);
        let mut reference = Trainer::new(no_dropout.clone(), start(kind, 1)).unwrap();
        reference.restore(before.clone(), None);
        block_on(reference.train_step(&x, &y, None, 1e-9)).unwrap();
        let want = running_stats(&no_dropout, &block_on(reference.params()).unwrap());
        let got = running_stats(&config, &after);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{kind:?} statistic {i}: {g} vs {w}"
            );
        }
        // Only the running statistics move.
        for (i, (a, b)) in before.iter().zip(&after).enumerate() {
            let running = config.model.spec.as_ref().unwrap().params()[i]
                .name
                .contains("running_");
            assert_eq!(a == b, !running, "{kind:?} parameter {i}");
        }
        // Over two batches: the average of each batch's statistics.
        let each: Vec<Vec<f32>> = [&x[..half], &x[half..]]
            .iter()
            .map(|part| {
                let mut t = trained(3);
                block_on(t.accumulate_bn(part)).unwrap();
                assert_eq!(t.apply_bn_estimate().unwrap(), 32);
                running_stats(&config, &block_on(t.params()).unwrap())
            })
            .collect();
        let mut t = trained(3);
        block_on(t.accumulate_bn(&x[..half])).unwrap();
        block_on(t.accumulate_bn(&x[half..])).unwrap();
        let both = running_stats(&config, &{
            t.apply_bn_estimate().unwrap();
            block_on(t.params()).unwrap()
        });
        for (i, g) in both.iter().enumerate() {
            let w = 0.5 * (each[0][i] + each[1][i]);
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{kind:?} two-batch statistic {i}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn a_batch_norm_estimate_is_dropped_by_a_training_step_and_refused_without_batch_norm() {
    let config = bn_config(true);
    let (x, y) = spec_batch(16, 4);
    let mut t = Trainer::new(config, start(BackendKind::Cpu, 1)).unwrap();
    block_on(t.accumulate_bn(&x)).unwrap();
    block_on(t.train_step(&x, &y, None, 0.01)).unwrap();
    let e = t.apply_bn_estimate().unwrap_err();
    assert!(e.to_string().contains("accumulateBatchNorm first"), "{e}");
    // The seed's CNN has no batch norm.
    let c = tiny();
    let (x, _) = batch(&c, 4, 1);
    let mut seed = Trainer::new(c, start(BackendKind::Cpu, 1)).unwrap();
    let e = block_on(seed.accumulate_bn(&x)).unwrap_err();
    assert!(e.to_string().contains("no batch norm layers"), "{e}");
}
