//! Batch normalisation over the channels of an NCHW batch (training mode) on the CPU, with the
//! activation that follows it folded in: one pass for the statistics, one for the output;
//! backward likewise. burn's generic formulation builds the same arithmetic from a dozen
//! whole-tensor operations, which made MobileNet's BatchNorm layers cost more than its
//! convolutions; the activation as a layer of its own cost two more passes.
//!
//! Statistics: per plane in `f32` vector lanes of values shifted by one value of the channel
//! (so `E[x²] − E[x]²` does not cancel when the mean is large beside the spread), planes
//! added in `f64`. The variance is the biased one (divided by the count), as burn's
//! `batch_norm_train` returns and its running statistics use. The backward pass recomputes
//! the activation's mask from the input, so the output need not be kept.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::output::filled;
use super::simd::multiversion;
use crate::Fused;

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

/// The layer's parameters and the activation applied to its output.
#[derive(Clone, Copy, Debug)]
pub struct Affine<'a> {
    /// Scale γ per channel.
    pub gamma: &'a [f32],
    /// Shift β per channel.
    pub beta: &'a [f32],
    /// Added to the variance.
    pub epsilon: f64,
    /// Applied to the normalised output.
    pub activation: Fused,
}

impl Affine<'_> {
    /// `(scale, shift)` of channel `c`: the output is `act(x · scale + shift)`. The backward
    /// pass calls this too, so its mask sees exactly the forward pass's values.
    fn scale_shift(&self, c: usize, mean: &[f32], variance: &[f32]) -> [f32; 2] {
        let scale = self.gamma[c] / (variance[c] as f64 + self.epsilon).sqrt() as f32;
        [scale, self.beta[c] - mean[c] * scale]
    }
}

/// The output with the batch's per-channel mean and (biased) variance.
pub struct Normalized {
    /// `act(γ · (x − mean) / √(var + ε) + β)`.
    pub output: Vec<f32>,
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel biased variance.
    pub variance: Vec<f32>,
}

/// Forward pass in training mode: normalise with the batch's own statistics.
pub fn forward(x: &[f32], p: Affine, d: Dims) -> Normalized {
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..d.channels)
        .into_par_iter()
        .map(|c| channel_moments(x, c, d))
        .unzip();
    let output = if x.is_empty() || d.pixels == 0 {
        vec![0.0f32; x.len()]
    } else {
        let lines: Vec<[f32; 2]> = (0..d.channels)
            .map(|c| p.scale_shift(c, &mean, &variance))
            .collect();
        let image = d.channels * d.pixels;
        filled(
            x.len(),
            image,
            || (),
            |_, n, y| {
                let x = &x[n * image..][..image];
                // SAFETY: `affine` writes every element of `y` (it checks the lengths match).
                unsafe { y.write_all(|y| affine(x, y, &lines, p.activation)) }
            },
        )
    };
    Normalized {
        output,
        mean,
        variance,
    }
}

/// Mean and biased variance of channel `c`.
fn channel_moments(x: &[f32], c: usize, d: Dims) -> (f32, f32) {
    let shift = d.planes(x, c).next().and_then(|p| p.first()).copied();
    let shift = shift.unwrap_or(0.0);
    let (sum, squares) = channel_sums(x, c, d, shift);
    let shifted_mean = sum / d.count();
    (
        (shift as f64 + shifted_mean) as f32,
        (squares / d.count() - shifted_mean * shifted_mean).max(0.0) as f32,
    )
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

/// With `g = dy · act'(y)` (the gradient reaching the normalisation) and
/// `x̂ = (x − mean)·inv_std`: `∂β = Σ g`, `∂γ = Σ g·x̂` and
/// `∂x = γ·inv_std/M · (M·g − ∂β − x̂·∂γ)` (M values per channel).
pub fn backward(
    x: &[f32],
    p: Affine,
    mean: &[f32],
    variance: &[f32],
    dy: &[f32],
    d: Dims,
) -> Gradients {
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|v| (1.0 / (*v as f64 + p.epsilon).sqrt()) as f32)
        .collect();
    let (beta_grad, gamma_grad): (Vec<f32>, Vec<f32>) = (0..d.channels)
        .into_par_iter()
        .map(|c| {
            let [scale, shift] = p.scale_shift(c, mean, variance);
            let at = [mean[c], scale, shift];
            let (sum_g, sum_g_xhat) = channel_grad_sums(x, dy, c, d, at, p.activation);
            (sum_g as f32, (sum_g_xhat as f32) * inv_std[c])
        })
        .unzip();
    let m = d.count() as f32;
    let dx = if x.is_empty() || d.pixels == 0 {
        vec![0.0f32; x.len()]
    } else {
        let coefficients: Vec<[f32; 7]> = (0..d.channels)
            .map(|c| {
                let [scale, shift] = p.scale_shift(c, mean, variance);
                let k = p.gamma[c] * inv_std[c] / m;
                let xhat_coeff = gamma_grad[c] * inv_std[c];
                [k, m, beta_grad[c], mean[c], xhat_coeff, scale, shift]
            })
            .collect();
        let image = d.channels * d.pixels;
        filled(
            x.len(),
            image,
            || (),
            |_, n, dx| {
                let (x, dy) = (&x[n * image..][..image], &dy[n * image..][..image]);
                // SAFETY: `input_grad` writes every element of `dx` (it checks the lengths match).
                unsafe { dx.write_all(|dx| input_grad(x, dy, dx, &coefficients, p.activation)) }
            },
        )
    };
    Gradients {
        x: dx,
        gamma: gamma_grad,
        beta: beta_grad,
    }
}

