//! Wall time per kind of operation, for the breakdown in docs/results.md ("Where the time goes").
//! With the `profile` feature each [`time`] call adds its duration to a global total; without it
//! [`time`] is the closure itself. Totals summed over threads are CPU time, so profile on one
//! thread to read them as shares of a step.

/// The kinds of work in a step, as docs/results.md breaks it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// im2col + product + bias + relu.
    ConvForward,
    /// product + col2im.
    ConvInputGrad,
    /// im2col + product + bias sums.
    ConvWeightGrad,
    /// The dense layers' products, forward and backward.
    Matmul,
    /// relu masks, pooling, dropout, perturbed inputs, normalisation.
    Elementwise,
    /// Softmax, cross-entropy, KL and entropy with their gradients.
    SoftmaxKl,
    Optimizer,
    /// Reordering weights and gradients between PyTorch's layouts and the kernels'.
    Layout,
}

pub const OPS: [Op; 8] = [
    Op::ConvForward,
    Op::ConvInputGrad,
    Op::ConvWeightGrad,
    Op::Matmul,
    Op::Elementwise,
    Op::SoftmaxKl,
    Op::Optimizer,
    Op::Layout,
];

#[cfg(feature = "profile")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::{OPS, Op};

    static NANOS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

    /// Nanoseconds on a monotonic clock: `Instant` natively; in wasm (where `Instant` panics) the
    /// host's `performance.now()`, which pages and workers both have.
    fn now() -> u64 {
        #[cfg(not(target_family = "wasm"))]
        {
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            START.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
        }
        #[cfg(target_family = "wasm")]
        {
            use wasm_bindgen::JsCast;
            let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).expect("performance");
            let now: js_sys::Function = js_sys::Reflect::get(&performance, &"now".into())
                .expect("now")
                .unchecked_into();
            (now.call0(&performance).expect("now()").as_f64().expect("a number") * 1e6) as u64
        }
    }

    pub fn time<R>(op: Op, f: impl FnOnce() -> R) -> R {
        let t0 = now();
        let r = f();
        NANOS[op as usize].fetch_add(now() - t0, Ordering::Relaxed);
        r
    }

    /// The totals in seconds since the last call, and zeroes them.
    pub fn take() -> Vec<(Op, f64)> {
        OPS.iter()
            .map(|&op| (op, NANOS[op as usize].swap(0, Ordering::Relaxed) as f64 * 1e-9))
            .collect()
    }
}

#[cfg(not(feature = "profile"))]
mod imp {
    use super::Op;

    #[inline(always)]
    pub fn time<R>(_: Op, f: impl FnOnce() -> R) -> R {
        f()
    }

    pub fn take() -> Vec<(Op, f64)> {
        Vec::new()
    }
}

pub use imp::{take, time};
