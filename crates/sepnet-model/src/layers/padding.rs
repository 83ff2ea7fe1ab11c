//! Spatial padding and output-size arithmetic shared by convolutions and pooling.
//!
//! `Same` follows TensorFlow/Keras exactly (not PyTorch's `padding="same"`, which only exists for
//! stride 1): the output side is `ceil(input / stride)`, the total padding is whatever makes that
//! true, and when the total is odd the extra row/column goes to the bottom/right.

use serde::{Deserialize, Serialize};

/// How a convolution or pooling window treats the border of its input.
///
/// ```
/// use sepnet_model::Padding;
/// // 28 input, 32×32 kernel, stride 3: Keras gives ceil(28 / 3) = 10 outputs and pads 15 / 16.
/// let pads = Padding::Same.pads(28, 32, 3, 1);
/// assert_eq!(pads, (15, 16));
/// assert_eq!(Padding::Same.output_size(28, 32, 3, 1), Some(10));
/// assert_eq!(Padding::Valid.output_size(28, 32, 3, 1), None); // kernel larger than input
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Padding {
    /// Output side `ceil(input / stride)`; extra padding row/column at the bottom/right.
    #[default]
    Same,
    /// No padding: windows must lie entirely inside the input.
    Valid,
    /// Explicit zero padding on each side.
    Explicit {
        /// Rows added above.
        top: usize,
        /// Rows added below.
        bottom: usize,
        /// Columns added on the left.
        left: usize,
        /// Columns added on the right.
        right: usize,
    },
}

impl Padding {
    /// The `(before, after)` zero padding along one axis of length `input`.
    pub fn pads(
        &self,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> (usize, usize) {
        self.pads_on_axis(Axis::Height, input, kernel, stride, dilation)
    }

    /// The `((top, bottom), (left, right))` padding of a 2-D window.
    pub fn pads_2d(
        &self,
        input: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> [(usize, usize); 2] {
        [
            self.pads_on_axis(Axis::Height, input[0], kernel[0], stride[0], dilation[0]),
            self.pads_on_axis(Axis::Width, input[1], kernel[1], stride[1], dilation[1]),
        ]
    }

    /// Output length along one axis, or `None` when no window fits (e.g. `Valid` with a kernel
    /// larger than the input).
    pub fn output_size(
        &self,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> Option<usize> {
        self.output_on_axis(Axis::Height, input, kernel, stride, dilation)
    }

    /// Output `[height, width]` of a 2-D window, or `None` when no window fits.
    pub fn output_size_2d(
        &self,
        input: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> Option<[usize; 2]> {
        Some([
            self.output_on_axis(Axis::Height, input[0], kernel[0], stride[0], dilation[0])?,
            self.output_on_axis(Axis::Width, input[1], kernel[1], stride[1], dilation[1])?,
        ])
    }

    fn pads_on_axis(
        &self,
        axis: Axis,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> (usize, usize) {
        match *self {
            Padding::Valid => (0, 0),
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => match axis {
                Axis::Height => (top, bottom),
                Axis::Width => (left, right),
            },
            Padding::Same => {
                let output = input.div_ceil(stride);
                let span = effective_kernel(kernel, dilation);
                let total = ((output.saturating_sub(1)) * stride + span).saturating_sub(input);
                (total / 2, total - total / 2)
            }
        }
    }

    fn output_on_axis(
        &self,
        axis: Axis,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> Option<usize> {
        if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
            return None;
        }
        if *self == Padding::Same {
            return Some(input.div_ceil(stride));
        }
        let (before, after) = self.pads_on_axis(axis, input, kernel, stride, dilation);
        let padded = input + before + after;
        let span = effective_kernel(kernel, dilation);
        (padded >= span).then(|| (padded - span) / stride + 1)
    }
}

/// The extent of a dilated kernel: `(k - 1) * d + 1`.
pub fn effective_kernel(kernel: usize, dilation: usize) -> usize {
    (kernel - 1) * dilation + 1
}

#[derive(Clone, Copy)]
enum Axis {
    Height,
    Width,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, kernel, stride, dilation) -> expected Keras `same` (output, before, after).
    #[test]
    fn same_matches_tensorflow_table() {
        let table = [
            (28, 3, 1, 1, 28, 1, 1),
            (28, 2, 1, 1, 28, 0, 1),
            (32, 3, 2, 1, 16, 0, 1),
            (7, 3, 2, 1, 4, 1, 1),
            (5, 64, 3, 1, 2, 31, 31),
            (28, 32, 3, 1, 10, 15, 16),
            (14, 64, 3, 1, 5, 31, 31),
            (10, 3, 1, 2, 10, 2, 2),
            (1, 3, 1, 1, 1, 1, 1),
        ];
        for (input, kernel, stride, dilation, output, before, after) in table {
            assert_eq!(
                Padding::Same.output_size(input, kernel, stride, dilation),
                Some(output),
                "output for {input} k{kernel} s{stride} d{dilation}"
            );
            assert_eq!(
                Padding::Same.pads(input, kernel, stride, dilation),
                (before, after),
                "pads for {input} k{kernel} s{stride} d{dilation}"
            );
            // The padded input must produce exactly that many windows.
            let padded = input + before + after;
            assert_eq!(
                (padded - effective_kernel(kernel, dilation)) / stride + 1,
                output
            );
        }
    }

    #[test]
    fn valid_and_explicit_sizes() {
        assert_eq!(Padding::Valid.output_size(32, 3, 1, 1), Some(30));
        assert_eq!(Padding::Valid.output_size(5, 2, 2, 1), Some(2));
        assert_eq!(Padding::Valid.output_size(2, 3, 1, 1), None);
        let explicit = Padding::Explicit {
            top: 1,
            bottom: 2,
            left: 0,
            right: 0,
        };
        assert_eq!(
            explicit.output_size_2d([4, 4], [3, 3], [1, 1], [1, 1]),
            Some([5, 2])
        );
        assert_eq!(
            explicit.pads_2d([4, 4], [3, 3], [1, 1], [1, 1]),
            [(1, 2), (0, 0)]
        );
    }
}
