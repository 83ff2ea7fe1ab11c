//! Max pooling on the CPU, forward and backward, one image-channel plane per task.
//!
//! The backward pass finds each window's maximum again from the saved input (the first one
//! in row-major window order, as burn does) instead of keeping an index tensor, and sends the
//! output gradient there. burn-flex's pooling under autodiff computed the indices in the
//! forward pass, which made vgg's 2×2 max pool cost as much as the convolution before it.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::output::filled;
use super::simd::multiversion;
use crate::geometry::{Geometry, input_col};

/// The common 2×2, stride 2, unpadded window gets straight-line code.
fn is_2x2(g: &Geometry) -> bool {
    g.kernel == [2, 2] && g.stride == [2, 2] && g.dilation == [1, 1] && g.pads == [0; 4]
}

/// `y = max over each window` (padding never wins: it is skipped, as TensorFlow does).
pub fn forward(x: &[f32], g: &Geometry) -> Vec<f32> {
    let [_, _, h, w] = g.input;
    let [oh, ow] = g.output_hw();
    if is_2x2(g) && oh * ow > 0 {
        let (plane, out) = (h * w, oh * ow);
        return filled(
            g.input[0] * g.input[1] * out,
            out,
            || (),
            |_, p, y| {
                let x = &x[p * plane..][..plane];
                // SAFETY: `plane_max_2x2` writes every element of `y` (whole rows of `ow`).
                unsafe { y.write_all(|y| plane_max_2x2(x, w, y, ow)) }
            },
        );
    }
    let (columns, stride) = (g.columns(), g.stride[1]);
    let planes: usize = g.input[0] * g.input[1];
    let mut y = vec![f32::NEG_INFINITY; planes * oh * ow];
    y.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each(|(y, x)| {
            for (out_row, in_row, _) in g.rows() {
                let y = &mut y[out_row * ow..][..ow];
                let x = &x[in_row * w..][..w];
                for &(_, first, end, offset) in &columns {
                    for (j, y) in y[first..end].iter_mut().enumerate() {
                        let v = x[input_col(first + j, stride, offset)];
                        if v > *y {
                            *y = v;
                        }
                    }
                }
            }
        });
    y
}

multiversion! {
    /// One plane of a 2×2, stride-2 max pool; `y` holds whole output rows of `ow`. Windows
    /// are walked as pairs of values (no indexing), which lets the loop vectorise.
    fn plane_max_2x2(x: &[f32], w: usize, y: &mut [MaybeUninit<f32>], ow: usize) {
        assert!(y.len().is_multiple_of(ow) && 2 * ow <= w, "pool: sizes differ");
        for (i, y) in y.chunks_exact_mut(ow).enumerate() {
            let (top, bottom) = (&x[2 * i * w..][..2 * ow], &x[(2 * i + 1) * w..][..2 * ow]);
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
            for (y, (t, b)) in y.iter_mut().zip(windows) {
                y.write((t[0].max(t[1])).max(b[0].max(b[1])));
            }
        }
    }
}

multiversion! {
    /// One plane of a 2×2, stride-2 max pool's input gradient, written in full: each
    /// window's first maximum (row-major) gets the window's gradient, the other three
    /// positions (and the last row or column a window never covers) zero. No zeroing pass,
    /// no scattered adds, and no branches: with random activations "is this one larger" is a
    /// coin flip a branch predictor loses half the time.
    fn plane_backward_2x2(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], dims: [usize; 4]) {
        let [h, w, oh, ow] = dims;
        assert!(x.len() == h * w && dx.len() == h * w && dy.len() == oh * ow, "pool: sizes differ");
        dx[2 * oh * w..].fill(MaybeUninit::new(0.0));
        let rows = x.chunks_exact(2 * w).zip(dx.chunks_exact_mut(2 * w));
        for ((x, dx), dy) in rows.zip(dy.chunks_exact(ow)) {
            let (top, bottom) = x.split_at(w);
            let (dx_top, dx_bottom) = dx.split_at_mut(w);
            let rows = [top, bottom];
            let done = wide_windows_backward(rows, dy, [&mut *dx_top, &mut *dx_bottom]);
            let (top, bottom) = (&top[2 * done..], &bottom[2 * done..]);
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
            let outputs = dx_top[2 * done..]
                .chunks_exact_mut(2)
                .zip(dx_bottom[2 * done..].chunks_exact_mut(2));
            for ((&g, (t, b)), (out_t, out_b)) in dy[done..].iter().zip(windows).zip(outputs) {
                let max = t[0].max(t[1]).max(b[0].max(b[1]));
                let k0 = t[0] == max;
                let k1 = !k0 && t[1] == max;
                let k2 = !k0 && !k1 && b[0] == max;
                let k3 = !(k0 || k1 || k2);
                let pick = |taken: bool| MaybeUninit::new(if taken { g } else { 0.0 });
                out_t[0] = pick(k0);
                out_t[1] = pick(k1);
                out_b[0] = pick(k2);
                out_b[1] = pick(k3);
            }
            if 2 * ow < w {
                dx_top[w - 1] = MaybeUninit::new(0.0);
                dx_bottom[w - 1] = MaybeUninit::new(0.0);
            }
        }
    }
}

