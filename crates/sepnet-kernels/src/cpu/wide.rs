//! The "wide" layout of stride-1 convolutions: a plane copied into a zero-padded scratch
//! plane, and outputs computed with the padded row pitch, so each kernel tap is one long
//! contiguous operation over the whole plane (`k_h·k_w` long vector loops or matrix products
//! per plane instead of `k_h·k_w` short ones per output row). The extra columns per row are
//! computed and dropped. Used by the depthwise kernel and by full convolutions.

use crate::geometry::Geometry;

/// Stride-1 planes laid out with the padded row pitch.
pub(crate) struct Wide {
    /// Padded input `[height + top + bottom, width + left + right]`.
    pub padded: [usize; 2],
    /// Length of a wide output: `(oh − 1)·pitch + ow`.
    pub len: usize,
    /// Offset of every kernel tap `(row, col)` into the padded plane, row-major.
    pub taps: Vec<usize>,
}

impl Wide {
    /// The wide layout applies at stride 1. (Measured with AVX-512 on depthwise layers: row
    /// by row, without the wide layout's copies, is still slower even on 32-column planes —
    /// VGG's 16×16 layer took 10.9 ms forward instead of 5.2.)
    pub fn of(g: &Geometry) -> Option<Wide> {
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

    /// Zeroed scratch planes: `(padded input, wide plane)`. Only their interior cells are
    /// ever written afterwards ([`Wide::pad`], [`Wide::widen`]), so borders and extra
    /// columns stay zero from plane to plane without being cleared again.
    pub fn scratch(&self) -> (Vec<f32>, Vec<f32>) {
        (
            vec![0.0f32; self.padded[0] * self.padded[1]],
            vec![0.0f32; self.len],
        )
    }

    /// Copies plane `x [h, w]` into the interior of the padded scratch.
    pub fn pad(&self, x: &[f32], g: &Geometry, scratch: &mut [f32]) {
        let [_, _, h, w] = g.input;
        for r in 0..h {
            let start = (r + g.pads[0]) * self.padded[1] + g.pads[2];
            scratch[start..start + w].copy_from_slice(&x[r * w..][..w]);
        }
    }

    /// Spreads an output plane `[oh, ow]` onto a wide scratch plane (whose extra columns
    /// stay zero).
    pub fn widen(&self, y: &[f32], g: &Geometry, wide: &mut [f32]) {
        let [oh, ow] = g.output_hw();
        for i in 0..oh {
            wide[i * self.padded[1]..][..ow].copy_from_slice(&y[i * ow..][..ow]);
        }
    }
}
