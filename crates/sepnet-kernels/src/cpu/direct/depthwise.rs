//! Depthwise convolution (depth multiplier 1) in the blocked layout: forward, input gradient
//! and weight gradient.
//!
//! A block holds `L` channels side by side, and a depthwise kernel never mixes channels, so
//! every operation is one vector multiply-add per pixel and tap: the `L` weights of a tap
//! times the `L` values of a pixel. Each image's block is copied into a zero-padded plane
//! first, so no window needs a bounds test. Sums run in the order of the NCHW kernels
//! ([`super::super::depthwise`]): taps row-major, each product rounded before it is added, so
//! forward and input gradient give their values (a `-0` aside) at every level.

use std::mem::MaybeUninit;

use super::super::output::filled;
use super::super::parallel::sum_over_batch;
use super::super::simd::multiversion;
use super::blocked::Blocking;
use crate::geometry::Geometry;

/// `f::<L>(args)` with `L` the constant for `lanes` (the blocked layout's 8 or 16): the lane
/// loops then compile to whole vector operations.
macro_rules! at_lanes {
    ($lanes:expr, $f:ident($($arg:expr),*)) => {
        match $lanes {
            16 => $f::<16>($($arg),*),
            8 => $f::<8>($($arg),*),
            other => unreachable!("the blocked layout has 8 or 16 lanes, not {other}"),
        }
    };
}

/// Whether the blocked depthwise kernels compute depthwise convolution `g`: one output channel
/// per input channel, padding no wider than the kernel reaches (what the input gradient's
/// gather needs).
pub fn applies(g: &Geometry) -> bool {
    let reach = [0, 1].map(|a| (g.kernel[a] - 1) * g.dilation[a]);
    let [top, bottom, left, right] = g.pads;
    g.multiplier == 1 && top.max(bottom) <= reach[0] && left.max(right) <= reach[1]
}

/// One plane's walk: the padded plane's columns, the output plane, the stride and each tap's
/// offset in pixels of the padded plane (row-major).
struct Walk<'a> {
    cols: usize,
    out: [usize; 2],
    stride: [usize; 2],
    taps: &'a [usize],
}

/// Tap offsets into a plane of `cols` columns, row-major; `flip` runs each axis backwards.
fn taps(g: &Geometry, cols: usize, flip: bool) -> Vec<usize> {
    let [k_h, k_w] = g.kernel;
    let at = |i: usize, k: usize| if flip { k - 1 - i } else { i };
    (0..k_h)
        .flat_map(|i| (0..k_w).map(move |j| (i, j)))
        .map(|(i, j)| at(i, k_h) * g.dilation[0] * cols + at(j, k_w) * g.dilation[1])
        .collect()
}

/// burn's depthwise `weight [c, 1, k_h, k_w]` as `[blocks, taps, L]`, zeros for missing
/// channels.
fn pack(weight: &[f32], b: Blocking, taps: usize) -> Vec<f32> {
    let lanes = b.lanes;
    let mut packed = vec![0.0f32; b.blocks() * taps * lanes];
    for (c, kernel) in weight.chunks_exact(taps.max(1)).enumerate() {
        for (t, &v) in kernel.iter().enumerate() {
            packed[((c / lanes) * taps + t) * lanes + c % lanes] = v;
        }
    }
    packed
}

/// Copies a block `src [h, w, L]` into `dst [rows, cols, L]` at row `top`, column `left`,
/// zeros around it.
fn pad_block(src: &[f32], dst: &mut [f32], [w, cols, lanes]: [usize; 3], [top, left]: [usize; 2]) {
    dst.fill(0.0);
    for (i, row) in src.chunks_exact(w * lanes).enumerate() {
        dst[((top + i) * cols + left) * lanes..][..w * lanes].copy_from_slice(row);
    }
}

