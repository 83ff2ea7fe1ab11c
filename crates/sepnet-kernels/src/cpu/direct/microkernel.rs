//! The direct convolution's microkernel: one output tile of one output block, all in
//! registers (Georganas et al., SC'18, arXiv:1808.05567).
//!
//! A tile is `RP × RQ` output pixels of `L` filters, one vector accumulator per pixel. For
//! every kernel tap and input channel, in that order, the `L` weights of the channel are
//! loaded once and each pixel's accumulator takes one fused multiply-add with its input value
//! broadcast: `RP·RQ` FMAs per weight load, one broadcast per FMA, and no partial sum leaves
//! the registers until the tile is done. Every output value is thus the same chain of
//! multiply-adds — taps in row-major order, channels ascending, each fused — whatever the
//! vector width or the tile, so every instruction set gives the same bits (the portable path
//! fuses with `f32::mul_add`).

use std::mem::MaybeUninit;
use std::ops::Range;

#[cfg(target_arch = "x86_64")]
use super::lanes::x86;
use super::lanes::{Lanes, Portable};
use super::layout::{CHUNK, GROUP, Plan};
use crate::Fused;
use crate::cpu::simd::Level;

/// `act(acc + bias)`: the convolution's epilogue, the same operations at every level.
#[inline(always)]
fn epilogue<V: Lanes>(acc: V, bias: V, activation: Fused) -> V {
    let v = acc.add(bias);
    match activation {
        Fused::Linear => v,
        Fused::Relu => v.clamp(0.0, f32::INFINITY),
        Fused::Relu6 => v.clamp(0.0, 6.0),
    }
}

/// What every tile of one output group shares.
struct Group<'a> {
    /// One blocked image `[c / L, rows, cols, L]`.
    x: &'a [f32],
    /// The group's weights `[taps, c, GROUP·L]`.
    w: &'a [f32],
    plan: &'a Plan,
}

/// Where a group's tiles go: partial sums between chunks, the finished values (bias added,
/// activation applied) into the blocked output.
pub(crate) struct Outputs<'a> {
    /// `GROUP × [rows', cols', L]`: partial sums when the channels take several chunks.
    pub partial: &'a mut [f32],
    /// The group's output blocks `[blocks, oh, ow, L]` (`GROUP` of them, fewer in the last
    /// group), written once, by the last chunk.
    pub y: &'a mut [MaybeUninit<f32>],
    /// The group's bias, `GROUP·L` floats (zeros for missing filters).
    pub bias: &'a [f32],
    /// The activation after the bias.
    pub activation: Fused,
}

/// One `RP × RQ` tile of the group's [`GROUP`] output blocks over input channels `chunk` (a
/// [`Plan::span`], [`CHUNK`] at a time), whose top-left input value is `x[origin]` and output
/// pixel `at`: starts from zero for the first span, else from its partial sums; the last span
/// writes the output.
///
/// # Safety
/// Every input value of the tile's windows lies inside `g.x` (the plan's padded plane holds
/// every window of its rounded output).
#[inline(always)]
unsafe fn tile<V: Lanes, const RP: usize, const RQ: usize, const SQ: usize>(
    g: &Group,
    chunk: Range<usize>,
    origin: usize,
    out: &mut Outputs,
    at: [usize; 2],
) {
    let plan = g.plan;
    let n = V::N;
    let in_row = plan.stride[0] * plan.padded[1] * n;
    let (block_len, row_pitch) = (plan.out_block_len(), plan.rounded[1]);
    let partial =
        |p: usize, q: usize, b: usize| b * block_len + ((at[0] + p) * row_pitch + at[1] + q) * n;
    let mut acc = [[[V::zero(); GROUP]; RQ]; RP];
    if chunk.start > 0 {
        for (p, row) in acc.iter_mut().enumerate() {
            for (q, pixel) in row.iter_mut().enumerate() {
                for (b, a) in pixel.iter_mut().enumerate() {
                    // SAFETY: the slice is `N` floats long.
                    *a = unsafe { V::load(out.partial[partial(p, q, b)..][..n].as_ptr()) };
                }
            }
        }
    }
    // Each chunk's weights, `[taps, chunk channels, GROUP·L]` in one run.
    for start in chunk.clone().step_by(CHUNK) {
        let sub = start..chunk.end.min(start + CHUNK);
        let weights = &g.w[start * plan.taps.len() * GROUP * n..];
        let first_block = origin + start / n * plan.in_block_len();
        if sub.len() == CHUNK {
            // SAFETY: as the caller's bound; a whole chunk's weights follow `weights`.
            unsafe { whole_chunk::<V, RP, RQ, SQ>(&mut acc, g, first_block, weights, in_row) };
            continue;
        }
        for (t, &tap) in plan.taps.iter().enumerate() {
            for block in start / n..sub.end.div_ceil(n) {
                let x = g.x[origin + tap + block * plan.in_block_len()..].as_ptr();
                let lanes = n.min(sub.end - block * n);
                let first = (t * sub.len() + block * n - start) * GROUP * n;
                let w = &weights[first..][..lanes * GROUP * n];
                // SAFETY: `x` as the caller's bound; `w` holds `lanes` channels.
                unsafe { channels::<V, RP, RQ, SQ>(&mut acc, x, w, in_row, lanes) };
            }
        }
    }
    if chunk.end == plan.channels {
        return finish(&acc, out, plan, at);
    }
    for (p, row) in acc.iter().enumerate() {
        for (q, pixel) in row.iter().enumerate() {
            for (b, a) in pixel.iter().enumerate() {
                // SAFETY: the slice is `N` floats long.
                unsafe { a.store(out.partial[partial(p, q, b)..][..n].as_mut_ptr()) };
            }
        }
    }
}

