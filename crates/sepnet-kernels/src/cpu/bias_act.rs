//! A convolution's bias and activation in one pass over its output.
//!
//! As two burn operations they were three passes over an activation in the forward pass (add
//! the broadcast bias into a new tensor, apply the activation into another) and more in the
//! backward (the activation's mask, the bias gradient's reduction over batch and pixels).
//! Here the forward pass rewrites the convolution's output in place when nothing else holds
//! it, and the backward pass masks the gradient and sums it per channel in one pass, from
//! the saved output alone (`act'(pre)` is known from `act(pre)` for ReLU and ReLU6).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::output::filled;
use super::parallel::few_images;
use super::simd::multiversion;
use crate::Fused;

/// `x [planes, pixels]` planes of `channels` channels: plane `p` has channel `p % channels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Images.
    pub batch: usize,
    /// Channels (the bias length).
    pub channels: usize,
    /// `h · w`.
    pub pixels: usize,
}

/// Values below which a pass runs on the calling thread.
const SEQUENTIAL_BELOW: usize = 1 << 16;

/// `x = act(x + bias[c])`, in place; one image per task (planes can be as small as 2×2).
pub fn forward_in_place(x: &mut [f32], bias: &[f32], activation: Fused, d: Dims) {
    // Whole images per task, or single planes when images are fewer than threads.
    let planes = if few_images(d.batch) { 1 } else { d.channels };
    if planes * d.pixels == 0 {
        return;
    }
    let chunk = |(i, x): (usize, &mut [f32])| {
        let first = (i * planes) % d.channels;
        add_activate(x, &bias[first..first + planes], activation);
    };
    // Small activations (batch-1 inference) are done before rayon would have split them.
    if x.len() < SEQUENTIAL_BELOW {
        x.chunks_mut(planes * d.pixels).enumerate().for_each(chunk);
    } else {
        x.par_chunks_mut(planes * d.pixels)
            .enumerate()
            .for_each(chunk);
    }
}

multiversion! {
    /// Consecutive planes `[bias.len(), pixels]`: `x = act(x + bias[plane])`.
    pub(super) fn add_activate(x: &mut [f32], bias: &[f32], activation: Fused) {
        let pixels = x.len() / bias.len().max(1);
        if pixels == 0 {
            return;
        }
        for (x, &b) in x.chunks_exact_mut(pixels).zip(bias) {
            match activation {
                Fused::Linear => x.iter_mut().for_each(|v| *v += b),
                Fused::Relu => x.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
                Fused::Relu6 => x.iter_mut().for_each(|v| *v = (*v + b).clamp(0.0, 6.0)),
            }
        }
    }
}

/// Gradients for the pre-activation `x` and the bias, from the output and its gradient.
pub fn backward(output: &[f32], dy: &[f32], activation: Fused, d: Dims) -> (Vec<f32>, Vec<f32>) {
    let image = d.channels * d.pixels;
    if output.is_empty() || image == 0 {
        return (vec![0.0; output.len()], vec![0.0; d.channels]);
    }
    let dx = filled(
        output.len(),
        image,
        || (),
        |_, n, dx| {
            let (y, dy) = (&output[n * image..][..image], &dy[n * image..][..image]);
            // SAFETY: `mask` writes every element of `dx` (it checks the lengths match).
            unsafe { dx.write_all(|dx| mask(y, dy, dx, activation)) }
        },
    );
    let bias = (0..d.channels)
        .into_par_iter()
        .map(|c| channel_sum(&dx, c, d) as f32)
        .collect();
    (dx, bias)
}

/// The gradient before the activation, from its output `y`, written over the output gradient
/// `g` (element by element, in any layout): [`backward`]'s input gradient without a new
/// buffer and without the bias gradient.
pub fn mask_in_place(y: &[f32], g: &mut [f32], activation: Fused) {
    assert_eq!(y.len(), g.len(), "mask: lengths differ");
    let chunk = y.len().div_ceil(rayon::current_num_threads()).max(1 << 14);
    g.par_chunks_mut(chunk)
        .zip(y.par_chunks(chunk))
        .for_each(|(g, y)| mask_over(y, g, activation));
}

