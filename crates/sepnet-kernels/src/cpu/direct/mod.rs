//! Direct convolution in a blocked channel layout: sepnet's own microkernel in place of
//! matrix products for full (one group) convolutions, with the layout kept between layers.
//!
//! The im2col and per-tap paths ([`dense`](super::dense)) hand each convolution to the `gemm`
//! crate as matrix products over NCHW planes, which pack both operands on every call. Here
//! activations stay in a blocked layout ([`blocked`]) from one layer to the next; each image is
//! copied into a padded plane (`layout.rs`) and a register-blocked microkernel (`microkernel.rs`)
//! computes each output tile as a stream of broadcast FMAs, adds the bias, applies the
//! activation and writes the tile to the blocked output: the design of LIBXSMM's and oneDNN's
//! direct kernels (Georganas et al., SC'18, arXiv:1808.05567). At stride 1 the input gradient
//! is the same kernel: a convolution of the output gradient with the flipped, transposed
//! weights. The weight gradient has a microkernel of its own (`weight_grad.rs`).

pub mod blocked;
pub mod depthwise;
mod lanes;
mod layout;
mod microkernel;
mod weight_grad;

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::output::filled;
use super::parallel::few_images;
use super::simd::{Level, level};
use crate::Fused;
use crate::geometry::Geometry;
use blocked::Blocking;
use layout::{GROUP, Plan};

/// Whether the direct kernels can compute convolution `g` with its gradients: stride 1 (the
/// forward microkernel also has column stride 2, but the input gradient by convolution needs
/// 1).
pub fn applies(g: &Geometry) -> bool {
    g.stride == [1, 1]
}

/// Whether a batch of `batch` images has enough of them for the direct kernel to pay: one
/// image per thread at least. Below that it splits an image's filters across threads, and
/// vgg-full's batch-1 forward pass ran 1.4× slower than on the `gemm` path (5.3 against
/// 3.4–3.9 ms, docs/performance.md).
pub fn batch_pays(batch: usize) -> bool {
    !few_images(batch)
}

/// The channels per block of the blocked layout at the level the kernels run at.
pub fn lanes() -> usize {
    microkernel::lanes(level())
}

/// The level whose microkernel has `lanes` lanes: the one in force when it has them (a
/// blocked tensor made before [`set_level`](super::simd::set_level) keeps its lanes).
fn level_for(lanes: usize) -> Level {
    match (level(), lanes) {
        (l, n) if microkernel::lanes(l) == n => l,
        (_, 16) => Level::Avx512,
        _ => Level::Avx2.min(super::simd::detected()),
    }
}

/// A convolution's epilogue: `bias [filters]` added, then `activation`.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// Per filter.
    pub bias: &'a [f32],
    /// After the bias.
    pub activation: Fused,
}

/// `y = act(conv(x, weight) + bias)` for blocked `x` (`g.input`'s dims, `lanes` per block)
/// and burn's `weight [filters, c, k_h, k_w]`; `y` is blocked alike.
///
/// # Panics
/// When `g` has a column stride above 2 or a slice disagrees with the sizes.
pub fn forward(x: &[f32], weight: &[f32], e: Epilogue, g: &Geometry, lanes: usize) -> Vec<f32> {
    forward_at(level_for(lanes), x, weight, e, g)
}

/// [`forward`] with the microkernel of `level` (and its lanes).
pub(crate) fn forward_at(
    level: Level,
    x: &[f32],
    w: &[f32],
    e: Epilogue,
    g: &Geometry,
) -> Vec<f32> {
    let (lanes, filters) = (microkernel::lanes(level), e.bias.len());
    let plan = Plan::new(g, filters, lanes);
    let [batch, _, oh, ow] = g.output();
    let out = Blocking {
        dims: [batch, filters, oh, ow],
        lanes,
    };
    if out.is_empty() {
        return Vec::new();
    }
    let input = Blocking {
        dims: g.input,
        lanes,
    };
    assert_eq!(x.len(), input.len(), "blocked input");
    let mut bias = e.bias.to_vec();
    bias.resize(plan.groups() * GROUP * lanes, 0.0);
    let run = Run {
        level,
        plan: &plan,
        packed: &plan.pack_weights(w),
        bias: &bias,
        activation: e.activation,
    };
    filled(
        out.len(),
        out.image_len(),
        || (Vec::new(), run.partial()),
        |(scratch, partial), n, image_out| {
            let padded = plan.padded(&x[n * input.image_len()..][..input.image_len()], g, scratch);
            // SAFETY: the groups' blocks tile the image's output, and each group's last chunk
            // writes every value of its blocks.
            unsafe {
                image_out.write_all(|y| run.image(padded, partial, few_images(g.input[0]), y))
            }
        },
    )
}

