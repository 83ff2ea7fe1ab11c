//! Stride-1 full convolutions without im2col: one matrix product per kernel tap on padded
//! ("wide") planes.
//!
//! im2col copies every input value `k_h·k_w` times into a `[c·k_h·k_w, pixels]` matrix per
//! image (2.3 MB for VGG's 64-channel 32×32 layer, beyond a core's L2), which the product then
//! reads back. Here an image is padded once (`[c, padded plane]`, about its own size) and tap
//! `t` at offset `o_t` adds `W_t · X_pad[:, o_t .. o_t + len]` to the wide output: the
//! shifted view is read in place, and the image, its padded copy and the output stay in L2.
//!
//! - forward: `Y_wide = Σ_t W_t · X_pad[:, o_t..]`, then the valid columns are kept;
//! - input gradient: `dX_pad[:, o_t..] += W_tᵀ · dY_wide`, then the interior is kept;
//! - weight gradient: `dW_t += dY_wide · X_pad[:, o_t..]ᵀ`, with zeros in `dY_wide`'s extra
//!   columns so they contribute nothing.

use std::ops::Range;

use super::gemm::{Matrix, matmul_strided};
use super::output::filled;
use super::parallel::{few_images, sum_over_batch};
use super::wide::Wide;
use crate::geometry::Geometry;

/// Sizes shared by the three passes.
struct Plan<'a> {
    wide: &'a Wide,
    g: &'a Geometry,
    filters: usize,
    /// Channels.
    c: usize,
    /// A padded input plane, `padded[0]·padded[1]`.
    plane: usize,
    /// A wide output plane, `oh·pitch` (rows of the padded pitch).
    out_plane: usize,
}

impl<'a> Plan<'a> {
    fn new(wide: &'a Wide, g: &'a Geometry, filters: usize) -> Plan<'a> {
        Plan {
            wide,
            g,
            filters,
            c: g.input[1],
            plane: wide.padded[0] * wide.padded[1],
            out_plane: g.output_hw()[0] * wide.padded[1],
        }
    }

    /// Kernel tap `t` of `weight [f, c, k_h, k_w]` as an `[f, c]` view.
    fn tap(&self, weight: &'a [f32], t: usize) -> Matrix<'a> {
        self.tap_of(weight, t, 0..self.filters)
    }

    /// Kernel tap `t` of the filters `filters` as a `[filters.len(), c]` view.
    fn tap_of(&self, weight: &'a [f32], t: usize, filters: Range<usize>) -> Matrix<'a> {
        let k_len = self.wide.taps.len();
        Matrix {
            data: &weight[filters.start * self.c * k_len + t..],
            rows: filters.len(),
            cols: self.c,
            row_stride: self.c * k_len,
            col_stride: k_len,
        }
    }

    /// The padded image from tap `t`'s offset on: a `[c, len]` view.
    fn shifted<'b>(&self, xp: &'b [f32], t: usize) -> Matrix<'b> {
        Matrix {
            data: &xp[self.wide.taps[t]..],
            rows: self.c,
            cols: self.wide.len,
            row_stride: self.plane,
            col_stride: 1,
        }
    }

    /// The wide output gradient as an `[f, len]` view.
    fn wide_grad<'b>(&self, dyw: &'b [f32]) -> Matrix<'b> {
        Matrix {
            data: dyw,
            rows: self.filters,
            cols: self.wide.len,
            row_stride: self.out_plane,
            col_stride: 1,
        }
    }

    /// Pads every channel of one image `[c, h, w]` into `xp [c, plane]`.
    fn pad_image(&self, x: &[f32], xp: &mut [f32]) {
        let [_, _, h, w] = self.g.input;
        for (x, xp) in x.chunks_exact(h * w).zip(xp.chunks_exact_mut(self.plane)) {
            self.wide.pad(x, self.g, xp);
        }
    }

    /// Spreads one image's output gradient `[f, oh, ow]` onto `dyw [f, out_plane]`.
    fn widen_image(&self, dy: &[f32], dyw: &mut [f32]) {
        let [oh, ow] = self.g.output_hw();
        for (dy, dyw) in dy
            .chunks_exact(oh * ow)
            .zip(dyw.chunks_exact_mut(self.out_plane))
        {
            self.wide.widen(dy, self.g, dyw);
        }
    }
}

