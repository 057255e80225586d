//! The seeded generator behind weight init, dropout masks and the VAT direction d.
//!
//! All randomness is drawn here on the host and uploaded, rather than from the backend's RNG,
//! so that (a) CPU and WebGPU runs with one seed see the same numbers, (b) the state is one
//! `u64` that a checkpoint can hold, and (c) other implementations can be fed the same draws.

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, full-period over `u64`, and its whole state is
/// one word, which makes resuming exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Mix the seed once so that nearby seeds (0, 1, 2) give unrelated streams.
        let mut rng = Self {
            state: seed ^ 0x853c_49e6_748f_ea9b,
        };
        rng.next_u64();
        rng
    }

    pub fn from_state(state: u64) -> Self {
        Self { state }
    }

    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box-Muller; one draw per call keeps the state a single word.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: log is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * core::f64::consts::PI * u2).cos()
    }

    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal() as f32).collect()
    }

    /// Inverted-dropout mask: each entry is `1/keep` with probability `keep`, else 0, so the
    /// expected activation is unchanged and evaluation needs no rescaling.
    pub fn dropout_mask(&mut self, n: usize, rate: f64) -> Vec<f32> {
        let keep = 1.0 - rate;
        let scale = (1.0 / keep) as f32;
        (0..n)
            .map(|_| if self.uniform() < keep { scale } else { 0.0 })
            .collect()
    }

    /// Glorot/Xavier uniform (Glorot & Bengio 2010), Keras's default kernel initialiser, which
    /// the seed experiment used.
    pub fn glorot_uniform(&mut self, n: usize, fan_in: usize, fan_out: usize) -> Vec<f32> {
        let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
        (0..n).map(|_| ((self.uniform() * 2.0 - 1.0) * limit) as f32).collect()
    }
}

/// The random draws of one step, on the host: dropout masks for the labeled and the unlabeled
/// batch (each the conv mask `[n, filters, p, p]` and the dense mask `[n, hidden]`, scaled by
/// 1/keep), and the power iteration's starting direction d, shaped like the VAT batch.
/// Drawn in that order from the trainer's [`Rng`], or injected by the parity tests.
#[derive(Debug, Clone, Default)]
pub struct Draws {
    pub d: Option<Vec<f32>>,
    pub masks_labeled: Option<(Vec<f32>, Vec<f32>)>,
    pub masks_unlabeled: Option<(Vec<f32>, Vec<f32>)>,
}

impl Draws {
    pub fn draw(
        config: &crate::config::TrainConfig,
        rng: &mut Rng,
        n_labeled: usize,
        n_unlabeled: Option<usize>,
    ) -> Self {
        let mc = &config.model;
        let mut masks = |n: usize| {
            mc.dropout.then(|| {
                let conv = rng.dropout_mask(n * mc.flat_features(), mc.dropout_conv);
                let dense = rng.dropout_mask(n * mc.hidden, mc.dropout_dense);
                (conv, dense)
            })
        };
        let masks_labeled = masks(n_labeled);
        let masks_unlabeled = n_unlabeled.and_then(&mut masks);
        let d = config
            .vat
            .then(|| rng.normals(n_unlabeled.unwrap_or(n_labeled) * mc.pixels()));
        Self {
            d,
            masks_labeled,
            masks_unlabeled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restoring_the_state_resumes_the_same_stream() {
        let mut a = Rng::new(7);
        let _ = a.normals(10);
        let mut resumed = Rng::from_state(a.state());
        assert_eq!(a.normals(5), resumed.normals(5));
    }

    #[test]
    fn different_seeds_give_different_streams() {
        assert_ne!(Rng::new(0).normals(4), Rng::new(1).normals(4));
    }

    #[test]
    fn normals_have_unit_variance() {
        let xs = Rng::new(3).normals(100_000);
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn dropout_mask_keeps_expected_fraction_and_scales() {
        let m = Rng::new(1).dropout_mask(100_000, 0.25);
        let kept = m.iter().filter(|&&v| v > 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.75).abs() < 0.01);
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    }
}
