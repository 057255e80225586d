//! The `cpu` backend: the seed CNN's forward and backward passes and the VAT step written out on
//! host arrays, with the matrix products in the `gemm` crate.
//!
//! Why not burn-flex: a profile of the VAT step (docs/results.md, "Where the time goes") put most
//! of burn-flex's time in layout conversion and copies around its products, and its convolution
//! backward in burn-backend's generic version, whose weight gradient runs serially over input
//! channels. Here every convolution is im2col + one product per image, in NHWC, with each image's
//! buffers in cache, and the images spread over the threads.
//!
//! - [`kernels`]: the products and the per-image layout work;
//! - [`model`]: forward and backward passes of the seed's CNN (hand-fused);
//! - [`net`]: forward and backward passes of any [`crate::spec::ModelSpec`], and [`net_step`]
//!   its VAT step;
//! - [`step`]: the losses and the VAT step;
//! - [`optim`]: Adam and Adadelta on host arrays;
//! - [`par`]: threads, with results that do not depend on their number;
//! - [`profile`]: time per kind of operation (feature `profile`).

pub mod kernels;
pub mod model;
pub mod net;
pub mod net_step;
#[cfg(test)]
mod net_tests;
pub mod optim;
pub mod par;
pub mod profile;
pub mod step;
