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

multiversion! {
    /// One image's planes `[c, pixels]` into `[c / L, pixels, L]`, zeros for missing channels.
    fn interleave(x: &[f32], out: &mut [MaybeUninit<f32>], sizes: [usize; 3]) {
        let [c, plane, lanes] = sizes;
        for (k, block) in out.chunks_exact_mut(plane * lanes).enumerate() {
            for (p, pixel) in block.chunks_exact_mut(lanes).enumerate() {
                for (l, v) in pixel.iter_mut().enumerate() {
                    let ci = k * lanes + l;
                    v.write(if ci < c { x[ci * plane + p] } else { 0.0 });
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
    /// One blocked image `[c / L, pixels, L]` into its real planes `out [c, pixels]`.
    fn deinterleave(xb: &[f32], out: &mut [MaybeUninit<f32>], sizes: [usize; 2]) {
        let [plane, lanes] = sizes;
        for (ci, out) in out.chunks_exact_mut(plane).enumerate() {
            let block = &xb[(ci / lanes) * plane * lanes..][..plane * lanes];
            for (o, pixel) in out.iter_mut().zip(block.chunks_exact(lanes)) {
                o.write(pixel[ci % lanes]);
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
    /// One block of [`max_pool_2x2_backward`]: `dx [h, w, L]` written in full.
    fn block_backward_2x2(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], dims: [usize; 4]) {
        let [h, w, ow, lanes] = dims;
        dx.fill(MaybeUninit::new(0.0));
        for i in 0..h / 2 {
            for j in 0..ow {
                let at = |r: usize, s: usize| ((2 * i + r) * w + 2 * j + s) * lanes;
                let g = &dy[(i * ow + j) * lanes..][..lanes];
                for l in 0..lanes {
                    let v = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)].map(|k| x[k + l]);
                    let max = v[0].max(v[1]).max(v[2].max(v[3]));
                    let first = v.iter().position(|&v| v == max).unwrap_or(3);
                    let k = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)][first];
                    dx[k + l] = MaybeUninit::new(g[l]);
                }
            }
        }
    }
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
