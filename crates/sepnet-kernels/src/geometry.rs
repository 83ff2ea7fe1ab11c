//! The window arithmetic shared by sepnet's convolution and pooling kernels: output sizes and,
//! per output row and kernel position, which input row and column range a window reads.

/// Where a convolution or pooling window reads: everything but the tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input `[batch, channels, height, width]`.
    pub input: [usize; 4],
    /// Outputs per input channel (a depthwise convolution's depth multiplier; 1 elsewhere).
    pub multiplier: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Zero padding `[top, bottom, left, right]`.
    pub pads: [usize; 4],
}

impl Geometry {
    /// A window of `kernel` over an NCHW `input`, with the `((top, bottom), (left, right))`
    /// padding sepnet-model's `Padding::pads_2d` resolves; multiplier 1.
    pub fn new(
        input: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        pads: [(usize, usize); 2],
    ) -> Self {
        let [(top, bottom), (left, right)] = pads;
        Geometry {
            input,
            multiplier: 1,
            kernel,
            stride,
            dilation,
            pads: [top, bottom, left, right],
        }
    }

    /// Output `[height, width]`.
    pub fn output_hw(&self) -> [usize; 2] {
        let [_, _, h, w] = self.input;
        let [t, b, l, r] = self.pads;
        let span = |k: usize, d: usize| (k - 1) * d + 1;
        [
            (h + t + b - span(self.kernel[0], self.dilation[0])) / self.stride[0] + 1,
            (w + l + r - span(self.kernel[1], self.dilation[1])) / self.stride[1] + 1,
        ]
    }

    /// Output `[batch, channels × multiplier, height, width]`.
    pub fn output(&self) -> [usize; 4] {
        let [n, c, _, _] = self.input;
        let [oh, ow] = self.output_hw();
        [n, c * self.multiplier, oh, ow]
    }

    /// Depthwise weight `[channels × multiplier, 1, k_h, k_w]`.
    pub fn weight(&self) -> [usize; 4] {
        [
            self.input[1] * self.multiplier,
            1,
            self.kernel[0],
            self.kernel[1],
        ]
    }

    /// Every `(output_row, input_row, kernel_row)` whose input row lies inside the image.
    /// (An iterator, not a callback: a loop body stays in the kernel function, compiled with
    /// that kernel's instruction set.)
    pub(crate) fn rows(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let h = self.input[2] as isize;
        let [oh, _] = self.output_hw();
        (0..oh).flat_map(move |o| {
            (0..self.kernel[0]).filter_map(move |k| {
                let i =
                    (o * self.stride[0] + k * self.dilation[0]) as isize - self.pads[0] as isize;
                (0..h).contains(&i).then_some((o, i as usize, k))
            })
        })
    }

    /// For every kernel column: `(kernel_col, first_out, end_out, input_offset)` where output
    /// columns `first_out..end_out` read input column `out × stride + input_offset`, all inside
    /// the image.
    pub(crate) fn columns(&self) -> Vec<Column> {
        let w = self.input[3] as isize;
        let s = self.stride[1] as isize;
        let [_, ow] = self.output_hw();
        (0..self.kernel[1])
            .filter_map(|k| {
                let offset = (k * self.dilation[1]) as isize - self.pads[2] as isize;
                // out × s + offset ≥ 0  and  ≤ w − 1
                let first = if offset >= 0 {
                    0
                } else {
                    (-offset + s - 1) / s
                };
                let last = (w - 1 - offset).div_euclid(s);
                let end = (last + 1).clamp(0, ow as isize);
                (first < end).then_some((k, first as usize, end as usize, offset))
            })
            .collect()
    }
}

/// `(kernel_col, first_out, end_out, input_offset)`, see [`Geometry::columns`].
pub(crate) type Column = (usize, usize, usize, isize);

/// The input column an output column reads (inside the image by construction of `columns`).
#[inline]
pub(crate) fn input_col(out_col: usize, stride: usize, offset: isize) -> usize {
    ((out_col * stride) as isize + offset) as usize
}
