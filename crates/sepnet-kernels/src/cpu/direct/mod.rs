//! Direct convolution in a blocked channel layout: sepnet's own microkernel in place of
//! matrix products for full (one group) convolutions.
//!
//! The im2col and per-tap paths ([`dense`](super::dense)) hand each convolution to the `gemm`
//! crate as matrix products, which pack both operands on every call. Here each image is
//! copied once into the blocked layout ([`layout`]) and a register-blocked microkernel
//! ([`microkernel`]) computes each output tile as a stream of broadcast FMAs, writing the
//! finished tile straight to NCHW: the design of LIBXSMM's and oneDNN's direct kernels
//! (Georganas et al., SC'18, arXiv:1808.05567). The copy in costs `O(c·h·w)` per image against
//! the convolution's `O(filters·c·k_h·k_w·oh·ow)`, so each layer converts on its own (no layout
//! is kept between layers). At stride 1 the input gradient is the same kernel: a convolution of the output
//! gradient with the flipped, transposed weights.

mod layout;
mod microkernel;

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::output::filled;
use super::parallel::few_images;
use super::simd::{Level, level};
use crate::geometry::Geometry;
use layout::{GROUP, Plan};

/// Whether the direct kernel can compute convolution `g`: a column stride it has a
/// microkernel for (1 or 2).
pub fn applies(g: &Geometry) -> bool {
    g.stride[1] <= 2
}

/// `y = conv(x, weight)` for NCHW `x` and burn's `weight [filters, c, k_h, k_w]`, with the
/// instructions [`level()`] picks.
///
/// # Panics
/// When `g` has a column stride above 2 (see [`applies`]).
pub fn forward(x: &[f32], weight: &[f32], g: &Geometry, filters: usize) -> Vec<f32> {
    forward_at(level(), x, weight, g, filters)
}

/// The input gradient of a stride-1 convolution: `dy` convolved with the flipped weights,
/// filters and channels swapped, padded by the kernel's reach less the forward padding.
///
/// # Panics
/// When `g` has a stride other than 1 or pads wider than the kernel reaches.
pub fn backward_input(weight: &[f32], dy: &[f32], g: &Geometry, filters: usize) -> Vec<f32> {
    assert_eq!(
        g.stride,
        [1, 1],
        "the input gradient by convolution needs stride 1"
    );
    let [batch, c, _, _] = g.input;
    let [k_h, k_w] = g.kernel;
    let reach = [0, 1].map(|a| (g.kernel[a] - 1) * g.dilation[a]);
    let [top, bottom, left, right] = g.pads;
    let pads = [
        (reach[0] - top, reach[0] - bottom),
        (reach[1] - left, reach[1] - right),
    ];
    let [oh, ow] = g.output_hw();
    let back = Geometry::new([batch, filters, oh, ow], g.kernel, [1, 1], g.dilation, pads);
    let mut flipped = vec![0.0f32; weight.len()];
    for (i, &v) in weight.iter().enumerate() {
        let (j, r, ci, f) = (
            i % k_w,
            i / k_w % k_h,
            i / (k_w * k_h) % c,
            i / (k_w * k_h * c),
        );
        flipped[((ci * filters + f) * k_h + k_h - 1 - r) * k_w + k_w - 1 - j] = v;
    }
    forward(dy, &flipped, &back, c)
}

/// [`forward`] with the instructions of `level`.
pub(crate) fn forward_at(
    level: Level,
    x: &[f32],
    weight: &[f32],
    g: &Geometry,
    filters: usize,
) -> Vec<f32> {
    let plan = Plan::new(g, filters, microkernel::lanes(level));
    let packed = plan.pack_weights(weight);
    let [batch, c, h, w] = g.input;
    let (image, out_image) = (c * h * w, filters * plan.out[0] * plan.out[1]);
    let len = batch * out_image;
    if len == 0 {
        return Vec::new();
    }
    // Fewer images than threads: an image's groups are spread across threads instead.
    let split = few_images(batch);
    let group_len = GROUP * plan.lanes * plan.out[0] * plan.out[1];
    let partial = || vec![0.0f32; GROUP * plan.out_block_len()];
    let one_group = |partial: &mut Vec<f32>, xb: &[f32], k: usize, y: &mut [MaybeUninit<f32>]| {
        let mut out = microkernel::Outputs { partial, y };
        microkernel::out_group(level, &plan, xb, plan.group_weights(&packed, k), &mut out);
    };
    let scratch = || (vec![0.0f32; plan.in_len()], partial());
    filled(
        len,
        out_image,
        scratch,
        |(xb, partial_sums), n, image_out| {
            plan.pack_input(&x[n * image..][..image], g, xb);
            let xb = &xb[..];
            // SAFETY: the groups' planes tile the image's output, and each group's last chunk
            // writes every value of its planes.
            unsafe {
                image_out.write_all(|y| {
                    if split {
                        y.par_chunks_mut(group_len)
                            .enumerate()
                            .for_each_init(partial, |p, (k, y)| one_group(p, xb, k, y));
                    } else {
                        for (k, y) in y.chunks_mut(group_len).enumerate() {
                            one_group(partial_sums, xb, k, y);
                        }
                    }
                })
            }
        },
    )
}

#[cfg(test)]
mod tests;