/// `y = depthwise(x, weight)` for blocked `x` (NCHW dims `g.input`, `lanes` per block) and
/// burn's `weight [c, 1, k_h, k_w]`; `y` is blocked alike.
///
/// # Panics
/// When [`applies`] refuses `g` or a slice disagrees with the sizes.
pub fn forward(x: &[f32], weight: &[f32], g: &Geometry, lanes: usize) -> Vec<f32> {
    assert!(applies(g), "no blocked depthwise kernel for {g:?}");
    let input = Blocking {
        dims: g.input,
        lanes,
    };
    let out = Blocking {
        dims: g.output(),
        lanes,
    };
    assert_eq!(x.len(), input.len(), "blocked input");
    let [_, _, h, w] = g.input;
    let [top, bottom, left, right] = g.pads;
    let (rows, cols) = (h + top + bottom, w + left + right);
    let taps = taps(g, cols, false);
    let packed = pack(weight, input, taps.len());
    let walk = Walk {
        cols,
        out: g.output_hw(),
        stride: g.stride,
        taps: &taps,
    };
    let plane_in = h * w * lanes;
    let plane_out = walk.out[0] * walk.out[1] * lanes;
    if out.is_empty() {
        return Vec::new();
    }
    filled(
        out.len(),
        plane_out,
        || vec![0.0f32; rows * cols * lanes],
        |padded, p, y| {
            pad_block(
                &x[p * plane_in..][..plane_in],
                padded,
                [w, cols, lanes],
                [top, left],
            );
            let w = &packed[(p % input.blocks()) * taps.len() * lanes..][..taps.len() * lanes];
            // SAFETY: `gather` writes every pixel of the output block.
            unsafe { y.write_all(|y| gather(padded, w, y, &walk)) }
        },
    )
}

multiversion! {
    /// `y[p] = Σ_t w[t] · padded[p·stride + taps[t]]` for every output pixel `p` of one block.
    fn gather(padded: &[f32], w: &[f32], y: &mut [MaybeUninit<f32>], walk: &Walk) {
        at_lanes!(w.len() / walk.taps.len().max(1), gather_lanes(padded, w, y, walk))
    }
}

/// Output pixels of a row that [`gather_lanes`] computes together: each tap's weights are
/// loaded once for all of them.
const PIXELS: usize = 4;

/// [`gather`] at `L` lanes (a constant, so the lane loop becomes one vector operation): rows
/// in tiles of [`PIXELS`], then the row's last pixels one by one.
#[inline(always)]
fn gather_lanes<const L: usize>(
    padded: &[f32],
    w: &[f32],
    y: &mut [MaybeUninit<f32>],
    walk: &Walk,
) {
    let [oh, ow] = walk.out;
    let step = walk.stride[1];
    let weights: Vec<&[f32; L]> = w.chunks_exact(L).map(as_lanes).collect();
    for (oy, row) in y.chunks_exact_mut(ow * L).take(oh).enumerate() {
        let start = oy * walk.stride[0] * walk.cols;
        let mut tiles = row.chunks_exact_mut(PIXELS * L);
        for (q, out) in tiles.by_ref().enumerate() {
            let base = start + q * PIXELS * step;
            let mut acc = [[0.0f32; L]; PIXELS];
            for (&tap, w) in walk.taps.iter().zip(&weights) {
                let x = &padded[(base + tap) * L..][..((PIXELS - 1) * step + 1) * L];
                for (p, acc) in acc.iter_mut().enumerate() {
                    let x = as_lanes::<L>(&x[p * step * L..][..L]);
                    for l in 0..L {
                        acc[l] += w[l] * x[l];
                    }
                }
            }
            for (pixel, acc) in out.chunks_exact_mut(L).zip(&acc) {
                pixel.write_copy_of_slice(acc);
            }
        }
        let done = ow - tiles.into_remainder().len() / L;
        for ox in done..ow {
            let base = start + ox * step;
            let mut acc = [0.0f32; L];
            for (&tap, w) in walk.taps.iter().zip(&weights) {
                let x = as_lanes::<L>(&padded[(base + tap) * L..][..L]);
                for l in 0..L {
                    acc[l] += w[l] * x[l];
                }
            }
            row[ox * L..][..L].write_copy_of_slice(&acc);
        }
    }
}

