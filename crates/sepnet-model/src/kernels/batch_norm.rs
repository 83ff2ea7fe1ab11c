//! Batch normalisation over the channels of an NCHW batch (training mode) on the CPU: one pass
//! for the statistics, one for the output; backward likewise. burn's generic formulation
//! builds the same arithmetic from a dozen whole-tensor operations, which made MobileNet's
//! BatchNorm layers cost more than its convolutions.
//!
//! Statistics are accumulated in `f64` (sum and sum of squares), so the single pass loses no
//! accuracy against a two-pass `f32` mean and variance. The variance is the biased one (divided
//! by the count), as burn's `batch_norm_train` returns and its running statistics use.

use rayon::prelude::*;

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
            let (mut sum, mut squares) = (0.0f64, 0.0f64);
            for plane in d.planes(x, c) {
                for &v in plane {
                    let v = v as f64;
                    sum += v;
                    squares += v * v;
                }
            }
            let mean = sum / d.count();
            (
                (mean as f32),
                (squares / d.count() - mean * mean).max(0.0) as f32,
            )
        })
        .unzip();
    let mut output = vec![0.0f32; x.len()];
    if d.pixels > 0 {
        output
            .par_chunks_mut(d.pixels)
            .zip(x.par_chunks(d.pixels))
            .enumerate()
            .for_each(|(plane, (y, x))| {
                let c = plane % d.channels;
                let scale = gamma[c] / (variance[c] as f64 + epsilon).sqrt() as f32;
                let shift = beta[c] - mean[c] * scale;
                y.iter_mut()
                    .zip(x)
                    .for_each(|(y, x)| *y = x * scale + shift);
            });
    }
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
                let (s, p) = x.iter().zip(dy).fold((0.0f32, 0.0f32), |(s, p), (&x, &g)| {
                    (s + g, p + g * (x - mean[c]))
                });
                sum_dy += s as f64;
                sum_dy_xhat += p as f64;
            }
            (sum_dy as f32, (sum_dy_xhat as f32) * inv_std[c])
        })
        .unzip();
    let mut dx = vec![0.0f32; x.len()];
    if d.pixels > 0 {
        let m = d.count() as f32;
        dx.par_chunks_mut(d.pixels)
            .zip(x.par_chunks(d.pixels).zip(dy.par_chunks(d.pixels)))
            .enumerate()
            .for_each(|(plane, (dx, (x, dy)))| {
                let c = plane % d.channels;
                let k = gamma[c] * inv_std[c] / m;
                let (mean_dy, xhat_coeff) = (beta_grad[c], gamma_grad[c] * inv_std[c]);
                for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(dy) {
                    *dx = k * (m * g - mean_dy - (x - mean[c]) * xhat_coeff);
                }
            });
    }
    Gradients {
        x: dx,
        gamma: gamma_grad,
        beta: beta_grad,
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