/// A whole chunk of [`CHUNK`] channels, every tap: the loop counts are constants, which
/// lets the compiler keep the accumulators in registers across taps (with the general loop's
/// variable counts they went to the stack after every block of channels).
///
/// # Safety
/// As [`tile`]; `x_at` is the tile's first input value in the chunk's first block and
/// `weights` holds the chunk's `taps · CHUNK · GROUP · N` floats.
#[inline(always)]
unsafe fn whole_chunk<V: Lanes, const RP: usize, const RQ: usize, const SQ: usize>(
    acc: &mut [[[V; GROUP]; RQ]; RP],
    g: &Group,
    x_at: usize,
    weights: &[f32],
    in_row: usize,
) {
    let n = V::N;
    let block_len = g.plan.in_block_len();
    assert!(weights.len() >= g.plan.taps.len() * CHUNK * GROUP * n && x_at < g.x.len());
    // A local copy: values the compiler can keep in registers, no writes through `acc`.
    let mut local = *acc;
    for (t, &tap) in g.plan.taps.iter().enumerate() {
        let w = weights[t * CHUNK * GROUP * n..].as_ptr();
        for block in 0..CHUNK / V::N {
            // SAFETY: inside the padded image and the weights (the caller's bound).
            unsafe {
                let x = g.x.as_ptr().add(x_at + tap + block * block_len);
                for lane in 0..V::N {
                    let w = w.add((block * n + lane) * GROUP * n);
                    let w: [V; GROUP] = std::array::from_fn(|b| V::load(w.add(b * n)));
                    for (p, row) in local.iter_mut().enumerate() {
                        for (q, a) in row.iter_mut().enumerate() {
                            let v = *x.add(p * in_row + q * SQ * n + lane);
                            for (a, w) in a.iter_mut().zip(w) {
                                *a = a.mul_add(v, w);
                            }
                        }
                    }
                }
            }
        }
    }
    *acc = local;
}

/// The FMAs of `lanes` input channels of one block at one tap: per channel, the [`GROUP`]
/// weight vectors once, and each pixel's value broadcast into one FMA per block.
///
/// # Safety
/// `x` must be readable at every pixel of the tile (rows `in_row` apart) plus `lanes`, and
/// `w` hold `lanes · GROUP · N` floats.
#[inline(always)]
unsafe fn channels<V: Lanes, const RP: usize, const RQ: usize, const SQ: usize>(
    acc: &mut [[[V; GROUP]; RQ]; RP],
    x: *const f32,
    w: &[f32],
    in_row: usize,
    lanes: usize,
) {
    let n = V::N;
    for lane in 0..lanes {
        // SAFETY: `w` holds `lanes` channels of `GROUP·N` floats.
        let w: [V; GROUP] =
            std::array::from_fn(|b| unsafe { V::load(w.as_ptr().add((lane * GROUP + b) * n)) });
        for (p, row) in acc.iter_mut().enumerate() {
            for (q, a) in row.iter_mut().enumerate() {
                // SAFETY: inside the padded plane (the caller's bound).
                let v = unsafe { *x.add(p * in_row + q * SQ * n + lane) };
                for (a, w) in a.iter_mut().zip(w) {
                    *a = a.mul_add(v, w);
                }
            }
        }
    }
}

/// Writes a finished tile at output pixel `at` into the group's blocked output `out.y`
/// through the epilogue: its pixels inside the output plane, its blocks that exist.
#[inline(always)]
fn finish<V: Lanes, const RP: usize, const RQ: usize>(
    acc: &[[[V; GROUP]; RQ]; RP],
    out: &mut Outputs,
    plan: &Plan,
    [i, j]: [usize; 2],
) {
    let n = V::N;
    let [oh, ow] = plan.out;
    let blocks = out.y.len() / (oh * ow * n);
    // SAFETY: `out.bias` is `GROUP·N` floats long (checked by `out_group`).
    let bias: [V; GROUP] = std::array::from_fn(|b| unsafe { V::load(out.bias[b * n..].as_ptr()) });
    for (p, row) in acc.iter().enumerate().take(oh - i) {
        for (q, pixel) in row.iter().enumerate().take(ow - j) {
            for (b, a) in pixel.iter().enumerate().take(blocks) {
                let v = epilogue(*a, bias[b], out.activation);
                let at = &mut out.y[((b * oh + i + p) * ow + j + q) * n..][..n];
                // SAFETY: `at` is `N` floats long; `MaybeUninit<f32>` has `f32`'s layout.
                unsafe { v.store(at.as_mut_ptr().cast()) };
            }
        }
    }
}

