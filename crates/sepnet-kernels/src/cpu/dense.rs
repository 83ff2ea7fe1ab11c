//! Full (one group) convolution on the CPU: im2col and one matrix product per image.
//!
//! Forward: `col = im2col(x[n])` (`[c·k_h·k_w, oh·ow]`), `y[n] = W · col` with the kernel as a
//! `[filters, c·k_h·k_w]` matrix. Backward: `dx[n] = col2im(Wᵀ · dy[n])` and
//! `dW = Σₙ dy[n] · im2col(x[n])ᵀ`, accumulated per thread and summed once. Both gradients
//! are the forward's matrix product transposed, so backward costs about twice the forward
//! (burn's generic path, a transposed convolution plus a convolution over swapped batch and
//! channel axes, cost 2.2–2.7×).

use rayon::prelude::*;

use super::dense_wide;
use super::gemm::{Matrix, Threads, matmul};
use super::output::filled;
use super::parallel::{few_images, sum_over_batch};
use super::simd::multiversion;
use super::wide::Wide;
use crate::geometry::{Geometry, input_col};

/// Rows of the unfolded image: one per input channel and kernel position.
fn col_rows(g: &Geometry) -> usize {
    g.input[1] * g.kernel[0] * g.kernel[1]
}

fn pixels_out(g: &Geometry) -> usize {
    let [oh, ow] = g.output_hw();
    oh * ow
}

multiversion! {
    /// Unfolds one image `[c, h, w]` into `col [c·k_h·k_w, oh·ow]`, zeros where a window leaves
    /// the image.
    fn im2col(x: &[f32], g: &Geometry, col: &mut [f32]) {
        let [_, c, h, w] = g.input;
        let [_, ow] = g.output_hw();
        let (p, [k_h, k_w]) = (pixels_out(g), g.kernel);
        let (columns, stride) = (g.columns(), g.stride[1]);
        col.fill(0.0);
        for ci in 0..c {
            let x = &x[ci * h * w..][..h * w];
            for (out_row, in_row, k_row) in g.rows() {
                let x = &x[in_row * w..][..w];
                for &(k_col, first, end, offset) in &columns {
                    let row = (ci * k_h + k_row) * k_w + k_col;
                    let dst = &mut col[row * p + out_row * ow..][..ow];
                    if stride == 1 {
                        let start = (first as isize + offset) as usize;
                        dst[first..end].copy_from_slice(&x[start..start + end - first]);
                    } else {
                        for (j, d) in dst[first..end].iter_mut().enumerate() {
                            *d = x[input_col(first + j, stride, offset)];
                        }
                    }
                }
            }
        }
    }
}

multiversion! {
    /// Adds `col [c·k_h·k_w, oh·ow]` back onto the image positions each entry was read from.
    fn col2im(col: &[f32], g: &Geometry, dx: &mut [f32]) {
        let [_, c, h, w] = g.input;
        let [_, ow] = g.output_hw();
        let (p, [k_h, k_w]) = (pixels_out(g), g.kernel);
        let (columns, stride) = (g.columns(), g.stride[1]);
        for ci in 0..c {
            let dx = &mut dx[ci * h * w..][..h * w];
            for (out_row, in_row, k_row) in g.rows() {
                let dx = &mut dx[in_row * w..][..w];
                for &(k_col, first, end, offset) in &columns {
                    let row = (ci * k_h + k_row) * k_w + k_col;
                    let src = &col[row * p + out_row * ow..][..ow];
                    if stride == 1 {
                        let start = (first as isize + offset) as usize;
                        let dx = &mut dx[start..start + end - first];
                        dx.iter_mut()
                            .zip(&src[first..end])
                            .for_each(|(d, s)| *d += s);
                    } else {
                        for (j, s) in src[first..end].iter().enumerate() {
                            dx[input_col(first + j, stride, offset)] += s;
                        }
                    }
                }
            }
        }
    }
}