/// `y[n] = Σ_t W_t · X_pad[n][:, o_t..]`, valid columns kept. With fewer images than threads
/// (batch-1 inference) each thread takes an equal share of an image's filters, with products
/// of its own: gemm splitting each of the nine products across threads ran them at a third of
/// the speed of one image per thread (vgg-full's 64→64 layer at 32×32: 1.07 ms for one image,
/// 0.78 ms for two).
pub fn forward(x: &[f32], weight: &[f32], g: &Geometry, filters: usize, wide: &Wide) -> Vec<f32> {
    let p = Plan::new(wide, g, filters);
    let [batch, c, h, w] = g.input;
    let [oh, ow] = g.output_hw();
    let len = batch * filters * oh * ow;
    if len == 0 || c == 0 {
        return vec![0.0; len];
    }
    let threads = rayon::current_num_threads();
    let shares = if few_images(batch) && filters.is_multiple_of(threads) {
        threads
    } else {
        1
    };
    let share = filters / shares;
    let scratch = || (vec![0.0f32; c * p.plane], vec![0.0f32; share * p.out_plane]);
    filled(len, share * oh * ow, scratch, |(xp, yw), i, y| {
        let (n, first) = (i / shares, (i % shares) * share);
        p.pad_image(&x[n * c * h * w..][..c * h * w], xp);
        let parallel = few_images(batch) && shares == 1;
        for t in 0..wide.taps.len() {
            let (w_t, xs) = (p.tap_of(weight, t, first..first + share), p.shifted(xp, t));
            matmul_strided(yw, [p.out_plane, 1], t > 0, w_t, xs, parallel);
        }
        // Filter planes of `oh` rows at the padded pitch: one uniform run of rows.
        y.rows_from(yw, wide.padded[1], ow)
    })
}

/// `dx[n] = interior of Σ_t (dX_pad[:, o_t..] += W_tᵀ · dY_wide[n])`.
pub fn backward_input(
    weight: &[f32],
    dy: &[f32],
    g: &Geometry,
    filters: usize,
    wide: &Wide,
) -> Vec<f32> {
    let p = Plan::new(wide, g, filters);
    let [_, c, h, w] = g.input;
    let [oh, ow] = g.output_hw();
    let len = g.input.iter().product();
    if len == 0 || filters == 0 || oh * ow == 0 {
        return vec![0.0; len];
    }
    let interior = g.pads[0] * wide.padded[1] + g.pads[2];
    let scratch = || {
        (
            vec![0.0f32; filters * p.out_plane],
            vec![0.0f32; c * p.plane],
        )
    };
    filled(len, c * h * w, scratch, |(dyw, dxp), n, dx| {
        p.widen_image(&dy[n * filters * oh * ow..][..filters * oh * ow], dyw);
        dxp.fill(0.0);
        for (t, &tap) in wide.taps.iter().enumerate() {
            let w_t = p.tap(weight, t).t();
            matmul_strided(
                &mut dxp[tap..],
                [p.plane, 1],
                true,
                w_t,
                p.wide_grad(dyw),
                false,
            );
        }
        let pitches = [p.plane, wide.padded[1]];
        dx.planes_from(&dxp[interior..], pitches, [h, w])
    })
}

/// `dW_t = Σ_n dY_wide[n] · X_pad[n][:, o_t..]ᵀ`, summed per thread, then in image order.
pub fn backward_weight(
    x: &[f32],
    dy: &[f32],
    g: &Geometry,
    filters: usize,
    wide: &Wide,
) -> Vec<f32> {
    let p = Plan::new(wide, g, filters);
    let [batch, c, h, w] = g.input;
    let [oh, ow] = g.output_hw();
    let k_len = wide.taps.len();
    let size = filters * c * k_len;
    if batch == 0 || oh * ow == 0 {
        return vec![0.0; size];
    }
    sum_over_batch(batch, size, |images| {
        let mut dw = vec![0.0f32; size];
        let (mut xp, mut dyw) = (
            vec![0.0f32; c * p.plane],
            vec![0.0f32; filters * p.out_plane],
        );
        for n in images {
            p.pad_image(&x[n * c * h * w..][..c * h * w], &mut xp);
            p.widen_image(&dy[n * filters * oh * ow..][..filters * oh * ow], &mut dyw);
            for t in 0..k_len {
                let strides = [c * k_len, k_len];
                let (dyw, xs) = (p.wide_grad(&dyw), p.shifted(&xp, t).t());
                matmul_strided(&mut dw[t..], strides, true, dyw, xs, false);
            }
        }
        dw
    })
}
