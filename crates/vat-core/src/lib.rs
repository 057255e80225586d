//! Virtual Adversarial Training (Miyato et al., arXiv 1507.00677 and 1704.03976) for the seed
//! MNIST CNN and any declarative model ([`spec`]), with a thin wasm-bindgen surface (and a napi
//! one in `crates/vat-node`).
//!
//! Each model and its training step exist twice, held to each other by the tests:
//! - [`cpu`]: this crate's CPU kernels (gemm plus per-image layout work, threads where the
//!   build has them), the `cpu` backend;
//! - the burn graph, for the `webgpu` and `burn-cpu` backends (feature `burn`):
//!   - [`model`]: the seed's CNN and its parameters (pure burn, no training logic);
//!   - [`vat`]: the LDS term, r_adv by power iteration, and the entropy term;
//!   - [`optim`]: Adam and Adadelta with explicit, serialisable state;
//!   - [`graph`]: one step's loss and gradients through autodiff;
//!   - [`spec_graph`]: any spec model's forward pass and step, from the CPU engine's plan.
//!
//! Shared by both:
//! - [`params`]: the eight parameters' names, shapes and initialisation;
//! - [`spec`]: declarative models (JSON layer lists) and the presets;
//! - [`train`]: the trainer (one training step and evaluation) over either;
//! - [`state`]: weights and checkpoints in safetensors;
//! - [`inspect`]: every intermediate of one step, for parity checks against other implementations;
//! - [`rng`]: the seeded generator behind init, dropout and the random direction d;
//! - [`backend`]: device selection (`cpu` = burn-flex, `webgpu` = burn-wgpu);
//! - [`web`]: the wasm-bindgen surface, also exercised by `cargo test` on the host;
//! - [`error`]: the one error type, which crosses into JS as an `Error` with a stable `name`.

pub mod backend;
pub mod config;
pub mod cpu;
pub mod error;
#[cfg(feature = "burn")]
pub mod graph;
pub mod inspect;
#[cfg(feature = "burn")]
pub mod model;
#[cfg(feature = "burn")]
pub mod optim;
pub mod params;
pub mod rng;
pub mod spec;
#[cfg(feature = "burn")]
pub mod spec_graph;
pub mod state;
pub mod train;
#[cfg(feature = "burn")]
pub mod vat;
pub mod web;

pub use error::VatError;
