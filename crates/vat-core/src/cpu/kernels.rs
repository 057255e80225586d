//! The CPU kernels: matrix products through the `gemm` crate (AVX2/FMA or AVX-512 picked at run
//! time natively, simd128 in wasm), and the layout work around them done per image, so that each
//! image's buffers stay in the core's L2 cache.
//!
//! Activations are NHWC (`[h, w, c]` per image, channels innermost). A 3x3 valid convolution is
//! im2col + one product: the patch row of output pixel (y, x) is `[dy][dx][c]`, and for each dy
//! the three taps dx = 0..3 are `3c` contiguous floats of the input, so im2col is `3 * oh * ow`
//! copies. Kernels are `[f, 9c]` in the same `(dy, dx, c)` order (PyTorch's OHWI).

use gemm::Parallelism;

/// A matrix inside a slice: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `[rows, cols]` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major `[rows, cols]` matrix.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self { data, rs: 1, cs: cols }
    }
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.rs + (cols - 1) * self.cs;
            assert!(
                last < self.data.len(),
                "{what}: a {rows}x{cols} view reaches {last}, past {}",
                self.data.len()
            );
        }
    }
}

/// `dst[m, n] (row-major, row stride dst_rs) = (accumulate ? dst : 0) + a[m, k] * b[k, n]`.
#[allow(clippy::too_many_arguments)] // a gemm's signature: sizes, destination, operands
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    a: View<'_>,
    b: View<'_>,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst[i * dst_rs..i * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    a.check(m, k, "lhs");
    b.check(k, n, "rhs");
    assert!((m - 1) * dst_rs + n <= dst.len(), "dst too small for {m}x{n}");
    // SAFETY: every index gemm touches is inside the slices, checked above; dst is exclusive.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Sizes of a 3x3 valid convolution of one `[h, w, c]` image into `f` channels.
#[derive(Debug, Clone, Copy)]
pub struct Conv {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub f: usize,
}

impl Conv {
    pub fn oh(&self) -> usize {
        self.h - 2
    }
    pub fn ow(&self) -> usize {
        self.w - 2
    }
    /// Output pixels.
    pub fn out_pixels(&self) -> usize {
        self.oh() * self.ow()
    }
    /// Patch length, 9c.
    pub fn k(&self) -> usize {
        9 * self.c
    }
    pub fn in_len(&self) -> usize {
        self.h * self.w * self.c
    }
    pub fn out_len(&self) -> usize {
        self.out_pixels() * self.f
    }
    pub fn patches_len(&self) -> usize {
        self.out_pixels() * self.k()
    }

    /// Patches `[oh * ow, 9c]` of image `x` `[h, w, c]`.
    pub fn im2col(&self, x: &[f32], patches: &mut [f32]) {
        let (c, w, ow, k) = (self.c, self.w, self.ow(), self.k());
        for y in 0..self.oh() {
            for xo in 0..ow {
                let row = &mut patches[(y * ow + xo) * k..][..k];
                for dy in 0..3 {
                    let src = ((y + dy) * w + xo) * c;
                    row[dy * 3 * c..][..3 * c].copy_from_slice(&x[src..src + 3 * c]);
                }
            }
        }
    }

    /// The adjoint of [`Self::im2col`]: adds each patch entry back to its pixel of `dx` (zeroed first).
    pub fn col2im(&self, dpatches: &[f32], dx: &mut [f32]) {
        let (c, w, ow, k) = (self.c, self.w, self.ow(), self.k());
        dx.fill(0.0);
        for y in 0..self.oh() {
            for xo in 0..ow {
                let row = &dpatches[(y * ow + xo) * k..][..k];
                for dy in 0..3 {
                    let dst = &mut dx[((y + dy) * w + xo) * c..][..3 * c];
                    for (d, s) in dst.iter_mut().zip(&row[dy * 3 * c..][..3 * c]) {
                        *d += s;
                    }
                }
            }
        }
    }