multiversion! {
    /// [`mask`] in place: `g = 0` where the activation did not pass its input through.
    fn mask_over(y: &[f32], g: &mut [f32], activation: Fused) {
        let pairs = g.iter_mut().zip(y);
        match activation {
            Fused::Linear => {}
            Fused::Relu => pairs.for_each(|(g, &y)| *g = if y > 0.0 { *g } else { 0.0 }),
            Fused::Relu6 => pairs.for_each(|(g, &y)| *g = if y > 0.0 && y < 6.0 { *g } else { 0.0 }),
        }
    }
}

multiversion! {
    /// `dx = dy` where the activation passed its input through (`0 < y`, and `y < 6` for
    /// ReLU6), else 0. At the boundaries the derivative taken is burn's: 0.
    fn mask(y: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], activation: Fused) {
        assert!(y.len() == dx.len() && dy.len() == dx.len(), "mask: lengths differ");
        let pairs = dx.iter_mut().zip(y.iter().zip(dy));
        match activation {
            Fused::Linear => pairs.for_each(|(dx, (_, &g))| {
                dx.write(g);
            }),
            Fused::Relu => pairs.for_each(|(dx, (&y, &g))| {
                dx.write(if y > 0.0 { g } else { 0.0 });
            }),
            Fused::Relu6 => pairs.for_each(|(dx, (&y, &g))| {
                dx.write(if y > 0.0 && y < 6.0 { g } else { 0.0 });
            }),
        }
    }
}

/// Lanes of the per-channel sum, at most (as wide as a plane below that).
const LANES: usize = 64;

multiversion! {
    /// `Σ v` over channel `c`'s planes: `f32` lanes as wide as a plane (up to 64), added in
    /// `f64` after each plane.
    fn channel_sum(v: &[f32], c: usize, d: Dims) -> f64 {
        let width = d.pixels.clamp(1, LANES);
        let mut lanes = [0.0f32; LANES];
        let mut total = 0.0f64;
        for n in 0..d.batch {
            let plane = &v[(n * d.channels + c) * d.pixels..][..d.pixels];
            let chunks = plane.chunks_exact(width);
            total += chunks.remainder().iter().map(|&v| v as f64).sum::<f64>();
            for chunk in chunks {
                for (lane, v) in lanes[..width].iter_mut().zip(chunk) {
                    *lane += v;
                }
            }
            total += lanes[..width].iter().map(|&v| v as f64).sum::<f64>();
            lanes[..width].fill(0.0);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain reference: the bias added, the activation applied, and the gradients by the
    /// definition (`∂/∂pre = dy · act'(pre)`, `∂/∂b[c] = Σ over c's planes`).
    #[test]
    fn matches_the_definition() {
        let d = Dims {
            batch: 3,
            channels: 2,
            pixels: 37,
        };
        let n = d.batch * d.channels * d.pixels;
        let pre: Vec<f32> = (0..n).map(|i| ((i * 7919) % 23) as f32 - 9.0).collect();
        let dy: Vec<f32> = (0..n)
            .map(|i| ((i * 104729) % 13) as f32 * 0.25 - 1.5)
            .collect();
        let bias = [0.5f32, -2.0];
        for activation in [Fused::Linear, Fused::Relu, Fused::Relu6] {
            let mut out = pre.clone();
            forward_in_place(&mut out, &bias, activation, d);
            let (dx, db) = backward(&out, &dy, activation, d);
            let mut in_place = dy.clone();
            mask_in_place(&out, &mut in_place, activation);
            assert_eq!(in_place, dx, "{activation:?}: the mask in place");
            let mut expected_db = [0.0f32; 2];
            for i in 0..n {
                let c = (i / d.pixels) % d.channels;
                let z = pre[i] + bias[c];
                let (y, slope) = match activation {
                    Fused::Linear => (z, 1.0),
                    Fused::Relu => (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }),
                    Fused::Relu6 => (
                        z.clamp(0.0, 6.0),
                        if z > 0.0 && z < 6.0 { 1.0 } else { 0.0 },
                    ),
                };
                assert_eq!(out[i], y, "{activation:?} output {i}");
                assert_eq!(dx[i], dy[i] * slope, "{activation:?} input gradient {i}");
                expected_db[c] += dy[i] * slope;
            }
            for c in 0..2 {
                assert!(
                    (db[c] - expected_db[c]).abs() < 1e-4,
                    "{activation:?} bias gradient {c}"
                );
            }
        }
    }
}
