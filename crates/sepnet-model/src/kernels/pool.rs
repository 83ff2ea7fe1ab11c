//! Max pooling on the CPU, forward and backward, one image-channel plane per task.
//!
//! The backward pass finds each window's maximum again from the saved input (the first one
//! in row-major window order, as burn does) instead of keeping an index tensor, and sends the
//! output gradient there. burn-flex's pooling under autodiff computed the indices in the
//! forward pass, which made vgg's 2×2 max pool cost as much as the convolution before it.

use rayon::prelude::*;

use super::geometry::{Geometry, input_col};
use super::simd::multiversion;

/// The common 2×2, stride 2, unpadded window gets straight-line code.
fn is_2x2(g: &Geometry) -> bool {
    g.kernel == [2, 2] && g.stride == [2, 2] && g.dilation == [1, 1] && g.pads == [0; 4]
}

/// The input index of the first maximum (row-major) of 2×2 window `(i, j)` of a plane `w`
/// wide. Branch-free: with random activations, "is this one larger" is a coin flip that a
/// branch predictor loses half the time, which had made this pooling 3× slower.
#[inline(always)]
fn argmax_2x2(x: &[f32], w: usize, i: usize, j: usize) -> usize {
    let top = 2 * i * w + 2 * j;
    let at = [top, top + 1, top + w, top + w + 1];
    let v = [x[at[0]], x[at[1]], x[at[2]], x[at[3]]];
    let max = v[0].max(v[1]).max(v[2].max(v[3]));
    let mut first = at[3];
    for k in (0..3).rev() {
        first = if v[k] == max { at[k] } else { first };
    }
    first
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

/// `dx[argmax of each window] += dy`.
pub fn backward(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let [_, _, h, w] = g.input;
    let [oh, ow] = g.output_hw();
    let (columns, stride) = (g.columns(), g.stride[1]);
    let mut dx = vec![0.0f32; x.len()];
    if is_2x2(g) {
        dx.par_chunks_mut(h * w)
            .zip(x.par_chunks(h * w).zip(dy.par_chunks(oh * ow)))
            .for_each(|(dx, (x, dy))| {
                for i in 0..oh {
                    for j in 0..ow {
                        dx[argmax_2x2(x, w, i, j)] += dy[i * ow + j];
                    }
                }
            });
        return dx;
    }
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
