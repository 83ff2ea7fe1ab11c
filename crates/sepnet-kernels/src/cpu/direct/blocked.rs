//! The blocked activation layout kept between layers, and the passes that work in it besides
//! the convolution: conversion from and to NCHW, per-channel sums (a bias gradient) and the
//! 2×2 max pool.
//!
//! A blocked batch is `[n, c / L, h, w, L]` (`L` = the microkernel's lanes, 8 or 16): each
//! pixel's `L` channels of a block adjacent, the missing channels of a last partial block
//! zero. Every pass below keeps those zeros zero, so a convolution can read whole blocks.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::super::output::filled;
use super::super::simd::multiversion;
use crate::Fused;

/// The sizes of one blocked batch: NCHW dims and the lanes per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// `[n, c, h, w]` of the tensor it holds.
    pub dims: [usize; 4],
    /// Channels per block.
    pub lanes: usize,
}

impl Blocking {
    /// Channel blocks.
    pub fn blocks(&self) -> usize {
        self.dims[1].div_ceil(self.lanes)
    }

    /// Floats in one blocked image.
    pub fn image_len(&self) -> usize {
        self.blocks() * self.dims[2] * self.dims[3] * self.lanes
    }

    /// Floats in the whole blocked batch.
    pub fn len(&self) -> usize {
        self.dims[0] * self.image_len()
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// NCHW `x` into the blocked layout `b`, image by image.
pub fn to_blocked(x: &[f32], b: Blocking) -> Vec<f32> {
    let [_, c, h, w] = b.dims;
    let (image, lanes, plane) = (c * h * w, b.lanes, h * w);
    if b.is_empty() {
        return Vec::new();
    }
    filled(
        b.len(),
        b.image_len(),
        || (),
        |_, n, out| {
            let x = &x[n * image..][..image];
            // SAFETY: `interleave` writes every element of a blocked image.
            unsafe { out.write_all(|out| interleave(x, out, [c, plane, lanes])) }
        },
    )
}

/// Pixels per tile of the conversions: a tile of `TILE` pixels × a block's channels is read and
/// written within L1, so neither side's stride reaches memory one value at a time.
const TILE: usize = 16;

multiversion! {
    /// One image's planes `[c, pixels]` into `[c / L, pixels, L]`, zeros for missing channels;
    /// a tile of pixels at a time.
    fn interleave(x: &[f32], out: &mut [MaybeUninit<f32>], sizes: [usize; 3]) {
        let [c, plane, lanes] = sizes;
        for (k, block) in out.chunks_exact_mut(plane * lanes).enumerate() {
            let channels = lanes.min(c - k * lanes);
            for p0 in (0..plane).step_by(TILE) {
                let pixels = TILE.min(plane - p0);
                let tile = &mut block[p0 * lanes..][..pixels * lanes];
                for l in 0..lanes {
                    if l < channels {
                        let src = &x[(k * lanes + l) * plane + p0..][..pixels];
                        for (p, &v) in src.iter().enumerate() {
                            tile[p * lanes + l].write(v);
                        }
                    } else {
                        (0..pixels).for_each(|p| {
                            tile[p * lanes + l].write(0.0);
                        });
                    }
                }
            }
        }
    }
}

/// The blocked batch `xb` (laid out as `b`) back to NCHW.
pub fn from_blocked(xb: &[f32], b: Blocking) -> Vec<f32> {
    let [_, c, h, w] = b.dims;
    let (image, lanes, plane) = (c * h * w, b.lanes, h * w);
    if image == 0 || b.dims[0] == 0 {
        return Vec::new();
    }
    filled(
        b.dims[0] * image,
        image,
        || (),
        |_, n, out| {
            let xb = &xb[n * b.image_len()..][..b.image_len()];
            // SAFETY: `deinterleave` writes every element of an NCHW image.
            unsafe { out.write_all(|out| deinterleave(xb, out, [plane, lanes])) }
        },
    )
}

multiversion! {
    /// One blocked image `[c / L, pixels, L]` into its real planes `out [c, pixels]`; a tile of
    /// pixels at a time.
    fn deinterleave(xb: &[f32], out: &mut [MaybeUninit<f32>], sizes: [usize; 2]) {
        let [plane, lanes] = sizes;
        let c = out.len() / plane.max(1);
        for (k, block) in xb.chunks_exact(plane * lanes).enumerate() {
            let channels = lanes.min(c.saturating_sub(k * lanes));
            for p0 in (0..plane).step_by(TILE) {
                let pixels = TILE.min(plane - p0);
                let tile = &block[p0 * lanes..][..pixels * lanes];
                for l in 0..channels {
                    let dst = &mut out[(k * lanes + l) * plane + p0..][..pixels];
                    for (p, d) in dst.iter_mut().enumerate() {
                        d.write(tile[p * lanes + l]);
                    }
                }
            }
        }
    }
}

/// `Σ v` per channel over the batch and the plane (a bias gradient), the real channels only:
/// each image's sums in `f32` lanes, added across images in `f64`.
pub fn channel_sums(v: &[f32], b: Blocking) -> Vec<f32> {
    let [n, c, _, _] = b.dims;
    let mut totals = vec![0.0f64; b.blocks() * b.lanes];
    if !b.is_empty() {
        let per_image: Vec<Vec<f32>> = v
            .par_chunks_exact(b.image_len())
            .map(|image| image_sums(image, b.lanes, b.blocks()))
            .collect();
        for sums in per_image.iter().take(n) {
            totals
                .iter_mut()
                .zip(sums)
                .for_each(|(t, &s)| *t += s as f64);
        }
    }
    totals.truncate(c);
    totals.into_iter().map(|t| t as f32).collect()
}

multiversion! {
    /// One blocked image's per-channel sums, `blocks · lanes` of them.
    fn image_sums(image: &[f32], lanes: usize, blocks: usize) -> Vec<f32> {
        let mut sums = vec![0.0f32; blocks * lanes];
        let block_len = image.len() / blocks.max(1);
        for (block, sums) in image.chunks_exact(block_len).zip(sums.chunks_exact_mut(lanes)) {
            for pixel in block.chunks_exact(lanes) {
                sums.iter_mut().zip(pixel).for_each(|(s, &v)| *s += v);
            }
        }
        sums
    }
}

/// `x = act(x + bias[c])` in place over the blocked batch `xb` (laid out as `b`); the missing
/// channels of a last partial block stay zero (their bias is 0 and every fused activation keeps
/// 0).
pub fn add_bias_act(xb: &mut [f32], bias: &[f32], activation: Fused, b: Blocking) {
    let mut lanes_bias = bias.to_vec();
    lanes_bias.resize(b.blocks() * b.lanes, 0.0);
    let plane = b.dims[2] * b.dims[3] * b.lanes;
    if plane == 0 {
        return;
    }
    xb.par_chunks_mut(plane).enumerate().for_each(|(p, block)| {
        let k = p % b.blocks();
        block_bias_act(block, &lanes_bias[k * b.lanes..][..b.lanes], activation);
    });
}

multiversion! {
    /// One block `[pixels, L]`: `v = act(v + bias[lane])`.
    fn block_bias_act(block: &mut [f32], bias: &[f32], activation: Fused) {
        for pixel in block.chunks_exact_mut(bias.len()) {
            for (v, &b) in pixel.iter_mut().zip(bias) {
                *v = match activation {
                    Fused::Linear => *v + b,
                    Fused::Relu => (*v + b).max(0.0),
                    Fused::Relu6 => (*v + b).clamp(0.0, 6.0),
                };
            }
        }
    }
}

/// A 2×2, stride-2, unpadded max pool of the blocked batch `xb` (laid out as `b`); the output
/// is blocked alike, `[n, c / L, h / 2, w / 2, L]`.
pub fn max_pool_2x2(xb: &[f32], b: Blocking) -> Vec<f32> {
    let [n, _, h, w] = b.dims;
    let out = Blocking {
        dims: [n, b.dims[1], h / 2, w / 2],
        lanes: b.lanes,
    };
    let plane_in = h * w * b.lanes;
    let plane_out = out.dims[2] * out.dims[3] * b.lanes;
    if out.is_empty() {
        return Vec::new();
    }
    filled(
        out.len(),
        plane_out,
        || (),
        |_, p, y| {
            let x = &xb[p * plane_in..][..plane_in];
            // SAFETY: `block_max_2x2` writes every element of one output block.
            unsafe { y.write_all(|y| block_max_2x2(x, y, [w, out.dims[3], b.lanes])) }
        },
    )
}

multiversion! {
    /// One block `[h, w, L]` of a 2×2 max pool into `y [h / 2, w / 2, L]`.
    fn block_max_2x2(x: &[f32], y: &mut [MaybeUninit<f32>], sizes: [usize; 3]) {
        let [w, ow, lanes] = sizes;
        for (i, row) in y.chunks_exact_mut(ow * lanes).enumerate() {
            let top = &x[2 * i * w * lanes..][..2 * ow * lanes];
            let bottom = &x[(2 * i + 1) * w * lanes..][..2 * ow * lanes];
            for (j, out) in row.chunks_exact_mut(lanes).enumerate() {
                let at = 2 * j * lanes;
                let (t0, t1) = (&top[at..][..lanes], &top[at + lanes..][..lanes]);
                let (b0, b1) = (&bottom[at..][..lanes], &bottom[at + lanes..][..lanes]);
                for l in 0..lanes {
                    out[l].write(t0[l].max(t1[l]).max(b0[l].max(b1[l])));
                }
            }
        }
    }
}

/// The input gradient of [`max_pool_2x2`] from its input `xb` (laid out as `b`) and output
/// gradient `dy`: each window's first maximum (row-major, as burn and the NCHW kernel choose)
/// takes the window's gradient, every other input zero.
pub fn max_pool_2x2_backward(xb: &[f32], dy: &[f32], b: Blocking) -> Vec<f32> {
    let [_, _, h, w] = b.dims;
    let [oh, ow] = [h / 2, w / 2];
    let plane_in = h * w * b.lanes;
    let plane_out = oh * ow * b.lanes;
    if b.is_empty() {
        return Vec::new();
    }
    filled(
        b.len(),
        plane_in,
        || (),
        |_, p, dx| {
            let x = &xb[p * plane_in..][..plane_in];
            let dy = &dy[p * plane_out..][..plane_out];
            // SAFETY: `block_backward_2x2` writes every element of one input block.
            unsafe { dx.write_all(|dx| block_backward_2x2(x, dy, dx, [h, w, ow, b.lanes])) }
        },
    )
}

multiversion! {
    /// One block of [`max_pool_2x2_backward`]: `dx [h, w, L]` written in full. Each window's
    /// four inputs are written at once, lane by lane without branches (a loop the compiler
    /// vectorises); only a last row or column no window covers is zeroed apart.
    fn block_backward_2x2(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], dims: [usize; 4]) {
        let [h, w, ow, lanes] = dims;
        let row = w * lanes;
        if h % 2 == 1 {
            dx[(h - 1) * row..].fill(MaybeUninit::new(0.0));
        }
        for i in 0..h / 2 {
            let (top, bottom) = dx[2 * i * row..][..2 * row].split_at_mut(row);
            if w % 2 == 1 {
                top[(w - 1) * lanes..].fill(MaybeUninit::new(0.0));
                bottom[(w - 1) * lanes..].fill(MaybeUninit::new(0.0));
            }
            let (x_top, x_bottom) = (&x[2 * i * row..][..row], &x[(2 * i + 1) * row..][..row]);
            let dy = &dy[i * ow * lanes..][..ow * lanes];
            match lanes {
                16 => row_windows::<16>([x_top, x_bottom], dy, [top, bottom]),
                8 => row_windows::<8>([x_top, x_bottom], dy, [top, bottom]),
                other => unreachable!("the microkernels have 8 or 16 lanes, not {other}"),
            }
        }
    }
}

/// A row pair's windows of [`block_backward_2x2`] at `L` lanes (a constant: the compiler
/// then vectorises the selects).
#[inline(always)]
fn row_windows<const L: usize>(x: [&[f32]; 2], dy: &[f32], dx: [&mut [MaybeUninit<f32>]; 2]) {
    let [top, bottom] = dx;
    let (pairs_t, pairs_b) = (top.chunks_exact_mut(2 * L), bottom.chunks_exact_mut(2 * L));
    let inputs = x[0].chunks_exact(2 * L).zip(x[1].chunks_exact(2 * L));
    for (((t, b), (xt, xb)), g) in pairs_t.zip(pairs_b).zip(inputs).zip(dy.chunks_exact(L)) {
        let out = window_grads::<L>(
            [&xt[..L], &xt[L..], &xb[..L], &xb[L..]].map(|v| v.try_into().expect("L lanes")),
            g.try_into().expect("L lanes"),
        );
        let (t0, t1) = t.split_at_mut(L);
        let (b0, b1) = b.split_at_mut(L);
        for (dst, src) in [t0, t1, b0, b1].into_iter().zip(&out) {
            dst.write_copy_of_slice(src);
        }
    }
}

/// `L` windows' gradients from their four inputs (row-major) and gradient `g`: `g` at each
/// window's first maximum, 0 elsewhere. Arrays of constant length and `&`/`|` instead of
/// `&&`/`||` (no short circuit, no branch) let the compiler vectorise it.
#[inline(always)]
fn window_grads<const L: usize>(v: [&[f32; L]; 4], g: &[f32; L]) -> [[f32; L]; 4] {
    let mut out = [[0.0f32; L]; 4];
    for l in 0..L {
        let max = v[0][l].max(v[1][l]).max(v[2][l].max(v[3][l]));
        let k0 = v[0][l] == max;
        let k1 = !k0 & (v[1][l] == max);
        let k2 = !k0 & !k1 & (v[2][l] == max);
        let k3 = !(k0 | k1 | k2);
        for (o, k) in out.iter_mut().zip([k0, k1, k2, k3]) {
            o[l] = if k { g[l] } else { 0.0 };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::pool;
    use crate::cpu::test_values::values;
    use crate::geometry::Geometry;

    /// Odd channel counts (a partial last block), odd planes (a row and column no window
    /// covers), one channel, batch 1.
    const SHAPES: &[[usize; 4]] = &[[2, 3, 4, 4], [1, 17, 5, 7], [3, 1, 2, 2], [2, 40, 6, 3]];

    #[test]
    fn conversion_round_trips_with_zeros_in_missing_channels() {
        for &dims in SHAPES {
            for lanes in [8, 16] {
                let b = Blocking { dims, lanes };
                let x = values(dims.iter().product(), 1);
                let xb = to_blocked(&x, b);
                assert_eq!(xb.len(), b.len());
                assert_eq!(from_blocked(&xb, b), x, "{dims:?} at {lanes} lanes");
                let [_, c, h, w] = dims;
                let channel = |i: usize| (i / (h * w * lanes) % b.blocks()) * lanes + i % lanes;
                let mut padding = (0..xb.len()).filter(|&i| channel(i) >= c);
                assert!(padding.all(|i| xb[i] == 0.0), "{dims:?}: padding not zero");
            }
        }
    }

    #[test]
    fn channel_sums_and_max_pool_match_the_nchw_kernels() {
        for &dims in SHAPES {
            for lanes in [8, 16] {
                let b = Blocking { dims, lanes };
                let [n, c, h, w] = dims;
                let x = values(n * c * h * w, 2);
                let xb = to_blocked(&x, b);
                let sums = channel_sums(&xb, b);
                for (ci, s) in sums.iter().enumerate() {
                    let expected: f32 = (0..n)
                        .flat_map(|i| &x[(i * c + ci) * h * w..][..h * w])
                        .sum();
                    assert!((s - expected).abs() < 1e-4, "{dims:?} channel {ci}");
                }
                let g = Geometry::new(dims, [2, 2], [2, 2], [1, 1], [(0, 0), (0, 0)]);
                let pooled = Blocking {
                    dims: g.output(),
                    lanes,
                };
                let y = from_blocked(&max_pool_2x2(&xb, b), pooled);
                assert_eq!(y, pool::forward(&x, &g), "{dims:?} forward");
                // Ties included: a quarter of the values repeat.
                let x = x.iter().map(|v| (v * 4.0).round()).collect::<Vec<_>>();
                let dy = values(g.output().iter().product(), 3);
                let dx = max_pool_2x2_backward(&to_blocked(&x, b), &to_blocked(&dy, pooled), b);
                let expected = pool::backward(&x, &dy, &g);
                assert_eq!(from_blocked(&dx, b), expected, "{dims:?} backward");
            }
        }
    }
}
