//! Inference of a separable convolution, or of a MobileNet block with its BatchNorms folded
//! in, in one pass per image: the depthwise output of an image is built in a scratch buffer
//! that stays in cache (with its own bias and activation, for the block), the pointwise
//! product reads it from there, and bias and activation rewrite the product while it is
//! still in cache.
//!
//! As three operations, the depthwise output went out to memory and back, and the bias and
//! activation pass read and wrote the output once more (VGG's 64-channel 32×32 layer moves
//! 32 MiB each time at batch 128). Training keeps the three operations: the backward pass
//! needs the depthwise output.

use super::depthwise::wide_taps;
use super::gemm::{Matrix, Threads};
use super::output::filled;
use super::parallel::few_images;
use super::{bias_act, wide::Wide};
use crate::Fused;
use crate::geometry::Geometry;

/// A bias per channel and the activation after it.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// One per channel.
    pub bias: &'a [f32],
    /// Applied last.
    pub activation: Fused,
}

/// The pointwise half: `[filters, channels·multiplier]` weights, a bias per filter and the
/// activation after it.
pub struct Pointwise<'a> {
    /// Row-major `[filters, depthwise channels]`.
    pub weight: &'a [f32],
    /// One per filter.
    pub bias: &'a [f32],
    /// Applied last.
    pub activation: Fused,
}

/// Whether to take this operation at all for depthwise geometry `g`: with fewer images than
/// threads (batch-1 latency) the layers' own path is faster, the per-call folding of
/// BatchNorm into weights included (MobileNet at batch 1: 3.5 → 6.6 ms otherwise).
pub fn pays(g: &Geometry) -> bool {
    !few_images(g.input[0])
}

/// Whether the one-pass kernel runs (else the parts run one after the other): stride 1 (the
/// wide layout) and planes of 8×8 or more (under that the pointwise product runs over the
/// whole batch instead, see `pointwise`; fused, MobileNet's 4×4 layers were slower).
fn fuses(g: &Geometry) -> bool {
    let [oh, ow] = g.output_hw();
    g.stride == [1, 1] && oh * ow >= 64
}

/// `act(W_pw · between(depthwise(x[n])) + b)` for every image; `None` where it does not
/// does not run (see `fuses`).
pub fn forward(
    x: &[f32],
    dw_weight: &[f32],
    g: &Geometry,
    between: Epilogue,
    pw: &Pointwise,
) -> Option<Vec<f32>> {
    let wide = Wide::of(g)?;
    let [batch, c, h, w] = g.input;
    let [_, channels, oh, ow] = g.output();
    let (pixels, filters, k_len) = (oh * ow, pw.bias.len(), wide.taps.len());
    let len = batch * filters * pixels;
    let sizes_fit = pw.weight.len() == filters * channels && between.bias.len() == channels;
    if len == 0 || channels == 0 || !sizes_fit || !fuses(g) {
        return None;
    }
    let weight = Matrix::row_major(pw.weight, filters, channels);
    let scratch = || (wide.scratch(), vec![0.0f32; channels * pixels]);
    Some(filled(
        len,
        filters * pixels,
        scratch,
        |((padded, out), t), n, y| {
            for (o, t) in t.chunks_exact_mut(pixels).enumerate() {
                wide.pad(&x[(n * c + o / g.multiplier) * h * w..][..h * w], g, padded);
                wide_taps(&wide.taps, &dw_weight[o * k_len..][..k_len], padded, out);
                for (i, row) in t.chunks_exact_mut(ow).enumerate() {
                    row.copy_from_slice(&out[i * wide.padded[1]..][..ow]);
                }
            }
            bias_act::add_activate(t, between.bias, between.activation);
            let t = Matrix::row_major(t, channels, pixels);
            y.product_then(weight, t, Threads::for_batch(batch), |y| {
                bias_act::add_activate(y, pw.bias, pw.activation)
            })
        },
    ))
}