/// Independent accumulator lanes of the reductions below, at most. Written as element-wise
/// loops over arrays of run-time width, they compile to full-width vector code at every
/// [`Level`]; with 16 fixed lanes and two sums, LLVM left them scalar under AVX-512.
///
/// [`Level`]: super::simd::Level
const LANES: usize = 64;

/// `f32` lanes as wide as a plane (up to [`LANES`]; a 4×4 plane is one 16-lane vector), added
/// into `f64` totals after every plane, or every [`LANES`] planes when planes are narrower,
/// so no lane sums more than a few thousand values in `f32`.
struct Lanes {
    width: usize,
    flush_every: usize,
    sums: [[f32; LANES]; 2],
    totals: [f64; 2],
}

impl Lanes {
    #[inline(always)]
    fn new(pixels: usize) -> Lanes {
        let width = pixels.clamp(1, LANES);
        Lanes {
            width,
            flush_every: if pixels >= LANES { 1 } else { LANES },
            sums: [[0.0; LANES]; 2],
            totals: [0.0; 2],
        }
    }

    #[inline(always)]
    fn after_plane(&mut self, planes_done: usize) {
        if planes_done.is_multiple_of(self.flush_every) {
            self.flush();
        }
    }

    #[inline(always)]
    fn flush(&mut self) {
        for (total, lanes) in self.totals.iter_mut().zip(&mut self.sums) {
            *total += lanes[..self.width].iter().map(|&v| v as f64).sum::<f64>();
            lanes[..self.width].fill(0.0);
        }
    }

    #[inline(always)]
    fn finish(mut self) -> (f64, f64) {
        self.flush();
        (self.totals[0], self.totals[1])
    }
}

/// Evaluates `body` with `passes` bound to "does the activation pass the gradient at output
/// `y`" (burn's convention: not at the kinks), once per activation: a `match` per element
/// kept LLVM from vectorising the loops.
macro_rules! with_mask {
    ($activation:expr, |$passes:ident| $body:expr) => {
        match $activation {
            Fused::Linear => {
                let $passes = |_: f32| true;
                $body
            }
            Fused::Relu => {
                let $passes = |y: f32| y > 0.0;
                $body
            }
            Fused::Relu6 => {
                let $passes = |y: f32| y > 0.0 && y < 6.0;
                $body
            }
        }
    };
}

/// `dy` where `passes(y)`, else 0.
#[inline(always)]
fn through(passes: impl Fn(f32) -> bool, y: f32, dy: f32) -> f32 {
    if passes(y) { dy } else { 0.0 }
}

multiversion! {
    /// `(Σ (v − shift), Σ (v − shift)²)` over channel `c`. The shift (a value of the
    /// channel) keeps `E[x²] − E[x]²` from cancelling when the mean is large beside the
    /// spread, so the lanes can be `f32`.
    fn channel_sums(x: &[f32], c: usize, d: Dims, shift: f32) -> (f64, f64) {
        let mut lanes = Lanes::new(d.pixels);
        let width = lanes.width;
        for (i, plane) in d.planes(x, c).enumerate() {
            let chunks = plane.chunks_exact(width);
            for &v in chunks.remainder() {
                let e = (v - shift) as f64;
                lanes.totals[0] += e;
                lanes.totals[1] += e * e;
            }
            let [sums, squares] = &mut lanes.sums;
            for chunk in chunks {
                let pairs = sums[..width].iter_mut().zip(squares[..width].iter_mut());
                for ((s, q), &v) in pairs.zip(chunk) {
                    let e = v - shift;
                    *s += e;
                    *q += e * e;
                }
            }
            lanes.after_plane(i + 1);
        }
        lanes.finish()
    }
}

multiversion! {
    /// `(Σ g, Σ g · (x − mean))` over channel `c`, `g = dy · act'(x · scale + shift)`, with
    /// `at = [mean, scale, shift]`.
    fn channel_grad_sums(x: &[f32], dy: &[f32], c: usize, d: Dims, at: [f32; 3], activation: Fused) -> (f64, f64) {
        let [mean, scale, shift] = at;
        with_mask!(activation, |passes| {
            let mut lanes = Lanes::new(d.pixels);
            let width = lanes.width;
            for (i, (x, dy)) in d.planes(x, c).zip(d.planes(dy, c)).enumerate() {
                let (x_chunks, dy_chunks) = (x.chunks_exact(width), dy.chunks_exact(width));
                for (&x, &dy) in x_chunks.remainder().iter().zip(dy_chunks.remainder()) {
                    let g = through(passes, x * scale + shift, dy) as f64;
                    lanes.totals[0] += g;
                    lanes.totals[1] += g * (x - mean) as f64;
                }
                let [sums, products] = &mut lanes.sums;
                for (x, dy) in x_chunks.zip(dy_chunks) {
                    let pairs = sums[..width].iter_mut().zip(products[..width].iter_mut());
                    for (((s, p), &dy), &x) in pairs.zip(dy).zip(x) {
                        let g = through(passes, x * scale + shift, dy);
                        *s += g;
                        *p += g * (x - mean);
                    }
                }
                lanes.after_plane(i + 1);
            }
            lanes.finish()
        })
    }
}

