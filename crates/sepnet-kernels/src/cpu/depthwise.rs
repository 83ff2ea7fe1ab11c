//! Depthwise convolution on the CPU: forward, input gradient and weight gradient, written for
//! NCHW `f32` slices. Each works one image-channel plane at a time (a plane of a CIFAR layer is
//! a few KiB and stays in L1), parallel over planes with rayon, and walks the kernel as
//! row-by-row multiply-adds whose valid column range is computed once, so the inner loops have
//! no bounds tests and vectorise at stride 1.
//!
//! At stride 1 (most depthwise layers) a faster formulation applies: the plane is copied into
//! a zero-padded scratch plane, and the output is computed "wide", with the padded row pitch,
//! so each kernel tap is one multiply-add over the whole plane (`k_h·k_w` long vector loops
//! per plane instead of `k_h·k_w` short ones per output row; MobileNet's 4×4 planes went from
//! rows of 4 to one loop of 22). The two extra columns per row are computed and dropped.
//!
//! burn's generic backward for a grouped convolution builds the weight gradient from a
//! convolution per group and the input gradient from a transposed convolution; these direct
//! loops do the same arithmetic without the reshuffling.

use rayon::prelude::*;

use super::output::filled;
use super::simd::multiversion;
use super::wide::Wide;
use crate::geometry::{Column, Geometry, input_col};

/// `Σ a·b` in sixteen independent lanes, so the compiler can vectorise it (a single running
/// sum is a dependency chain it may not reorder). The element-wise form of the lane loop is
/// what LLVM turns into one AVX-512 multiply and add per chunk.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let (a_chunks, b_chunks) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in a_chunks.zip(b_chunks) {
        for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += a * b;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `y[n, o] = Σ_k w[o, k] · x[n, o / m, window(k)]`.
pub fn forward(x: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
    if let Some(wide) = Wide::of(g) {
        return forward_wide(x, weight, g, &wide);
    }
    let [_, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = g.kernel[0] * g.kernel[1];
    let columns = g.columns();
    let mut y = vec![0.0f32; g.output().iter().product()];
    y.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(plane, y)| {
            let (n, o) = (plane / c_out, plane % c_out);
            let x = &x[(n * c + o / g.multiplier) * h * w..][..h * w];
            plane_forward(g, &columns, x, &weight[o * k_len..][..k_len], y);
        });
    y
}

multiversion! {
    /// One output plane, row by row: each kernel tap adds `w · x` over its valid columns.
    fn plane_forward(g: &Geometry, columns: &[Column], x: &[f32], kernel: &[f32], y: &mut [f32]) {
        let ([_, _, _, w], [_, ow], stride) = (g.input, g.output_hw(), g.stride[1]);
        for (out_row, in_row, k_row) in g.rows() {
            let y = &mut y[out_row * ow..][..ow];
            let x = &x[in_row * w..][..w];
            for &(k_col, first, end, offset) in columns {
                let wv = kernel[k_row * g.kernel[1] + k_col];
                if stride == 1 {
                    let x = &x[(first as isize + offset) as usize..][..end - first];
                    for (y, x) in y[first..end].iter_mut().zip(x) {
                        *y += wv * x;
                    }
                } else {
                    for (j, y) in y[first..end].iter_mut().enumerate() {
                        *y += wv * x[input_col(first + j, stride, offset)];
                    }
                }
            }
        }
    }
}