/// `L` floats as an array.
#[inline(always)]
fn as_lanes<const L: usize>(v: &[f32]) -> &[f32; L] {
    v.try_into().expect("L lanes")
}

/// The input gradient of [`forward`] from burn's `weight` and the blocked output gradient
/// `dy`; blocked like the input. At stride 1 a gather over `dy` padded by the kernel's reach
/// less the forward padding (each input's sum in tap order, as the NCHW kernel adds them);
/// at larger strides each output's gradient is scattered over its window.
///
/// # Panics
/// When [`applies`] refuses `g` or a slice disagrees with the sizes.
pub fn backward_input(weight: &[f32], dy: &[f32], g: &Geometry, lanes: usize) -> Vec<f32> {
    assert!(applies(g), "no blocked depthwise kernel for {g:?}");
    let input = Blocking {
        dims: g.input,
        lanes,
    };
    assert_eq!(
        dy.len(),
        Blocking {
            dims: g.output(),
            lanes
        }
        .len(),
        "blocked output gradient"
    );
    if input.is_empty() {
        return Vec::new();
    }
    if g.stride == [1, 1] {
        gather_input_grad(weight, dy, g, input)
    } else {
        scatter_input_grad(weight, dy, g, input)
    }
}

/// [`backward_input`] at stride 1.
fn gather_input_grad(weight: &[f32], dy: &[f32], g: &Geometry, input: Blocking) -> Vec<f32> {
    let ([_, _, h, w], [oh, ow], lanes) = (g.input, g.output_hw(), input.lanes);
    let reach = [0, 1].map(|a| (g.kernel[a] - 1) * g.dilation[a]);
    let [top, _, left, _] = g.pads;
    let (rows, cols) = (h + reach[0], w + reach[1]);
    let taps = taps(g, cols, true);
    let packed = pack(weight, input, taps.len());
    let walk = Walk {
        cols,
        out: [h, w],
        stride: [1, 1],
        taps: &taps,
    };
    let (plane_in, plane_out) = (h * w * lanes, oh * ow * lanes);
    filled(
        input.len(),
        plane_in,
        || vec![0.0f32; rows * cols * lanes],
        |padded, p, dx| {
            let at = [reach[0] - top, reach[1] - left];
            pad_block(
                &dy[p * plane_out..][..plane_out],
                padded,
                [ow, cols, lanes],
                at,
            );
            let w = &packed[(p % input.blocks()) * taps.len() * lanes..][..taps.len() * lanes];
            // SAFETY: `gather` writes every pixel of the input block.
            unsafe { dx.write_all(|dx| gather(padded, w, dx, &walk)) }
        },
    )
}

/// [`backward_input`] at strides above 1.
fn scatter_input_grad(weight: &[f32], dy: &[f32], g: &Geometry, input: Blocking) -> Vec<f32> {
    let ([_, _, h, w], [oh, ow], lanes) = (g.input, g.output_hw(), input.lanes);
    let [top, bottom, left, right] = g.pads;
    let (rows, cols) = (h + top + bottom, w + left + right);
    let taps = taps(g, cols, false);
    let packed = pack(weight, input, taps.len());
    let walk = Walk {
        cols,
        out: [oh, ow],
        stride: g.stride,
        taps: &taps,
    };
    let (plane_in, plane_out, k) = (h * w * lanes, oh * ow * lanes, taps.len() * lanes);
    filled(
        input.len(),
        plane_in,
        || vec![0.0f32; rows * cols * lanes],
        |padded, p, dx| {
            padded.fill(0.0);
            let kernel = &packed[(p % input.blocks()) * k..][..k];
            scatter(&dy[p * plane_out..][..plane_out], kernel, padded, &walk);
            dx.rows_from(
                &padded[(top * cols + left) * lanes..],
                cols * lanes,
                w * lanes,
            )
        },
    )
}