/// The wide layout when one product per kernel tap ([`dense_wide`]) beats im2col: large
/// planes with many channels. Measured on VGG (batch 128, `bench --layers`, forward /
/// backward ms): 64 channels at 32×32 went 62.5 / 149.3 → 49.5 / 123.8 with it, but
/// 128 channels at 16×16 45.4 / 106.1 → 49.4 / 103.7, 256 at 8×8 39.2 / 104.3 → 64.2 /
/// 190.8 and the 3-channel input layer 5.1 / 17.6 → 9.2 / 20.6: with short rows or few
/// channels, nine thin products cost more than one thick one.
/// (The gradients' per-image products only: with fewer images than threads, one product
/// split across threads does better than nine. The forward pass instead splits an image's
/// filters across threads, see [`tap_products_pay_forward`].)
fn tap_products_pay(g: &Geometry) -> Option<Wide> {
    let large = |wide: &Wide| wide.len >= 1024 && g.input[1] >= 32;
    Wide::of(g).filter(|wide| large(wide) && !few_images(g.input[0]))
}

/// Whether [`forward`] takes the per-tap products: as [`tap_products_pay`], and also with
/// fewer images than threads, where the forward pass splits an image's filters across threads.
fn tap_products_pay_forward(g: &Geometry) -> Option<Wide> {
    Wide::of(g).filter(|wide| wide.len >= 1024 && g.input[1] >= 32)
}

/// `y[n] = W · im2col(x[n])`; `weight [filters, c, k_h, k_w]`.
pub fn forward(x: &[f32], weight: &[f32], g: &Geometry, filters: usize) -> Vec<f32> {
    if let Some(wide) = tap_products_pay_forward(g) {
        return dense_wide::forward(x, weight, g, filters, &wide);
    }
    let [batch, c, h, w] = g.input;
    let (rows, p) = (col_rows(g), pixels_out(g));
    let kernel = Matrix::row_major(weight, filters, rows);
    let len = batch * filters * p;
    if len == 0 {
        return Vec::new();
    }
    let image = c * h * w;
    filled(
        len,
        filters * p,
        || vec![0.0f32; rows * p],
        |col, n, y| {
            im2col(&x[n * image..][..image], g, col);
            let col = Matrix::row_major(col, rows, p);
            y.product(kernel, col, Threads::for_batch(batch))
        },
    )
}

/// `dx[n] = col2im(Wᵀ · dy[n])`.
pub fn backward_input(weight: &[f32], dy: &[f32], g: &Geometry, filters: usize) -> Vec<f32> {
    if let Some(wide) = tap_products_pay(g) {
        return dense_wide::backward_input(weight, dy, g, filters, &wide);
    }
    let [batch, c, h, w] = g.input;
    let (rows, p) = (col_rows(g), pixels_out(g));
    let kernel_t = Matrix::row_major(weight, filters, rows).t();
    let mut dx = vec![0.0f32; batch * c * h * w];
    if p == 0 {
        return dx;
    }
    dx.par_chunks_mut(c * h * w)
        .zip(dy.par_chunks(filters * p))
        .for_each_init(
            || vec![0.0f32; rows * p],
            |col, (dx, dy)| {
                matmul(col, false, kernel_t, Matrix::row_major(dy, filters, p));
                col2im(col, g, dx);
            },
        );
    dx
}

