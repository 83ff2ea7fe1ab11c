//! Batch normalisation over the channels of an NCHW batch (training mode) on the CPU: one pass
//! for the statistics, one for the output; backward likewise. burn's generic formulation
//! builds the same arithmetic from a dozen whole-tensor operations, which made MobileNet's
//! BatchNorm layers cost more than its convolutions.
//!
//! Statistics are accumulated in `f64` (sum and sum of squares), so the single pass loses no
//! accuracy against a two-pass `f32` mean and variance. The variance is the biased one (divided
//! by the count), as burn's `batch_norm_train` returns and its running statistics use.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::output::filled;
use super::simd::multiversion;

/// `[batch, channels, pixels]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Images.
    pub batch: usize,
    /// Channels (normalised separately).
    pub channels: usize,
    /// `h · w`.
    pub pixels: usize,
}

impl Dims {
    /// Values per channel.
    fn count(&self) -> f64 {
        (self.batch * self.pixels) as f64
    }

    /// The planes `[pixels]` of channel `c`, one per image.
    fn planes<'a>(&self, x: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        (0..self.batch).map(move |n| &x[(n * self.channels + c) * self.pixels..][..self.pixels])
    }
}

/// The output with the batch's per-channel mean and (biased) variance.
pub struct Normalized {
    /// `γ · (x − mean) / √(var + ε) + β`.
    pub output: Vec<f32>,
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel biased variance.
    pub variance: Vec<f32>,
}

/// Forward pass in training mode: normalise with the batch's own statistics.
pub fn forward(x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64, d: Dims) -> Normalized {
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..d.channels)
        .into_par_iter()
        .map(|c| {
            let shift = d.planes(x, c).next().and_then(|p| p.first()).copied();
            let shift = shift.unwrap_or(0.0);
            let (mut sum, mut squares) = (0.0f64, 0.0f64);
            for plane in d.planes(x, c) {
                let (s, q) = moments(plane, shift);
                sum += s;
                squares += q;
            }
            let shifted_mean = sum / d.count();
            (
                (shift as f64 + shifted_mean) as f32,
                (squares / d.count() - shifted_mean * shifted_mean).max(0.0) as f32,
            )
        })
        .unzip();
    let output = if x.is_empty() || d.pixels == 0 {
        vec![0.0f32; x.len()]
    } else {
        filled(
            x.len(),
            d.pixels,
            || (),
            |_, plane, y| {
                let c = plane % d.channels;
                let scale = gamma[c] / (variance[c] as f64 + epsilon).sqrt() as f32;
                let shift = beta[c] - mean[c] * scale;
                let x = &x[plane * d.pixels..][..d.pixels];
                // SAFETY: `affine` writes every element of `y` (it checks the lengths match).
                unsafe { y.write_all(|y| affine(x, y, scale, shift)) }
            },
        )
    };
    Normalized {
        output,
        mean,
        variance,
    }
}

/// Gradients of [`forward`] for `x`, `γ` and `β`.
pub struct Gradients {
    /// `∂L/∂x`.
    pub x: Vec<f32>,
    /// `∂L/∂γ`.
    pub gamma: Vec<f32>,
    /// `∂L/∂β`.
    pub beta: Vec<f32>,
}

/// With `x̂ = (x − mean)·inv_std`: `∂β = Σ dy`, `∂γ = Σ dy·x̂` and
/// `∂x = γ·inv_std/M · (M·dy − ∂β − x̂·∂γ)` (M values per channel).
pub fn backward(
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
    dy: &[f32],
    d: Dims,
) -> Gradients {
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|v| (1.0 / (*v as f64 + epsilon).sqrt()) as f32)
        .collect();
    let (beta_grad, gamma_grad): (Vec<f32>, Vec<f32>) = (0..d.channels)
        .into_par_iter()
        .map(|c| {
            let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
            for (x, dy) in d.planes(x, c).zip(d.planes(dy, c)) {
                let (s, p) = grad_moments(x, dy, mean[c]);
                sum_dy += s as f64;
                sum_dy_xhat += p as f64;
            }
            (sum_dy as f32, (sum_dy_xhat as f32) * inv_std[c])
        })
        .unzip();
    let m = d.count() as f32;
    let dx = if x.is_empty() || d.pixels == 0 {
        vec![0.0f32; x.len()]
    } else {
        filled(
            x.len(),
            d.pixels,
            || (),
            |_, plane, dx| {
                let c = plane % d.channels;
                let k = gamma[c] * inv_std[c] / m;
                let (mean_dy, xhat_coeff) = (beta_grad[c], gamma_grad[c] * inv_std[c]);
                let coefficients = [k, m, mean_dy, mean[c], xhat_coeff];
                let (x, dy) = (
                    &x[plane * d.pixels..][..d.pixels],
                    &dy[plane * d.pixels..][..d.pixels],
                );
                // SAFETY: `input_grad` writes every element of `dx` (it checks the lengths match).
                unsafe { dx.write_all(|dx| input_grad(x, dy, dx, coefficients)) }
            },
        )
    };
    Gradients {
        x: dx,
        gamma: gamma_grad,
        beta: beta_grad,
    }
}

/// Independent accumulator lanes of the reductions below. Written as element-wise loops over
/// 64-long arrays, they compile to full-width vector code at every [`Level`]; with 16 lanes
/// and two sums, LLVM left them scalar under AVX-512.
///
/// [`Level`]: super::simd::Level
const LANES: usize = 64;