multiversion! {
    /// `padded[p·stride + taps[t]] += w[t] · dy[p]` for every output pixel `p` of one block,
    /// taps in order.
    fn scatter(dy: &[f32], w: &[f32], padded: &mut [f32], walk: &Walk) {
        at_lanes!(w.len() / walk.taps.len().max(1), scatter_lanes(dy, w, padded, walk))
    }
}

/// [`scatter`] at `L` lanes.
#[inline(always)]
fn scatter_lanes<const L: usize>(dy: &[f32], w: &[f32], padded: &mut [f32], walk: &Walk) {
    let [oh, ow] = walk.out;
    let weights: Vec<&[f32; L]> = w.chunks_exact(L).map(as_lanes).collect();
    for (oy, row) in dy.chunks_exact(ow * L).take(oh).enumerate() {
        for (ox, d) in row.chunks_exact(L).map(as_lanes::<L>).enumerate() {
            let base = oy * walk.stride[0] * walk.cols + ox * walk.stride[1];
            for (&tap, w) in walk.taps.iter().zip(&weights) {
                let x = &mut padded[(base + tap) * L..][..L];
                for l in 0..L {
                    x[l] += w[l] * d[l];
                }
            }
        }
    }
}

/// The weight gradient `[c, 1, k_h, k_w]` of [`forward`] from its blocked input `x` and
/// blocked output gradient `dy`: per image and block, each tap's `Σ_p dy[p] · x[window_t(p)]`
/// in `L` lanes, images added in order within a thread's share ([`sum_over_batch`]).
///
/// # Panics
/// When [`applies`] refuses `g` or a slice disagrees with the sizes.
pub fn backward_weight(x: &[f32], dy: &[f32], g: &Geometry, lanes: usize) -> Vec<f32> {
    assert!(applies(g), "no blocked depthwise kernel for {g:?}");
    let input = Blocking {
        dims: g.input,
        lanes,
    };
    let [n, c, h, w] = g.input;
    let [top, bottom, left, right] = g.pads;
    let (rows, cols) = (h + top + bottom, w + left + right);
    let taps = taps(g, cols, false);
    let walk = Walk {
        cols,
        out: g.output_hw(),
        stride: g.stride,
        taps: &taps,
    };
    let (plane_in, plane_out) = (h * w * lanes, walk.out[0] * walk.out[1] * lanes);
    let (blocks, k) = (input.blocks(), taps.len() * lanes);
    assert_eq!(x.len(), input.len(), "blocked input");
    assert_eq!(dy.len(), n * blocks * plane_out, "blocked output gradient");
    let sums = sum_over_batch(n, blocks * k, |images| {
        let mut sums = vec![0.0f32; blocks * k];
        let mut padded = vec![0.0f32; rows * cols * lanes];
        for p in images.start * blocks..images.end * blocks {
            let src = &x[p * plane_in..][..plane_in];
            pad_block(src, &mut padded, [w, cols, lanes], [top, left]);
            let dw = &mut sums[(p % blocks) * k..][..k];
            tap_sums(&dy[p * plane_out..][..plane_out], &padded, dw, &walk);
        }
        sums
    });
    let mut dw = vec![0.0f32; c * taps.len()];
    for (ci, kernel) in dw.chunks_exact_mut(taps.len().max(1)).enumerate() {
        for (t, v) in kernel.iter_mut().enumerate() {
            *v = sums[((ci / lanes) * taps.len() + t) * lanes + ci % lanes];
        }
    }
    dw
}

multiversion! {
    /// `dw[t] += Σ_p dy[p] · padded[p·stride + taps[t]]` over one block, tap by tap.
    fn tap_sums(dy: &[f32], padded: &[f32], dw: &mut [f32], walk: &Walk) {
        at_lanes!(dw.len() / walk.taps.len().max(1), tap_sums_lanes(dy, padded, dw, walk))
    }
}