/// Every tile of one output group, one chunk of [`CHUNK`] input channels at a time: the
/// chunk's weights (`k_h·k_w·CHUNK·GROUP·L` floats, 18 KiB for 3×3 at 16 lanes) stay in the
/// L1 cache for the whole plane instead of streaming from L2 for every tile.
#[inline(always)]
fn tiles<V: Lanes, const RP: usize, const RQ: usize, const SQ: usize>(
    g: &Group,
    out: &mut Outputs,
) {
    let plan = g.plan;
    let (n, [rows, cols]) = (V::N, plan.rounded);
    for start in (0..plan.channels).step_by(plan.span()) {
        let chunk = start..plan.channels.min(start + plan.span());
        for i in (0..rows).step_by(RP) {
            for j in (0..cols).step_by(RQ) {
                let origin = (i * plan.stride[0] * plan.padded[1] + j * SQ) * n;
                // SAFETY: `Plan::new` sized the padded plane to hold every window of the
                // rounded output; `out` matches the plan (checked by `out_group`).
                unsafe { tile::<V, RP, RQ, SQ>(g, chunk.clone(), origin, out, [i, j]) };
            }
        }
    }
}

/// Runs [`tiles`] with the plan's tile shape and column stride as constants.
#[inline(always)]
fn dispatch<V: Lanes>(g: &Group, y: &mut Outputs) {
    macro_rules! shapes {
        ($([$rp:literal, $rq:literal]),*) => {
            match (g.plan.tile, g.plan.stride[1]) {
                $(
                    ([$rp, $rq], 1) => tiles::<V, $rp, $rq, 1>(g, y),
                    ([$rp, $rq], 2) => tiles::<V, $rp, $rq, 2>(g, y),
                )*
                (tile, stride) => unreachable!("no microkernel for tile {tile:?} at column stride {stride}"),
            }
        };
    }
    // TILES_16, then TILES_8's others.
    shapes!(
        [1, 8],
        [2, 4],
        [1, 7],
        [1, 6],
        [1, 4],
        [2, 2],
        [2, 3],
        [3, 2]
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn dispatch_avx512(g: &Group, y: &mut Outputs) {
    dispatch::<x86::Avx512>(g, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dispatch_avx2(g: &Group, y: &mut Outputs) {
    dispatch::<x86::Avx2>(g, y)
}

/// The lanes the microkernel uses at `level`: the blocked layout's channels per block.
pub(crate) fn lanes(level: Level) -> usize {
    match level {
        Level::Avx512 => 16,
        Level::Avx2 | Level::Portable => 8,
    }
}

/// Computes one output group of one image from the blocked image `x` and the group's packed
/// weights `w` into `out`, with the instructions of `level` (its lanes are `plan.lanes`).
///
/// # Panics
/// When a slice's length disagrees with the plan, or `level` exceeds what the CPU has.
pub(crate) fn out_group(level: Level, plan: &Plan, x: &[f32], w: &[f32], y: &mut Outputs) {
    assert_eq!(plan.lanes, lanes(level), "plan made for another level");
    assert_eq!(x.len(), plan.in_len(), "blocked image");
    assert_eq!(w.len(), plan.weight_group_len(), "packed weights");
    assert_eq!(
        y.partial.len(),
        GROUP * plan.out_block_len(),
        "partial sums"
    );
    let block = plan.out[0] * plan.out[1] * plan.lanes;
    let blocks = y.y.len() / block.max(1);
    assert!(
        y.y.len() == blocks * block && (1..=GROUP).contains(&blocks),
        "output blocks"
    );
    assert_eq!(y.bias.len(), GROUP * plan.lanes, "bias");
    assert!(
        plan.stride[1] <= 2,
        "column stride {} has no microkernel",
        plan.stride[1]
    );
    let group = Group { x, w, plan };
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => {
            assert!(
                super::super::simd::detected() >= Level::Avx512,
                "CPU lacks AVX-512"
            );
            // SAFETY: checked just above that the CPU has AVX-512.
            unsafe { dispatch_avx512(&group, y) }
        }
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => {
            assert!(
                super::super::simd::detected() >= Level::Avx2,
                "CPU lacks AVX2"
            );
            // SAFETY: checked just above that the CPU has AVX2 and FMA.
            unsafe { dispatch_avx2(&group, y) }
        }
        _ => dispatch::<Portable>(&group, y),
    }
}