/// `dW = Σₙ dy[n] · im2col(x[n])ᵀ`, shaped `[filters, c, k_h, k_w]`.
pub fn backward_weight(x: &[f32], dy: &[f32], g: &Geometry, filters: usize) -> Vec<f32> {
    if let Some(wide) = tap_products_pay(g) {
        return dense_wide::backward_weight(x, dy, g, filters, &wide);
    }
    let [batch, c, h, w] = g.input;
    let (rows, p) = (col_rows(g), pixels_out(g));
    let size = filters * rows;
    if batch == 0 || p == 0 {
        return vec![0.0; size];
    }
    let (image, grad) = (c * h * w, filters * p);
    sum_over_batch(batch, size, |images| {
        let (mut dw, mut col) = (vec![0.0f32; size], vec![0.0f32; rows * p]);
        for (i, n) in images.enumerate() {
            im2col(&x[n * image..][..image], g, &mut col);
            let col_t = Matrix::row_major(&col, rows, p).t();
            let dy = Matrix::row_major(&dy[n * grad..][..grad], filters, p);
            matmul(&mut dw, i > 0, dy, col_t);
        }
        dw
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values::{close, f64s, values};

    fn geometry(
        input: [usize; 4],
        kernel: usize,
        stride: usize,
        dilation: usize,
        pads: [usize; 4],
    ) -> Geometry {
        Geometry {
            input,
            multiplier: 1,
            kernel: [kernel, kernel],
            stride: [stride, stride],
            dilation: [dilation, dilation],
            pads,
        }
    }

    /// Forward and both gradients against the definition, accumulated one multiply-add at a
    /// time: same and valid padding, stride 2 with TensorFlow's asymmetric padding, dilation,
    /// a single input channel, more images than threads; stride-1 cases also through the
    /// per-tap products.
    #[test]
    fn forward_and_gradients_match_the_definition() {
        let cases = [
            (geometry([2, 3, 8, 8], 3, 1, 1, [1, 1, 1, 1]), 4),
            (geometry([3, 2, 7, 7], 3, 2, 1, [1, 1, 1, 1]), 5),
            (geometry([1, 4, 8, 8], 3, 2, 1, [0, 1, 0, 1]), 3),
            (geometry([2, 1, 9, 9], 3, 1, 2, [2, 2, 2, 2]), 2),
            (geometry([5, 3, 6, 6], 5, 1, 1, [0, 0, 0, 0]), 2),
            // One image: the per-tap forward pass splits its filters across threads.
            (geometry([1, 3, 8, 8], 3, 1, 1, [1, 1, 1, 1]), 4),
        ];
        for (g, f) in cases {
            let [n, c, h, w] = g.input;
            let [oh, ow] = g.output_hw();
            let (k_h, k_w) = (g.kernel[0], g.kernel[1]);
            let x = values(n * c * h * w, 1);
            let wt = values(f * c * k_h * k_w, 2);
            let dy = values(n * f * oh * ow, 3);
            let (mut y, mut dx, mut dw) =
                (vec![0.0; dy.len()], vec![0.0; x.len()], vec![0.0; wt.len()]);
            for b in 0..n {
                for o in 0..f {
                    for i in 0..oh {
                        for j in 0..ow {
                            for ci in 0..c {
                                for ki in 0..k_h {
                                    for kj in 0..k_w {
                                        let r = (i * g.stride[0] + ki * g.dilation[0]) as isize
                                            - g.pads[0] as isize;
                                        let s = (j * g.stride[1] + kj * g.dilation[1]) as isize
                                            - g.pads[2] as isize;
                                        if r < 0 || s < 0 || r >= h as isize || s >= w as isize {
                                            continue;
                                        }
                                        let xi = ((b * c + ci) * h + r as usize) * w + s as usize;
                                        let wi = ((o * c + ci) * k_h + ki) * k_w + kj;
                                        let yi = ((b * f + o) * oh + i) * ow + j;
                                        y[yi] += wt[wi] * x[xi];
                                        dx[xi] += wt[wi] * dy[yi];
                                        dw[wi] += x[xi] * dy[yi];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            close(&forward(&x, &wt, &g, f), &f64s(&y), "y");
            close(&backward_input(&wt, &dy, &g, f), &f64s(&dx), "dx");
            close(&backward_weight(&x, &dy, &g, f), &f64s(&dw), "dw");
            // The per-tap products run only on large layers; check them on every stride-1 case.
            if let Some(wide) = Wide::of(&g) {
                let tap_y = dense_wide::forward(&x, &wt, &g, f, &wide);
                close(&tap_y, &f64s(&y), "tap-product y");
                let tap_dx = dense_wide::backward_input(&wt, &dy, &g, f, &wide);
                close(&tap_dx, &f64s(&dx), "tap-product dx");
                let tap_dw = dense_wide::backward_weight(&x, &dy, &g, f, &wide);
                close(&tap_dw, &f64s(&dw), "tap-product dw");
            }
        }
    }
}