/// One convolution's fixed inputs, shared by every image.
struct Run<'a> {
    level: Level,
    plan: &'a Plan,
    packed: &'a [f32],
    bias: &'a [f32],
    activation: Fused,
}

impl Run<'_> {
    fn partial(&self) -> Vec<f32> {
        vec![0.0f32; GROUP * self.plan.out_block_len()]
    }

    /// One output group `k` of one padded image into `y`.
    fn group(&self, padded: &[f32], partial: &mut [f32], k: usize, y: &mut [MaybeUninit<f32>]) {
        let width = GROUP * self.plan.lanes;
        let mut out = microkernel::Outputs {
            partial,
            y,
            bias: &self.bias[k * width..][..width],
            activation: self.activation,
        };
        let w = self.plan.group_weights(self.packed, k);
        microkernel::out_group(self.level, self.plan, padded, w, &mut out);
    }

    /// Every output group of one padded image into `y`; with fewer images than threads, the
    /// groups are spread across threads.
    fn image(&self, padded: &[f32], partial: &mut [f32], split: bool, y: &mut [MaybeUninit<f32>]) {
        let group_len = GROUP * self.plan.lanes * self.plan.out[0] * self.plan.out[1];
        if split {
            y.par_chunks_mut(group_len)
                .enumerate()
                .for_each_init(|| self.partial(), |p, (k, y)| self.group(padded, p, k, y));
        } else {
            for (k, y) in y.chunks_mut(group_len).enumerate() {
                self.group(padded, partial, k, y);
            }
        }
    }
}

/// The input gradient of a stride-1 [`forward`] (before its epilogue): the blocked output
/// gradient `dy` convolved with the flipped weights, filters and channels swapped, padded by
/// the kernel's reach less the forward padding; blocked like the input.
///
/// # Panics
/// When `g` has a stride other than 1 or pads wider than the kernel reaches.
pub fn backward_input(weight: &[f32], dy: &[f32], g: &Geometry, lanes: usize) -> Vec<f32> {
    backward_input_at(level_for(lanes), weight, dy, g)
}

/// [`backward_input`] with the microkernel of `level` (and its lanes).
pub(crate) fn backward_input_at(
    level: Level,
    weight: &[f32],
    dy: &[f32],
    g: &Geometry,
) -> Vec<f32> {
    assert!(
        applies(g),
        "the input gradient by convolution needs stride 1"
    );
    let [batch, c, _, _] = g.input;
    let filters = weight.len() / (c * g.kernel[0] * g.kernel[1]).max(1);
    let reach = [0, 1].map(|a| (g.kernel[a] - 1) * g.dilation[a]);
    let [top, bottom, left, right] = g.pads;
    let pads = [
        (reach[0] - top, reach[0] - bottom),
        (reach[1] - left, reach[1] - right),
    ];
    let [oh, ow] = g.output_hw();
    let back = Geometry::new([batch, filters, oh, ow], g.kernel, [1, 1], g.dilation, pads);
    let bias = vec![0.0; c];
    let e = Epilogue {
        bias: &bias,
        activation: Fused::Linear,
    };
    forward_at(level, dy, &flipped(weight, g.kernel, c), e, &back)
}

/// The weight gradient `[filters, c, k_h, k_w]` of a blocked stride-1 convolution from its
/// blocked input `x` and blocked output gradient `dy` (after the epilogue's mask), by
/// the microkernel of `weight_grad.rs`.
///
/// # Panics
/// When `g` has a stride other than 1 or a slice disagrees with the sizes.
pub fn backward_weight(
    x: &[f32],
    dy: &[f32],
    g: &Geometry,
    filters: usize,
    lanes: usize,
) -> Vec<f32> {
    assert!(applies(g), "the blocked weight gradient needs stride 1");
    weight_grad::backward_weight(level_for(lanes), x, dy, g, filters)
}

/// `weight [f, c, k_h, k_w]` as the input gradient's `[c, f, k_h, k_w]`, each kernel turned
/// by 180°.
fn flipped(weight: &[f32], [k_h, k_w]: [usize; 2], c: usize) -> Vec<f32> {
    let filters = weight.len() / (c * k_h * k_w).max(1);
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
    flipped
}

#[cfg(test)]
mod tests;