/// A row pair's backward pass with AVX-512, 16 windows at a time (the last ones masked), where
/// the CPU and [`simd::level`](super::simd::level) allow it; returns how many windows it did
/// (0 or all: the scalar loop does the rest). Same choices and values as the scalar loop, NaN
/// included.
fn wide_windows_backward(rows: [&[f32]; 2], dy: &[f32], dx: [&mut [MaybeUninit<f32>]; 2]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() == super::simd::Level::Avx512 {
        let windows = dy.len();
        assert!(
            rows.iter().all(|r| r.len() >= 2 * windows)
                && dx.iter().all(|r| r.len() >= 2 * windows),
            "pool: rows shorter than their windows"
        );
        // SAFETY: the CPU has AVX-512 (`level()` never exceeds it); the lengths were checked.
        unsafe { avx512::backward_windows(rows, dy, dx) };
        return windows;
    }
    let _ = (rows, dy, dx);
    0
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// `f32::max` in 16 lanes: a NaN loses to a number.
    #[target_feature(enable = "avx512f")]
    fn max(a: __m512, b: __m512) -> __m512 {
        // `vmaxps` returns its second operand when either is NaN; put `a` back where `b` is.
        let m = _mm512_max_ps(a, b);
        _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(b, b), a)
    }

    /// The first `n` of 16 lanes.
    fn lanes(n: usize) -> __mmask16 {
        if n >= 16 { u16::MAX } else { (1u16 << n) - 1 }
    }

    /// Windows of a 2×2 max pool's backward pass 16 at a time: deinterleave each row pair
    /// into the four window positions, pick the first maximum, interleave the gradient back.
    /// The last group's loads and stores are masked to the windows that remain.
    ///
    /// # Safety
    /// `rows` and `dx` hold at least `2 · dy.len()` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn backward_windows(
        rows: [&[f32]; 2],
        dy: &[f32],
        dx: [&mut [MaybeUninit<f32>]; 2],
    ) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let [top, bottom] = rows;
        let [dx_top, dx_bottom] = dx;
        for j in (0..dy.len()).step_by(16) {
            let left = 2 * (dy.len() - j);
            let (first, second) = (lanes(left), lanes(left.saturating_sub(16)));
            // SAFETY (all masked reads and writes): lanes past `2 · dy.len()` values are masked
            // off, and masked-off lanes are never accessed.
            let pairs = |row: &[f32]| unsafe {
                let (a, b) = (
                    _mm512_maskz_loadu_ps(first, row.as_ptr().add(2 * j)),
                    _mm512_maskz_loadu_ps(second, row.as_ptr().add(2 * j + 16)),
                );
                (
                    _mm512_permutex2var_ps(a, even, b),
                    _mm512_permutex2var_ps(a, odd, b),
                )
            };
            let ((t0, t1), (b0, b1)) = (pairs(top), pairs(bottom));
            let m = max(max(t0, t1), max(b0, b1));
            let k0 = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(t0, m);
            let k1 = !k0 & _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(t1, m);
            let k2 = !(k0 | k1) & _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(b0, m);
            let k3 = !(k0 | k1 | k2);
            let g = unsafe { _mm512_maskz_loadu_ps(lanes(dy.len() - j), dy.as_ptr().add(j)) };
            let store = |row: &mut [MaybeUninit<f32>], at_0: __mmask16, at_1: __mmask16| unsafe {
                let (a, b) = (_mm512_maskz_mov_ps(at_0, g), _mm512_maskz_mov_ps(at_1, g));
                let out = row.as_mut_ptr().add(2 * j).cast::<f32>();
                _mm512_mask_storeu_ps(out, first, _mm512_permutex2var_ps(a, low, b));
                _mm512_mask_storeu_ps(out.add(16), second, _mm512_permutex2var_ps(a, high, b));
            };
            store(dx_top, k0, k1);
            store(dx_bottom, k2, k3);
        }
    }
}

/// `dx[argmax of each window] += dy`.
pub fn backward(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let [_, _, h, w] = g.input;
    let [oh, ow] = g.output_hw();
    let (columns, stride) = (g.columns(), g.stride[1]);
    if is_2x2(g) && !x.is_empty() && oh * ow > 0 {
        let (plane, out) = (h * w, oh * ow);
        return filled(
            x.len(),
            plane,
            || (),
            |_, p, dx| {
                let (x, dy) = (&x[p * plane..][..plane], &dy[p * out..][..out]);
                // SAFETY: `plane_backward_2x2` writes every element of `dx` (it checks the size).
                unsafe { dx.write_all(|dx| plane_backward_2x2(x, dy, dx, [h, w, oh, ow])) }
            },
        );
    }
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(h * w)
        .zip(x.par_chunks(h * w).zip(dy.par_chunks(oh * ow)))
        .for_each(|(dx, (x, dy))| {
            // Best value and its input index for each output column of the current row.
            let mut best = vec![(f32::NEG_INFINITY, usize::MAX); ow];
            let mut current_row = usize::MAX;
            let flush = |best: &mut Vec<(f32, usize)>, row: usize, dx: &mut [f32]| {
                for (j, (_, at)) in best.iter_mut().enumerate() {
                    if *at != usize::MAX {
                        dx[*at] += dy[row * ow + j];
                    }
                }
                best.fill((f32::NEG_INFINITY, usize::MAX));
            };
            for (out_row, in_row, _) in g.rows() {
                if out_row != current_row {
                    if current_row != usize::MAX {
                        flush(&mut best, current_row, dx);
                    }
                    current_row = out_row;
                }
                for &(_, first, end, offset) in &columns {
                    for (j, b) in best[first..end].iter_mut().enumerate() {
                        let at = in_row * w + input_col(first + j, stride, offset);
                        if x[at] > b.0 {
                            *b = (x[at], at);
                        }
                    }
                }
            }
            if current_row != usize::MAX {
                flush(&mut best, current_row, dx);
            }
        });
    dx
}
