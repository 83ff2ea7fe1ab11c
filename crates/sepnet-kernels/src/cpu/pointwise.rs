//! Pointwise (1×1, stride 1) convolution on the CPU as matrix products, one image at a time:
//! `y[n] = W · x[n]` with `W [filters, channels]` and `x[n] [channels, h·w]`.
//!
//! Its backward is two more products per image, `dx[n] = Wᵀ · dy[n]` and
//! `dW = Σₙ dy[n] · x[n]ᵀ`; the weight gradient is accumulated per thread and summed once.
//!
//! When an image has few pixels (MobileNet's 4×4 and 2×2 planes), per-image products are
//! too thin for gemm: the batch then moves to a channel-major layout
//! `[channels, batch·pixels]` and each pass is one product over the whole batch,
//! multi-threaded inside gemm.
//! (burn's generic convolution backward made this layer's backward up to 35× its forward;
//! a broadcast `matmul` in autodiff materialises one `[filters, channels]` gradient per image
//! before summing, 512 MiB for MobileNet's last layer.)

use super::gemm::{Matrix, Threads, matmul, matmul_strided};
use super::layout::{channel_major, image_major};
use super::output::filled;
use super::parallel::sum_over_batch;

/// `[batch, channels, pixels]` in, `[batch, filters, pixels]` out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub channels: usize,
    /// Output channels.
    pub filters: usize,
    /// `h · w`.
    pub pixels: usize,
}

impl Dims {
    /// Whether to run one product over the whole batch in channel-major layout: planes under
    /// 8×8. Measured on MobileNet (batch 128, `bench --layers`, forward / backward ms): 512
    /// channels at 4×4 went 7.0 / 14.3 → 4.6 / 10.9 against a product per image, and at 2×2
    /// 10.3 / 13.5 → 4.6 / 10.1 against the earlier product per pixel over the batch.
    fn batched(&self) -> bool {
        self.pixels < 64
    }

    /// Columns of a channel-major matrix.
    fn columns(&self) -> usize {
        self.batch * self.pixels
    }
}

/// `y[n] = W · x[n]`.
pub fn forward(x: &[f32], weight: &[f32], d: Dims) -> Vec<f32> {
    let w = Matrix::row_major(weight, d.filters, d.channels);
    let len = d.batch * d.filters * d.pixels;
    if len == 0 {
        return Vec::new();
    }
    if d.batched() {
        let xt = channel_major(x, d.batch, d.channels, d.pixels);
        let xt = Matrix::row_major(&xt, d.channels, d.columns());
        let yt = filled(len, len, || (), |_, _, y| y.product(w, xt, Threads::Gemm));
        return image_major(&yt, d.batch, d.filters, d.pixels);
    }
    let image = d.channels * d.pixels;
    filled(
        len,
        d.filters * d.pixels,
        || (),
        |_, n, y| {
            let x = Matrix::row_major(&x[n * image..][..image], d.channels, d.pixels);
            y.product(w, x, Threads::for_batch(d.batch))
        },
    )
}

/// `dx[n] = Wᵀ · dy[n]`.
pub fn backward_input(weight: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    let w_t = Matrix::row_major(weight, d.filters, d.channels).t();
    let len = d.batch * d.channels * d.pixels;
    if len == 0 {
        return Vec::new();
    }
    if d.batched() {
        let dyt = channel_major(dy, d.batch, d.filters, d.pixels);
        let dyt = Matrix::row_major(&dyt, d.filters, d.columns());
        let dxt = filled(
            len,
            len,
            || (),
            |_, _, dx| dx.product(w_t, dyt, Threads::Gemm),
        );
        return image_major(&dxt, d.batch, d.channels, d.pixels);
    }
    let grad = d.filters * d.pixels;
    filled(
        len,
        d.channels * d.pixels,
        || (),
        |_, n, dx| {
            let dy = Matrix::row_major(&dy[n * grad..][..grad], d.filters, d.pixels);
            dx.product(w_t, dy, Threads::for_batch(d.batch))
        },
    )
}

/// `dW = Σₙ dy[n] · x[n]ᵀ`: each thread sums its share of the images, then the shares add.
pub fn backward_weight(x: &[f32], dy: &[f32], d: Dims) -> Vec<f32> {
    let size = d.filters * d.channels;
    if d.batch == 0 || d.pixels == 0 {
        return vec![0.0; size];
    }
    if d.batched() {
        let xt = channel_major(x, d.batch, d.channels, d.pixels);
        let dyt = channel_major(dy, d.batch, d.filters, d.pixels);
        let xt_t = Matrix::row_major(&xt, d.channels, d.columns()).t();
        let dyt = Matrix::row_major(&dyt, d.filters, d.columns());
        let mut dw = vec![0.0f32; size];
        matmul_strided(&mut dw, [d.channels, 1], false, dyt, xt_t, true);
        return dw;
    }
    let (image, grad) = (d.channels * d.pixels, d.filters * d.pixels);
    sum_over_batch(d.batch, size, |images| {
        let mut dw = vec![0.0f32; size];
        for (i, n) in images.enumerate() {
            let x_t = Matrix::row_major(&x[n * image..][..image], d.channels, d.pixels).t();
            let dy = Matrix::row_major(&dy[n * grad..][..grad], d.filters, d.pixels);
            matmul(&mut dw, i > 0, dy, x_t);
        }
        dw
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values::{close, f64s, values};

    /// Shape table covering both paths, per image (64 pixels and more) and channel-major over
    /// the batch (fewer pixels): one image, several, one pixel, wide and narrow layers.
    const CASES: [Dims; 6] = [
        Dims {
            batch: 2,
            channels: 3,
            filters: 5,
            pixels: 70,
        },
        Dims {
            batch: 1,
            channels: 3,
            filters: 5,
            pixels: 7,
        },
        Dims {
            batch: 5,
            channels: 8,
            filters: 4,
            pixels: 16,
        },
        Dims {
            batch: 3,
            channels: 16,
            filters: 32,
            pixels: 1,
        },
        Dims {
            batch: 9,
            channels: 2,
            filters: 3,
            pixels: 4,
        },
        Dims {
            batch: 40,
            channels: 6,
            filters: 7,
            pixels: 1,
        },
    ];

    #[test]
    fn forward_and_gradients_match_the_definition() {
        for d in CASES {
            let x = values(d.batch * d.channels * d.pixels, 1);
            let w = values(d.filters * d.channels, 2);
            let dy = values(d.batch * d.filters * d.pixels, 3);
            let (mut y, mut dx, mut dw) =
                (vec![0.0; dy.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
            for n in 0..d.batch {
                for f in 0..d.filters {
                    for c in 0..d.channels {
                        for p in 0..d.pixels {
                            let xi = (n * d.channels + c) * d.pixels + p;
                            let yi = (n * d.filters + f) * d.pixels + p;
                            let wi = f * d.channels + c;
                            y[yi] += w[wi] * x[xi];
                            dx[xi] += w[wi] * dy[yi];
                            dw[wi] += dy[yi] * x[xi];
                        }
                    }
                }
            }
            close(&forward(&x, &w, d), &f64s(&y), "y");
            close(&backward_input(&w, &dy, d), &f64s(&dx), "dx");
            close(&backward_weight(&x, &dy, d), &f64s(&dw), "dw");
        }
    }
}
