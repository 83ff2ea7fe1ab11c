//! The loops the float and the int8 executors share: gathering a convolution's windows into
//! rows (im2col), dot products, pooling. Plain, safe Rust the compiler vectorises: int8 only
//! has to evaluate a test split, not to win a benchmark.

use super::program::Window;

/// A convolution's geometry on one image.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    /// Output `[oh, ow]`.
    pub output: [usize; 2],
    /// Input channels per group.
    pub group_channels: usize,
    /// The window.
    pub window: Window,
}

impl Geometry {
    /// Values per row: input channels per group × kh × kw.
    pub fn row_len(&self) -> usize {
        self.group_channels * self.window.kernel[0] * self.window.kernel[1]
    }

    /// Rows: output pixels.
    pub fn rows(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Gathers group `g`'s windows of the image `x` (`[c, h, w]`) into `rows`, one row per
    /// output pixel, in the weights' `[in, kh, kw]` order; pixels outside the plane read `pad`
    /// (zero in float, the zero point in int8).
    pub fn im2col<T: Copy>(&self, x: &[T], g: usize, pad: T, rows: &mut Vec<T>) {
        let [_, h, w] = self.input;
        let Window {
            kernel: [kh, kw],
            stride,
            dilation,
            pads,
        } = self.window;
        rows.clear();
        for oy in 0..self.output[0] {
            for ox in 0..self.output[1] {
                for ci in g * self.group_channels..(g + 1) * self.group_channels {
                    let plane = &x[ci * h * w..(ci + 1) * h * w];
                    for ky in 0..kh {
                        let y = (oy * stride[0] + ky * dilation[0]).checked_sub(pads[0]);
                        for kx in 0..kw {
                            let xx = (ox * stride[1] + kx * dilation[1]).checked_sub(pads[1]);
                            rows.push(match (y, xx) {
                                (Some(y), Some(xx)) if y < h && xx < w => plane[y * w + xx],
                                _ => pad,
                            });
                        }
                    }
                }
            }
        }
    }
}

/// `Σ a·b` in f32, eight running sums (so the compiler can vectorise without reordering a
/// single sum).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// `Σ a·b` of int8 values in int32: exact (a row of up to 2¹⁷ products cannot overflow).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// Each window's real pixels (padding excluded) of channel plane `x` (`[h, w]`) as an
/// iterator per output pixel, handed to `reduce`; writes `reduce`'s results to `out`.
pub fn pool<T: Copy, U>(
    x: &[T],
    [h, w]: [usize; 2],
    window: &Window,
    out: &mut Vec<U>,
    mut reduce: impl FnMut(&mut dyn Iterator<Item = T>) -> U,
) {
    let [oh, ow] = window.output([h, w]);
    let Window {
        kernel: [kh, kw],
        stride,
        dilation,
        pads,
    } = *window;
    for oy in 0..oh {
        for ox in 0..ow {
            let mut pixels = (0..kh)
                .flat_map(|ky| (0..kw).map(move |kx| (ky, kx)))
                .filter_map(|(ky, kx)| {
                    let y = (oy * stride[0] + ky * dilation[0]).checked_sub(pads[0])?;
                    let xx = (ox * stride[1] + kx * dilation[1]).checked_sub(pads[1])?;
                    (y < h && xx < w).then(|| x[y * w + xx])
                });
            out.push(reduce(&mut pixels));
        }
    }
}
