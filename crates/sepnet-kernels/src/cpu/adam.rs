//! Adam's update of one parameter in one pass.
//!
//! burn's Adam runs as thirteen tensor operations per parameter (scale, add, square and
//! divide, each a pass over the parameter's size), which for mnist-full's 1.6 M weights was
//! about a tenth of a training step, all of it memory traffic. This pass reads the
//! parameter, its gradient and both moments once and writes the three it changes.
//!
//! The arithmetic is burn's, operation for operation in `f32` (no fused multiply-add, the
//! same rounding of the scalars), so a run gives the same bits with either and a checkpoint
//! holds the same state (see `sepnet-train`'s optimizer tests).

use rayon::prelude::*;

use super::simd::multiversion;

/// The scalars of one Adam step, as burn computes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients {
    /// β₁, the first moment's decay.
    pub beta_1: f32,
    /// β₂, the second moment's decay.
    pub beta_2: f32,
    /// `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`: both bias corrections in one factor on the first moment.
    pub factor: f32,
    /// `ε · √(1 − β₂ᵗ)`, added to `√v`.
    pub epsilon: f32,
    /// The learning rate, rounded to `f32` as burn rounds a scalar.
    pub lr: f32,
}

impl Coefficients {
    /// The coefficients of step `time` (1 for the first update).
    ///
    /// ```
    /// use sepnet_kernels::adam::Coefficients;
    /// let c = Coefficients::new([0.9, 0.999], 1e-8, 1, 1e-3);
    /// assert!((c.factor - (0.001f32).sqrt() / 0.1).abs() < 1e-5);
    /// ```
    pub fn new(betas: [f32; 2], epsilon: f32, time: usize, lr: f64) -> Self {
        let [beta_1, beta_2] = betas;
        let time = i32::try_from(time).unwrap_or(i32::MAX);
        let correction_2 = (1.0 - beta_2.powi(time)).sqrt();
        Coefficients {
            beta_1,
            beta_2,
            factor: correction_2 / (1.0 - beta_1.powi(time)),
            epsilon: epsilon * correction_2,
            lr: lr as f32,
        }
    }
}

/// One parameter's values and Adam state, updated in place.
pub struct Slices<'a> {
    /// The parameter.
    pub param: &'a mut [f32],
    /// Its gradient.
    pub grad: &'a [f32],
    /// The first moment `m`.
    pub moment_1: &'a mut [f32],
    /// The second moment `v`.
    pub moment_2: &'a mut [f32],
}

/// Values per task: a share large enough that splitting pays for itself.
const CHUNK: usize = 1 << 15;

/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `p ← p − lr · factor·m / (√v + ε)`.
///
/// # Panics
/// When the four slices differ in length.
pub fn update(s: Slices, c: Coefficients) {
    let n = s.param.len();
    assert!(
        s.grad.len() == n && s.moment_1.len() == n && s.moment_2.len() == n,
        "adam: parameter, gradient and moments differ in length"
    );
    s.param
        .par_chunks_mut(CHUNK)
        .zip(s.grad.par_chunks(CHUNK))
        .zip(s.moment_1.par_chunks_mut(CHUNK))
        .zip(s.moment_2.par_chunks_mut(CHUNK))
        .for_each(|(((param, grad), moment_1), moment_2)| {
            update_chunk(
                Slices {
                    param,
                    grad,
                    moment_1,
                    moment_2,
                },
                c,
            )
        });
}

multiversion! {
    fn update_chunk(s: Slices, c: Coefficients) {
        let (keep_1, keep_2) = (1.0 - c.beta_1, 1.0 - c.beta_2);
        let moments = s.moment_1.iter_mut().zip(s.moment_2.iter_mut());
        for ((p, &g), (m, v)) in s.param.iter_mut().zip(s.grad).zip(moments) {
            *m = *m * c.beta_1 + g * keep_1;
            *v = *v * c.beta_2 + (g * g) * keep_2;
            *p -= (*m * c.factor) / (v.sqrt() + c.epsilon) * c.lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The update written out in `f64`, for one value over several steps.
    #[test]
    fn matches_the_definition() {
        let (mut p, mut m, mut v) = (vec![0.5f32, -1.0, 2.0], vec![0.0f32; 3], vec![0.0f32; 3]);
        let (mut p64, mut m64, mut v64) = ([0.5f64, -1.0, 2.0], [0.0f64; 3], [0.0f64; 3]);
        let grads = [[0.1f32, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.0, 0.2]];
        for (t, g) in grads.iter().enumerate() {
            let c = Coefficients::new([0.9, 0.999], 1e-8, t + 1, 0.01);
            let s = Slices {
                param: &mut p,
                grad: g,
                moment_1: &mut m,
                moment_2: &mut v,
            };
            update(s, c);
            for i in 0..3 {
                let g = g[i] as f64;
                m64[i] = 0.9 * m64[i] + 0.1 * g;
                v64[i] = 0.999 * v64[i] + 0.001 * g * g;
                let m_hat = m64[i] / (1.0 - 0.9f64.powi(t as i32 + 1));
                let v_hat = v64[i] / (1.0 - 0.999f64.powi(t as i32 + 1));
                p64[i] -= 0.01 * m_hat / (v_hat.sqrt() + 1e-8);
            }
        }
        for i in 0..3 {
            assert!(
                (p[i] as f64 - p64[i]).abs() < 1e-6,
                "{i}: {} vs {}",
                p[i],
                p64[i]
            );
        }
    }
}