/// [`tap_sums`] at `L` lanes.
#[inline(always)]
fn tap_sums_lanes<const L: usize>(dy: &[f32], padded: &[f32], dw: &mut [f32], walk: &Walk) {
    let [oh, ow] = walk.out;
    for (&tap, dw) in walk.taps.iter().zip(dw.chunks_exact_mut(L)) {
        let mut acc = [0.0f32; L];
        for (oy, row) in dy.chunks_exact(ow * L).take(oh).enumerate() {
            for (ox, d) in row.chunks_exact(L).map(as_lanes::<L>).enumerate() {
                let at = (oy * walk.stride[0] * walk.cols + ox * walk.stride[1] + tap) * L;
                let x = as_lanes::<L>(&padded[at..][..L]);
                for l in 0..L {
                    acc[l] += d[l] * x[l];
                }
            }
        }
        dw.iter_mut().zip(&acc).for_each(|(s, a)| *s += a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::depthwise as nchw;
    use crate::cpu::direct::blocked::{from_blocked, to_blocked};
    use crate::cpu::simd::{Level, set_level};
    use crate::cpu::test_values::{close, f64s, values};

    /// Input, kernel, stride, dilation and padding of one case.
    type Case = (
        [usize; 4],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        [(usize, usize); 2],
    );

    /// Channels not a multiple of a block, a kernel larger than the input, asymmetric
    /// (Keras `same`) padding, stride 2, dilation, batch 1, a 1×1 plane.
    const CASES: &[Case] = &[
        ([2, 20, 7, 6], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]),
        ([1, 16, 8, 8], [3, 3], [2, 2], [1, 1], [(0, 1), (0, 1)]),
        ([3, 5, 9, 7], [3, 3], [2, 1], [1, 1], [(1, 1), (0, 2)]),
        ([2, 33, 6, 6], [3, 3], [1, 1], [2, 2], [(2, 2), (1, 3)]),
        ([1, 8, 2, 3], [5, 5], [1, 1], [1, 1], [(2, 2), (2, 2)]),
        ([2, 17, 1, 1], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]),
        ([2, 24, 5, 5], [1, 1], [1, 1], [1, 1], [(0, 0), (0, 0)]),
    ];

    #[test]
    fn blocked_depthwise_matches_the_nchw_kernels_at_every_level() {
        for level in [Level::Portable, Level::Avx2, Level::Avx512] {
            let level = set_level(level);
            for lanes in [8, 16] {
                for &(dims, kernel, stride, dilation, pads) in CASES {
                    let g = Geometry::new(dims, kernel, stride, dilation, pads);
                    check(&g, lanes, &format!("{level:?} {lanes} lanes {g:?}"));
                }
            }
        }
    }

    fn check(g: &Geometry, lanes: usize, case: &str) {
        let input = Blocking {
            dims: g.input,
            lanes,
        };
        let out = Blocking {
            dims: g.output(),
            lanes,
        };
        let x = values(g.input.iter().product(), 1);
        let weight = values(g.input[1] * g.kernel[0] * g.kernel[1], 2);
        let dy = values(g.output().iter().product(), 3);
        let (xb, dyb) = (to_blocked(&x, input), to_blocked(&dy, out));
        let y = forward(&xb, &weight, g, lanes);
        assert_eq!(
            from_blocked(&y, out),
            nchw::forward(&x, &weight, g),
            "{case}"
        );
        let dx = backward_input(&weight, &dyb, g, lanes);
        let want = nchw::backward_input(&weight, &dy, g);
        close(&from_blocked(&dx, input), &f64s(&want), case);
        if g.stride == [1, 1] {
            assert_eq!(
                from_blocked(&dx, input),
                want,
                "{case}: gather in tap order"
            );
        }
        let dw = backward_weight(&xb, &dyb, g, lanes);
        close(&dw, &f64s(&nchw::backward_weight(&x, &dy, g)), case);
        let padding = |v: &[f32], b: Blocking| {
            let channel = |i: usize| (i / (b.dims[2] * b.dims[3] * lanes) % b.blocks()) * lanes;
            (0..v.len()).all(|i| channel(i) + i % lanes < b.dims[1] || v[i] == 0.0)
        };
        assert!(
            padding(&y, out) && padding(&dx, input),
            "{case}: padding lanes"
        );
    }
}