    /// `out [oh * ow, f] = relu(patches(x) * kernel^T + bias)`. `kernel` is `[f, 9c]`.
    pub fn forward_relu(&self, x: &[f32], kernel: &[f32], bias: &[f32], out: &mut [f32], patches: &mut [f32]) {
        self.im2col(x, patches);
        let (p, k, f) = (self.out_pixels(), self.k(), self.f);
        matmul(
            p,
            f,
            k,
            out,
            f,
            false,
            View::rows(patches, k),
            View::transposed(kernel, k),
            Parallelism::None,
        );
        for row in out.chunks_exact_mut(f) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = (*v + b).max(0.0);
            }
        }
    }

    /// Adds this image's kernel and bias gradients to `dkernel [f, 9c]` and `dbias [f]`, given the
    /// output gradient `dy [oh * ow, f]` (after the relu mask) and the input `x`.
    pub fn backward_weights(&self, x: &[f32], dy: &[f32], dkernel: &mut [f32], dbias: &mut [f32], patches: &mut [f32]) {
        self.im2col(x, patches);
        let (p, k, f) = (self.out_pixels(), self.k(), self.f);
        matmul(
            f,
            k,
            p,
            dkernel,
            k,
            true,
            View::transposed(dy, f),
            View::rows(patches, k),
            Parallelism::None,
        );
        for row in dy.chunks_exact(f) {
            for (b, g) in dbias.iter_mut().zip(row) {
                *b += g;
            }
        }
    }

    /// The input gradient `dx [h, w, c]` from `dy [oh * ow, f]`.
    pub fn backward_input(&self, kernel: &[f32], dy: &[f32], dx: &mut [f32], dpatches: &mut [f32]) {
        let (p, k, f) = (self.out_pixels(), self.k(), self.f);
        matmul(
            p,
            k,
            f,
            dpatches,
            k,
            false,
            View::rows(dy, f),
            View::rows(kernel, k),
            Parallelism::None,
        );
        self.col2im(dpatches, dx);
    }
}

/// 2x2 max pooling with stride 2 of one `[h, w, c]` image (floor: an odd last row or column is
/// dropped). `arg` records which of the four won (0..4, row-major in the window; the first on a
/// tie) for the backward.
pub fn max_pool_forward(x: &[f32], h: usize, w: usize, c: usize, out: &mut [f32], arg: &mut [u8]) {
    let (ph, pw) = (h / 2, w / 2);
    for py in 0..ph {
        let (r0, r1) = (&x[2 * py * w * c..][..w * c], &x[(2 * py + 1) * w * c..][..w * c]);
        for px in 0..pw {
            // The window's four pixels, each `c` channels long, so the loop below vectorises.
            let (a, b) = (&r0[2 * px * c..][..c], &r0[(2 * px + 1) * c..][..c]);
            let (d, e) = (&r1[2 * px * c..][..c], &r1[(2 * px + 1) * c..][..c]);
            let o = &mut out[(py * pw + px) * c..][..c];
            let g = &mut arg[(py * pw + px) * c..][..c];
            for ch in 0..c {
                let (mut best, mut which) = (a[ch], 0u8);
                if b[ch] > best {
                    (best, which) = (b[ch], 1);
                }
                if d[ch] > best {
                    (best, which) = (d[ch], 2);
                }
                if e[ch] > best {
                    (best, which) = (e[ch], 3);
                }
                o[ch] = best;
                g[ch] = which;
            }
        }
    }
}

/// Routes each pooled gradient to its window's winner, through the relu that precedes the pool
/// (`pooled` holds the relu outputs, so a winner of 0 passes no gradient). `dx` is `[h, w, c]`.
pub fn max_pool_relu_backward(
    dpooled: &[f32],
    pooled: &[f32],
    arg: &[u8],
    h: usize,
    w: usize,
    c: usize,
    dx: &mut [f32],
) {
    let (ph, pw) = (h / 2, w / 2);
    if h % 2 == 1 || w % 2 == 1 {
        dx.fill(0.0); // the dropped edge gets no gradient; the windows overwrite the rest
    }
    for py in 0..ph {
        let (r0, r1) = dx[2 * py * w * c..][..2 * w * c].split_at_mut(w * c);
        for px in 0..pw {
            let at = (py * pw + px) * c;
            let (gp, pp, ap) = (&dpooled[at..][..c], &pooled[at..][..c], &arg[at..][..c]);
            let (a, b) = r0[2 * px * c..][..2 * c].split_at_mut(c);
            let (d, e) = r1[2 * px * c..][..2 * c].split_at_mut(c);
            for ch in 0..c {
                let g = if pp[ch] > 0.0 { gp[ch] } else { 0.0 };
                let t = ap[ch];
                a[ch] = if t == 0 { g } else { 0.0 };
                b[ch] = if t == 1 { g } else { 0.0 };
                d[ch] = if t == 2 { g } else { 0.0 };
                e[ch] = if t == 3 { g } else { 0.0 };
            }
        }
    }
}

