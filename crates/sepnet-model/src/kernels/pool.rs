//! Max pooling on the CPU, forward and backward, one image-channel plane per task.
//!
//! The backward pass finds each window's maximum again from the saved input (the first one
//! in row-major window order, as burn does) instead of keeping an index tensor, and sends the
//! output gradient there. burn-flex's pooling under autodiff computed the indices in the
//! forward pass, which made vgg's 2×2 max pool cost as much as the convolution before it.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::geometry::{Geometry, input_col};
use super::output::filled;
use super::simd::multiversion;

/// The common 2×2, stride 2, unpadded window gets straight-line code.
fn is_2x2(g: &Geometry) -> bool {
    g.kernel == [2, 2] && g.stride == [2, 2] && g.dilation == [1, 1] && g.pads == [0; 4]
}

/// The maximum of 2×2 window `(i, j)`.
#[inline(always)]
fn max_2x2(x: &[f32], w: usize, i: usize, j: usize) -> f32 {
    let top = 2 * i * w + 2 * j;
    (x[top].max(x[top + 1])).max(x[top + w].max(x[top + w + 1]))
}

/// `y = max over each window` (padding never wins: it is skipped, as TensorFlow does).
pub fn forward(x: &[f32], g: &Geometry) -> Vec<f32> {
    let [_, _, h, w] = g.input;
    let [oh, ow] = g.output_hw();
    if is_2x2(g) {
        let mut y = vec![0.0f32; g.input[0] * g.input[1] * oh * ow];
        y.par_chunks_mut(oh * ow)
            .zip(x.par_chunks(h * w))
            .for_each(|(y, x)| plane_max_2x2(x, w, y, ow));
        return y;
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
    /// One plane of a 2×2, stride-2 max pool; `y` holds whole output rows of `ow`.
    fn plane_max_2x2(x: &[f32], w: usize, y: &mut [f32], ow: usize) {
        for (i, y) in y.chunks_exact_mut(ow).enumerate() {
            for (j, y) in y.iter_mut().enumerate() {
                *y = max_2x2(x, w, i, j);
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
        for r in 2 * oh..h {
            dx[r * w..][..w].fill(MaybeUninit::new(0.0));
        }
        for i in 0..oh {
            let (top, bottom) = (2 * i * w, (2 * i + 1) * w);
            for j in 0..ow {
                let (a, b) = (top + 2 * j, bottom + 2 * j);
                let v = [x[a], x[a + 1], x[b], x[b + 1]];
                let max = v[0].max(v[1]).max(v[2].max(v[3]));
                let first = [v[0] == max, v[1] == max, v[2] == max];
                let k0 = first[0];
                let k1 = !k0 && first[1];
                let k2 = !k0 && !k1 && first[2];
                let k3 = !(k0 || k1 || k2);
                let g = dy[i * ow + j];
                let pick = |taken: bool| MaybeUninit::new(if taken { g } else { 0.0 });
                dx[a] = pick(k0);
                dx[a + 1] = pick(k1);
                dx[b] = pick(k2);
                dx[b + 1] = pick(k3);
            }
            if 2 * ow < w {
                dx[top + w - 1] = MaybeUninit::new(0.0);
                dx[bottom + w - 1] = MaybeUninit::new(0.0);
            }
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