fn forward_wide(x: &[f32], weight: &[f32], g: &Geometry, wide: &Wide) -> Vec<f32> {
    let [_, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = wide.taps.len();
    let len = g.output().iter().product();
    if len == 0 {
        return Vec::new();
    }
    filled(
        len,
        oh * ow,
        || wide.scratch(),
        |(padded, out), plane, y| {
            let (n, o) = (plane / c_out, plane % c_out);
            wide.pad(&x[(n * c + o / g.multiplier) * h * w..][..h * w], g, padded);
            wide_taps(&wide.taps, &weight[o * k_len..][..k_len], padded, out);
            y.rows_from(out, wide.padded[1], ow)
        },
    )
}

multiversion! {
    /// `out = Σ_k kernel[k] · padded[taps[k]..]`: the whole wide plane, one tap at a time.
    pub(super) fn wide_taps(taps: &[usize], kernel: &[f32], padded: &[f32], out: &mut [f32]) {
        let len = out.len();
        let (Some((&first, taps)), Some((&w0, kernel))) = (taps.split_first(), kernel.split_first())
        else {
            return out.fill(0.0);
        };
        for (o, x) in out.iter_mut().zip(&padded[first..first + len]) {
            *o = w0 * x;
        }
        for (&tap, &wv) in taps.iter().zip(kernel) {
            for (o, x) in out.iter_mut().zip(&padded[tap..tap + len]) {
                *o += wv * x;
            }
        }
    }
}

multiversion! {
    /// `padded[taps[k]..] += kernel[k] · grad` for every tap: a wide plane's input gradient.
    fn wide_taps_transposed(taps: &[usize], kernel: &[f32], grad: &[f32], padded: &mut [f32]) {
        let len = grad.len();
        for (&tap, &wv) in taps.iter().zip(kernel) {
            for (p, d) in padded[tap..tap + len].iter_mut().zip(grad) {
                *p += wv * d;
            }
        }
    }
}

multiversion! {
    /// `dw[k] += grad · padded[taps[k]..]` for every tap: a wide plane's weight gradient.
    fn wide_taps_dot(taps: &[usize], grad: &[f32], padded: &[f32], dw: &mut [f32]) {
        for (dw, &tap) in dw.iter_mut().zip(taps) {
            *dw += dot(grad, &padded[tap..tap + grad.len()]);
        }
    }
}

/// `dx[n, c] = Σ_{o of c} Σ_k w[o, k] · dy[n, o]` scattered back through each window.
pub fn backward_input(weight: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    if let Some(wide) = Wide::of(g) {
        return backward_input_wide(weight, dy, g, &wide);
    }
    let [_, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = g.kernel[0] * g.kernel[1];
    let columns = g.columns();
    let mut dx = vec![0.0f32; g.input.iter().product()];
    dx.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(plane, dx)| {
            let (n, ci) = (plane / c, plane % c);
            for o in ci * g.multiplier..(ci + 1) * g.multiplier {
                let dy = &dy[(n * c_out + o) * oh * ow..][..oh * ow];
                plane_backward_input(g, &columns, dy, &weight[o * k_len..][..k_len], dx);
            }
        });
    dx
}

multiversion! {
    /// Adds one output plane's gradient into its input plane's, row by row.
    fn plane_backward_input(g: &Geometry, columns: &[Column], dy: &[f32], kernel: &[f32], dx: &mut [f32]) {
        let ([_, _, _, w], [_, ow], stride) = (g.input, g.output_hw(), g.stride[1]);
        for (out_row, in_row, k_row) in g.rows() {
            let dy = &dy[out_row * ow..][..ow];
            let dx = &mut dx[in_row * w..][..w];
            for &(k_col, first, end, offset) in columns {
                let wv = kernel[k_row * g.kernel[1] + k_col];
                if stride == 1 {
                    let dx = &mut dx[(first as isize + offset) as usize..][..end - first];
                    for (dx, dy) in dx.iter_mut().zip(&dy[first..end]) {
                        *dx += wv * dy;
                    }
                } else {
                    for (j, dy) in dy[first..end].iter().enumerate() {
                        dx[input_col(first + j, stride, offset)] += wv * dy;
                    }
                }
            }
        }
    }
}

fn backward_input_wide(weight: &[f32], dy: &[f32], g: &Geometry, wide: &Wide) -> Vec<f32> {
    let [_, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = wide.taps.len();
    let len = g.input.iter().product();
    if len == 0 {
        return Vec::new();
    }
    let interior = g.pads[0] * wide.padded[1] + g.pads[2];
    filled(
        len,
        h * w,
        || wide.scratch(),
        |(padded, grad), plane, dx| {
            let (n, ci) = (plane / c, plane % c);
            padded.fill(0.0);
            for o in ci * g.multiplier..(ci + 1) * g.multiplier {
                wide.widen(&dy[(n * c_out + o) * oh * ow..][..oh * ow], g, grad);
                let kernel = &weight[o * k_len..][..k_len];
                wide_taps_transposed(&wide.taps, kernel, grad, padded);
            }
            dx.rows_from(&padded[interior..], wide.padded[1], w)
        },
    )
}

fn backward_weight_wide(x: &[f32], dy: &[f32], g: &Geometry, wide: &Wide) -> Vec<f32> {
    let [batch, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = wide.taps.len();
    let mut dw = vec![0.0f32; c_out * k_len];
    dw.par_chunks_mut(k_len).enumerate().for_each_init(
        || wide.scratch(),
        |(padded, grad), (o, dw)| {
            for n in 0..batch {
                wide.pad(&x[(n * c + o / g.multiplier) * h * w..][..h * w], g, padded);
                wide.widen(&dy[(n * c_out + o) * oh * ow..][..oh * ow], g, grad);
                wide_taps_dot(&wide.taps, grad, padded, dw);
            }
        },
    );
    dw
}

/// `dw[o, k] = Σ_n Σ_window dy[n, o] · x[n, o / m, window(k)]`, one output channel per task.
pub fn backward_weight(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    if let Some(wide) = Wide::of(g) {
        return backward_weight_wide(x, dy, g, &wide);
    }
    let [batch, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = g.kernel[0] * g.kernel[1];
    let columns = g.columns();
    let mut dw = vec![0.0f32; c_out * k_len];
    dw.par_chunks_mut(k_len).enumerate().for_each(|(o, dw)| {
        for n in 0..batch {
            let x = &x[(n * c + o / g.multiplier) * h * w..][..h * w];
            let dy = &dy[(n * c_out + o) * oh * ow..][..oh * ow];
            plane_backward_weight(g, &columns, x, dy, dw);
        }
    });
    dw
}

multiversion! {
    /// Adds one plane pair's contribution to a channel's kernel gradient, row by row.
    fn plane_backward_weight(g: &Geometry, columns: &[Column], x: &[f32], dy: &[f32], dw: &mut [f32]) {
        let ([_, _, _, w], [_, ow], stride) = (g.input, g.output_hw(), g.stride[1]);
        for (out_row, in_row, k_row) in g.rows() {
            let dy = &dy[out_row * ow..][..ow];
            let x = &x[in_row * w..][..w];
            for &(k_col, first, end, offset) in columns {
                let sum: f32 = if stride == 1 {
                    let x = &x[(first as isize + offset) as usize..][..end - first];
                    dot(&dy[first..end], x)
                } else {
                    dy[first..end]
                        .iter()
                        .enumerate()
                        .map(|(j, d)| d * x[input_col(first + j, stride, offset)])
                        .sum()
                };
                dw[k_row * g.kernel[1] + k_col] += sum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values::{close, f64s, values};

    /// The definition, one multiply-add at a time.
    fn reference(x: &[f32], weight: &[f32], g: &Geometry) -> Vec<f32> {
        let [n, c, h, w] = g.input;
        let [_, c_out, oh, ow] = g.output();
        let mut y = vec![0.0; n * c_out * oh * ow];
        for b in 0..n {
            for o in 0..c_out {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = 0.0;
                        for ki in 0..g.kernel[0] {
                            for kj in 0..g.kernel[1] {
                                let r = (i * g.stride[0] + ki * g.dilation[0]) as isize
                                    - g.pads[0] as isize;
                                let s = (j * g.stride[1] + kj * g.dilation[1]) as isize
                                    - g.pads[2] as isize;
                                if r < 0 || s < 0 || r >= h as isize || s >= w as isize {
                                    continue;
                                }
                                let xv = x[((b * c + o / g.multiplier) * h + r as usize) * w
                                    + s as usize];
                                acc += weight[(o * g.kernel[0] + ki) * g.kernel[1] + kj] * xv;
                            }
                        }
                        y[((b * c_out + o) * oh + i) * ow + j] = acc;
                    }
                }
            }
        }
        y
    }

    /// Shape table: odd and even sizes, stride 1 and 2, dilation, asymmetric (TF `same`)
    /// padding, a kernel wider than tall, multiplier 1 and 2.
    const CASES: [Geometry; 6] = [
        Geometry {
            input: [2, 3, 8, 8],
            multiplier: 1,
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            pads: [1, 1, 1, 1],
        },
        Geometry {
            input: [2, 3, 7, 7],
            multiplier: 1,
            kernel: [3, 3],
            stride: [2, 2],
            dilation: [1, 1],
            pads: [1, 1, 1, 1],
        },
        Geometry {
            input: [1, 4, 8, 8],
            multiplier: 1,
            kernel: [3, 3],
            stride: [2, 2],
            dilation: [1, 1],
            pads: [0, 1, 0, 1],
        },
        Geometry {
            input: [2, 2, 9, 6],
            multiplier: 2,
            kernel: [3, 5],
            stride: [1, 1],
            dilation: [1, 1],
            pads: [0, 0, 2, 2],
        },
        Geometry {
            input: [1, 3, 10, 10],
            multiplier: 1,
            kernel: [3, 3],
            stride: [1, 2],
            dilation: [2, 2],
            pads: [2, 2, 2, 1],
        },
        Geometry {
            input: [3, 2, 5, 5],
            multiplier: 3,
            kernel: [5, 5],
            stride: [1, 1],
            dilation: [1, 1],
            pads: [0, 0, 0, 0],
        },
    ];

    #[test]
    fn forward_matches_the_definition() {
        for g in CASES {
            let x = values(g.input.iter().product(), 1);
            let w = values(g.weight().iter().product(), 2);
            close(&forward(&x, &w, &g), &f64s(&reference(&x, &w, &g)), "y");
        }
    }

    /// Gradients of `L = Σ y · dy` by the chain rule on the definition: `∂L/∂x` and `∂L/∂w`
    /// are linear in the reference convolution, so probing with one-hot inputs/weights
    /// recovers them exactly.
    #[test]
    fn gradients_match_the_definition() {
        for g in CASES {
            let x = values(g.input.iter().product(), 3);
            let w = values(g.weight().iter().product(), 4);
            let dy = values(g.output().iter().product(), 5);
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
            let dx = backward_input(&w, &dy, &g);
            let expected_dx: Vec<f32> = (0..x.len())
                .map(|i| {
                    let mut e = vec![0.0; x.len()];
                    e[i] = 1.0;
                    dot(&reference(&e, &w, &g), &dy)
                })
                .collect();
            close(&dx, &f64s(&expected_dx), "dx");
            let dw = backward_weight(&x, &dy, &g);
            let expected_dw: Vec<f32> = (0..w.len())
                .map(|i| {
                    let mut e = vec![0.0; w.len()];
                    e[i] = 1.0;
                    dot(&reference(&x, &e, &g), &dy)
                })
                .collect();
            close(&dw, &f64s(&expected_dw), "dw");
        }
    }
}