multiversion! {
    /// One image: `y = act(x · scale + shift)` with `lines[c] = [scale, shift]`.
    fn affine(x: &[f32], y: &mut [MaybeUninit<f32>], lines: &[[f32; 2]], activation: Fused) {
        assert_eq!(x.len(), y.len(), "affine: input and output differ in length");
        let pixels = x.len() / lines.len().max(1);
        if pixels == 0 {
            return;
        }
        for ((y, x), &[scale, shift]) in y.chunks_exact_mut(pixels).zip(x.chunks_exact(pixels)).zip(lines) {
            let pairs = y.iter_mut().zip(x);
            match activation {
                Fused::Linear => pairs.for_each(|(y, x)| {
                    y.write(x * scale + shift);
                }),
                Fused::Relu => pairs.for_each(|(y, x)| {
                    y.write((x * scale + shift).max(0.0));
                }),
                Fused::Relu6 => pairs.for_each(|(y, x)| {
                    y.write((x * scale + shift).clamp(0.0, 6.0));
                }),
            }
        }
    }
}

multiversion! {
    /// One image: `dx = k · (m · g − Σg − (x − mean) · xhat_coeff)`,
    /// `g = dy · act'(x · scale + shift)`, with
    /// `coefficients[c] = [k, m, Σg, mean, xhat_coeff, scale, shift]`.
    fn input_grad(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], coefficients: &[[f32; 7]], activation: Fused) {
        assert!(x.len() == dx.len() && dy.len() == dx.len(), "input_grad: lengths differ");
        let pixels = x.len() / coefficients.len().max(1);
        if pixels == 0 {
            return;
        }
        with_mask!(activation, |passes| {
            let planes = dx.chunks_exact_mut(pixels).zip(x.chunks_exact(pixels).zip(dy.chunks_exact(pixels)));
            for ((dx, (x, dy)), c) in planes.zip(coefficients) {
                let [k, m, sum_g, mean, xhat_coeff, scale, shift] = *c;
                for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                    let g = through(passes, x * scale + shift, dy);
                    dx.write(k * (m * g - sum_g - (x - mean) * xhat_coeff));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values::{close, values};

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
            let p = Affine {
                gamma: &gamma,
                beta: &beta,
                epsilon: eps,
                activation: Fused::Linear,
            };
            let ours = forward(&x, p, d);
            close(&ours.output, &y, "output");
            close(&ours.mean, &means, "mean");
            close(&ours.variance, &vars, "variance");
            let grads = backward(&x, p, &ours.mean, &ours.variance, &dy, d);
            close(&grads.x, &dx, "dx");
            close(&grads.gamma, &dg, "dgamma");
            close(&grads.beta, &db, "dbeta");
        }
    }

    /// With an activation folded in, the output is the activation of the plain output, and
    /// the gradients are the plain gradients of the masked output gradient.
    #[test]
    fn activation_is_applied_and_masked() {
        let d = Dims {
            batch: 4,
            channels: 3,
            pixels: 67,
        };
        let x = values(d.batch * d.channels * d.pixels, 5);
        let (gamma, beta) = (values(d.channels, 6), values(d.channels, 7));
        let dy = values(x.len(), 8);
        let with = |activation| Affine {
            gamma: &gamma,
            beta: &beta,
            epsilon: 1e-3,
            activation,
        };
        let plain = forward(&x, with(Fused::Linear), d);
        for activation in [Fused::Relu, Fused::Relu6] {
            let ours = forward(&x, with(activation), d);
            let masked: Vec<f32> = plain
                .output
                .iter()
                .zip(&dy)
                .map(|(&y, &g)| with_mask!(activation, |passes| through(passes, y, g)))
                .collect();
            for (o, &y) in ours.output.iter().zip(&plain.output) {
                let expected = match activation {
                    Fused::Relu6 => y.clamp(0.0, 6.0),
                    _ => y.max(0.0),
                };
                assert_eq!(*o, expected);
            }
            let (m, v) = (&plain.mean, &plain.variance);
            let ours = backward(&x, with(activation), m, v, &dy, d);
            let expected = backward(&x, with(Fused::Linear), m, v, &masked, d);
            assert_eq!(ours.x, expected.x, "{activation:?} dx");
            assert_eq!(ours.gamma, expected.gamma, "{activation:?} dgamma");
            assert_eq!(ours.beta, expected.beta, "{activation:?} dbeta");
        }
    }
}