multiversion! {
    /// `(Σ (v − shift), Σ (v − shift)²)` over a plane. The shift (a value of the channel)
    /// keeps `E[x²] − E[x]²` from cancelling when the mean is large beside the spread, so the
    /// per-plane sums can be `f32` lanes; the planes add up in `f64`.
    fn moments(plane: &[f32], shift: f32) -> (f64, f64) {
        let (mut sums, mut squares) = ([0.0f32; LANES], [0.0f32; LANES]);
        let chunks = plane.chunks_exact(LANES);
        let tail = chunks.remainder();
        for chunk in chunks {
            for ((s, q), &v) in sums.iter_mut().zip(squares.iter_mut()).zip(chunk) {
                let d = v - shift;
                *s += d;
                *q += d * d;
            }
        }
        let wide = |lanes: &[f32]| lanes.iter().map(|&v| v as f64).sum::<f64>();
        let (mut sum, mut square) = (wide(&sums), wide(&squares));
        for &v in tail {
            let d = (v - shift) as f64;
            sum += d;
            square += d * d;
        }
        (sum, square)
    }
}

multiversion! {
    /// `y = x · scale + shift`.
    fn affine(x: &[f32], y: &mut [MaybeUninit<f32>], scale: f32, shift: f32) {
        assert_eq!(x.len(), y.len(), "affine: input and output differ in length");
        for (y, x) in y.iter_mut().zip(x) {
            y.write(x * scale + shift);
        }
    }
}

multiversion! {
    /// `(Σ dy, Σ dy · (x − mean))` over a plane.
    fn grad_moments(x: &[f32], dy: &[f32], mean: f32) -> (f32, f32) {
        let (mut sums, mut products) = ([0.0f32; LANES], [0.0f32; LANES]);
        let (x_chunks, dy_chunks) = (x.chunks_exact(LANES), dy.chunks_exact(LANES));
        let (x_tail, dy_tail) = (x_chunks.remainder(), dy_chunks.remainder());
        for (x, g) in x_chunks.zip(dy_chunks) {
            let lanes = sums.iter_mut().zip(products.iter_mut());
            for (((s, p), &g), &x) in lanes.zip(g).zip(x) {
                *s += g;
                *p += g * (x - mean);
            }
        }
        let (mut sum, mut product) = (sums.iter().sum::<f32>(), products.iter().sum::<f32>());
        for (&x, &g) in x_tail.iter().zip(dy_tail) {
            sum += g;
            product += g * (x - mean);
        }
        (sum, product)
    }
}

multiversion! {
    /// `dx = k · (m · dy − mean_dy − (x − mean) · xhat_coeff)`, coefficients in that order.
    fn input_grad(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], coefficients: [f32; 5]) {
        assert!(x.len() == dx.len() && dy.len() == dx.len(), "input_grad: lengths differ");
        let [k, m, mean_dy, mean, xhat_coeff] = coefficients;
        for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(dy) {
            dx.write(k * (m * g - mean_dy - (x - mean) * xhat_coeff));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::{close, values};

    /// Forward and gradients against the textbook formulas evaluated in f64, two passes.
    #[test]
    fn forward_and_gradients_match_the_definition() {
        for d in [
            Dims {
                batch: 3,
                channels: 2,
                pixels: 5,
            },
            Dims {
                batch: 1,
                channels: 4,
                pixels: 9,
            },
            Dims {
                batch: 6,
                channels: 3,
                pixels: 1,
            },
        ] {
            let x = values(d.batch * d.channels * d.pixels, 1);
            let gamma = values(d.channels, 2);
            let beta = values(d.channels, 3);
            let dy = values(x.len(), 4);
            let eps = 1e-5;
            let m = d.count();
            let at = |n: usize, c: usize, p: usize| (n * d.channels + c) * d.pixels + p;
            let (mut y, mut dx) = (vec![0.0f64; x.len()], vec![0.0f64; x.len()]);
            let (mut means, mut vars, mut dg, mut db) = (vec![], vec![], vec![], vec![]);
            for c in 0..d.channels {
                let idx: Vec<usize> = (0..d.batch)
                    .flat_map(|n| (0..d.pixels).map(move |p| at(n, c, p)))
                    .collect();
                let mean = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / m;
                let var = idx
                    .iter()
                    .map(|&i| (x[i] as f64 - mean).powi(2))
                    .sum::<f64>()
                    / m;
                let inv = 1.0 / (var + eps).sqrt();
                let xhat = |i: usize| (x[i] as f64 - mean) * inv;
                let sum_dy: f64 = idx.iter().map(|&i| dy[i] as f64).sum();
                let sum_dy_xhat: f64 = idx.iter().map(|&i| dy[i] as f64 * xhat(i)).sum();
                for &i in &idx {
                    y[i] = gamma[c] as f64 * xhat(i) + beta[c] as f64;
                    dx[i] = gamma[c] as f64 * inv / m
                        * (m * dy[i] as f64 - sum_dy - xhat(i) * sum_dy_xhat);
                }
                means.push(mean);
                vars.push(var);
                dg.push(sum_dy_xhat);
                db.push(sum_dy);
            }
            let ours = forward(&x, &gamma, &beta, eps, d);
            close(&ours.output, &y, "output");
            close(&ours.mean, &means, "mean");
            close(&ours.variance, &vars, "variance");
            let grads = backward(&x, &gamma, &ours.mean, &ours.variance, eps, &dy, d);
            close(&grads.x, &dx, "dx");
            close(&grads.gamma, &dg, "dgamma");
            close(&grads.beta, &db, "dbeta");
        }
    }
}
