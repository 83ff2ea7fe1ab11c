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

use super::geometry::{Geometry, input_col};

/// `Σ a·b` in eight independent lanes, so the compiler can vectorise it (a single running
/// sum is a dependency chain it may not reorder).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in a_chunks.zip(b_chunks) {
        for i in 0..8 {
            lanes[i] += a[i] * b[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Stride-1 planes laid out with the padded row pitch.
struct Wide {
    /// Padded input `[height + top + bottom, width + left + right]`.
    padded: [usize; 2],
    /// Length of a wide output: `(oh − 1)·pitch + ow`.
    len: usize,
    /// Offset of every kernel tap `(row, col)` into the padded plane, row-major.
    taps: Vec<usize>,
}

impl Wide {
    fn of(g: &Geometry) -> Option<Wide> {
        if g.stride != [1, 1] {
            return None;
        }
        let [_, _, h, w] = g.input;
        let [t, b, l, r] = g.pads;
        let padded = [h + t + b, w + l + r];
        let [oh, ow] = g.output_hw();
        let taps = (0..g.kernel[0])
            .flat_map(|a| (0..g.kernel[1]).map(move |c| (a, c)))
            .map(|(a, c)| a * g.dilation[0] * padded[1] + c * g.dilation[1])
            .collect();
        Some(Wide {
            padded,
            len: (oh - 1) * padded[1] + ow,
            taps,
        })
    }

    /// Copies plane `x [h, w]` into the zeroed padded scratch.
    fn pad(&self, x: &[f32], g: &Geometry, scratch: &mut [f32]) {
        let [_, _, h, w] = g.input;
        scratch.fill(0.0);
        for r in 0..h {
            let start = (r + g.pads[0]) * self.padded[1] + g.pads[2];
            scratch[start..start + w].copy_from_slice(&x[r * w..][..w]);
        }
    }

    /// Spreads an output plane `[oh, ow]` onto the wide layout (zeros in the extra columns).
    fn widen(&self, y: &[f32], g: &Geometry, wide: &mut [f32]) {
        let [oh, ow] = g.output_hw();
        wide.fill(0.0);
        for i in 0..oh {
            wide[i * self.padded[1]..][..ow].copy_from_slice(&y[i * ow..][..ow]);
        }
    }
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
    let stride = g.stride[1];
    let mut y = vec![0.0f32; g.output().iter().product()];
    y.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(plane, y)| {
            let (n, o) = (plane / c_out, plane % c_out);
            let x = &x[(n * c + o / g.multiplier) * h * w..][..h * w];
            let kernel = &weight[o * k_len..][..k_len];
            g.rows(|out_row, in_row, k_row| {
                let y = &mut y[out_row * ow..][..ow];
                let x = &x[in_row * w..][..w];
                for &(k_col, first, end, offset) in &columns {
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
            });
        });
    y
}

fn forward_wide(x: &[f32], weight: &[f32], g: &Geometry, wide: &Wide) -> Vec<f32> {
    let [_, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = wide.taps.len();
    let mut y = vec![0.0f32; g.output().iter().product()];
    let scratch = || {
        (
            vec![0.0f32; wide.padded[0] * wide.padded[1]],
            vec![0.0f32; wide.len],
        )
    };
    y.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each_init(scratch, |(padded, out), (plane, y)| {
            let (n, o) = (plane / c_out, plane % c_out);
            wide.pad(&x[(n * c + o / g.multiplier) * h * w..][..h * w], g, padded);
            out.fill(0.0);
            for (&tap, &wv) in wide.taps.iter().zip(&weight[o * k_len..][..k_len]) {
                for (o, x) in out.iter_mut().zip(&padded[tap..tap + wide.len]) {
                    *o += wv * x;
                }
            }
            for i in 0..oh {
                y[i * ow..][..ow].copy_from_slice(&out[i * wide.padded[1]..][..ow]);
            }
        });
    y
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
    let stride = g.stride[1];
    let mut dx = vec![0.0f32; g.input.iter().product()];
    dx.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(plane, dx)| {
            let (n, ci) = (plane / c, plane % c);
            for o in ci * g.multiplier..(ci + 1) * g.multiplier {
                let dy = &dy[(n * c_out + o) * oh * ow..][..oh * ow];
                let kernel = &weight[o * k_len..][..k_len];
                g.rows(|out_row, in_row, k_row| {
                    let dy = &dy[out_row * ow..][..ow];
                    let dx = &mut dx[in_row * w..][..w];
                    for &(k_col, first, end, offset) in &columns {
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
                });
            }
        });
    dx
}

fn backward_input_wide(weight: &[f32], dy: &[f32], g: &Geometry, wide: &Wide) -> Vec<f32> {
    let [_, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = wide.taps.len();
    let mut dx = vec![0.0f32; g.input.iter().product()];
    let scratch = || {
        (
            vec![0.0f32; wide.padded[0] * wide.padded[1]],
            vec![0.0f32; wide.len],
        )
    };
    dx.par_chunks_mut(h * w)
        .enumerate()
        .for_each_init(scratch, |(padded, grad), (plane, dx)| {
            let (n, ci) = (plane / c, plane % c);
            padded.fill(0.0);
            for o in ci * g.multiplier..(ci + 1) * g.multiplier {
                wide.widen(&dy[(n * c_out + o) * oh * ow..][..oh * ow], g, grad);
                for (&tap, &wv) in wide.taps.iter().zip(&weight[o * k_len..][..k_len]) {
                    for (p, d) in padded[tap..tap + wide.len].iter_mut().zip(grad.iter()) {
                        *p += wv * d;
                    }
                }
            }
            for r in 0..h {
                let start = (r + g.pads[0]) * wide.padded[1] + g.pads[2];
                dx[r * w..][..w].copy_from_slice(&padded[start..start + w]);
            }
        });
    dx
}

fn backward_weight_wide(x: &[f32], dy: &[f32], g: &Geometry, wide: &Wide) -> Vec<f32> {
    let [batch, c, h, w] = g.input;
    let [_, c_out, oh, ow] = g.output();
    let k_len = wide.taps.len();
    let mut dw = vec![0.0f32; c_out * k_len];
    let scratch = || {
        (
            vec![0.0f32; wide.padded[0] * wide.padded[1]],
            vec![0.0f32; wide.len],
        )
    };
    dw.par_chunks_mut(k_len)
        .enumerate()
        .for_each_init(scratch, |(padded, grad), (o, dw)| {
            for n in 0..batch {
                wide.pad(&x[(n * c + o / g.multiplier) * h * w..][..h * w], g, padded);
                wide.widen(&dy[(n * c_out + o) * oh * ow..][..oh * ow], g, grad);
                for (dw, &tap) in dw.iter_mut().zip(&wide.taps) {
                    let x = &padded[tap..tap + wide.len];
                    *dw += dot(grad, x);
                }
            }
        });
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
    let stride = g.stride[1];
    let mut dw = vec![0.0f32; c_out * k_len];
    dw.par_chunks_mut(k_len).enumerate().for_each(|(o, dw)| {
        for n in 0..batch {
            let x = &x[(n * c + o / g.multiplier) * h * w..][..h * w];
            let dy = &dy[(n * c_out + o) * oh * ow..][..oh * ow];
            g.rows(|out_row, in_row, k_row| {
                let dy = &dy[out_row * ow..][..ow];
                let x = &x[in_row * w..][..w];
                for &(k_col, first, end, offset) in &columns {
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
            });
        }
    });
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::{close, f64s, values};

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
