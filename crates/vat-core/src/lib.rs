//! Virtual Adversarial Training (Miyato et al., arXiv 1507.00677 and 1704.03976) for the seed
//! MNIST CNN, on burn, with a thin wasm-bindgen surface.
//!
//! Where things live:
//! - [`model`]: the CNN and its parameters (pure burn, no training logic);
//! - [`vat`]: the LDS term, r_adv by power iteration, and the entropy term;
//! - [`optim`]: Adam and Adadelta with explicit, serialisable state;
//! - [`train`]: one training step and evaluation, tying the above together;
//! - [`state`]: weights and checkpoints in safetensors;
//! - [`inspect`]: every intermediate of one step, for parity checks against other implementations;
//! - [`rng`]: the seeded generator behind init, dropout and the random direction d;
//! - [`backend`]: device selection (`cpu` = burn-flex, `webgpu` = burn-wgpu);
//! - [`web`]: the wasm-bindgen surface, also exercised by `cargo test` on the host;
//! - [`error`]: the one error type, which crosses into JS as an `Error` with a stable `name`.

pub mod backend;
pub mod config;
pub mod error;
pub mod inspect;
pub mod model;
pub mod optim;
pub mod rng;
pub mod state;
pub mod train;
pub mod vat;
pub mod web;

pub use error::VatError;