/// Reorders a PyTorch conv kernel `[f, c, k, k]` to `[f, k, k, c]` (the patch order); `taps` is
/// `k * k` (9 for the seed's 3x3 kernels).
pub fn oihw_to_ohwi(w: &[f32], f: usize, c: usize, taps: usize) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for o in 0..f {
        for i in 0..c {
            for t in 0..taps {
                out[(o * taps + t) * c + i] = w[(o * c + i) * taps + t];
            }
        }
    }
    out
}

/// The inverse of [`oihw_to_ohwi`].
pub fn ohwi_to_oihw(w: &[f32], f: usize, c: usize, taps: usize) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for o in 0..f {
        for i in 0..c {
            for t in 0..taps {
                out[(o * c + i) * taps + t] = w[(o * taps + t) * c + i];
            }
        }
    }
    out
}

/// Reorders one row of a dense weight whose input was flattened channel first (PyTorch's
/// `flatten(1)` on NCHW, `[c * hw]`) to take an NHWC-flattened input (`[hw * c]`).
pub fn chw_to_hwc(src: &[f32], dst: &mut [f32], c: usize, hw: usize) {
    for ch in 0..c {
        for p in 0..hw {
            dst[p * c + ch] = src[ch * hw + p];
        }
    }
}

/// The inverse of [`chw_to_hwc`].
pub fn hwc_to_chw(src: &[f32], dst: &mut [f32], c: usize, hw: usize) {
    for ch in 0..c {
        for p in 0..hw {
            dst[ch * hw + p] = src[p * c + ch];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of a valid 3x3 convolution on NHWC, for comparison.
    fn naive_conv(x: &[f32], cv: &Conv, kernel_oihw: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; cv.out_len()];
        for y in 0..cv.oh() {
            for xo in 0..cv.ow() {
                for o in 0..cv.f {
                    let mut s = 0.0;
                    for i in 0..cv.c {
                        for dy in 0..3 {
                            for dx in 0..3 {
                                s += x[((y + dy) * cv.w + xo + dx) * cv.c + i]
                                    * kernel_oihw[((o * cv.c + i) * 3 + dy) * 3 + dx];
                            }
                        }
                    }
                    out[(y * cv.ow() + xo) * cv.f + o] = s;
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed)) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn conv_forward_matches_the_definition() {
        let cv = Conv { h: 7, w: 6, c: 3, f: 4 };
        let x = values(cv.in_len(), 1);
        let k = values(cv.f * cv.k(), 2);
        let mut out = vec![0.0; cv.out_len()];
        let mut patches = vec![0.0; cv.patches_len()];
        cv.forward_relu(&x, &oihw_to_ohwi(&k, cv.f, cv.c, 9), &[0.0; 4], &mut out, &mut patches);
        let want: Vec<f32> = naive_conv(&x, &cv, &k).into_iter().map(|v| v.max(0.0)).collect();
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), p> == <x, col2im(p)> for any x and p.
        let cv = Conv { h: 6, w: 5, c: 2, f: 1 };
        let x = values(cv.in_len(), 3);
        let p = values(cv.patches_len(), 4);
        let mut px = vec![0.0; cv.patches_len()];
        cv.im2col(&x, &mut px);
        let mut xp = vec![0.0; cv.in_len()];
        cv.col2im(&p, &mut xp);
        let lhs: f64 = px.iter().zip(&p).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
        let rhs: f64 = x.iter().zip(&xp).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
        assert!((lhs - rhs).abs() < 1e-6 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
    }

    #[test]
    fn layout_reorders_round_trip() {
        let w = values(4 * 3 * 9, 5);
        assert_eq!(ohwi_to_oihw(&oihw_to_ohwi(&w, 4, 3, 9), 4, 3, 9), w);
        let d = values(3 * 4, 6);
        let (mut hwc, mut back) = (vec![0.0; 12], vec![0.0; 12]);
        chw_to_hwc(&d, &mut hwc, 3, 4);
        hwc_to_chw(&hwc, &mut back, 3, 4);
        assert_eq!(back, d);
        assert_eq!(hwc[1], d[4], "pixel 0 of channel 1");
    }

    #[test]
    fn max_pool_routes_the_gradient_to_the_winner_and_drops_odd_edges() {
        // 3x3 single channel: the last row and column are outside every window.
        let x = [0.1, 0.9, 5.0, 0.3, 0.2, 5.0, 5.0, 5.0, 5.0];
        let (mut out, mut arg) = ([0.0], [0u8]);
        max_pool_forward(&x, 3, 3, 1, &mut out, &mut arg);
        assert_eq!((out[0], arg[0]), (0.9, 1));
        let mut dx = [0.0; 9];
        max_pool_relu_backward(&[2.0], &out, &arg, 3, 3, 1, &mut dx);
        assert_eq!(dx, [0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
