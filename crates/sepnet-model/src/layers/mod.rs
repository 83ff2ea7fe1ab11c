//! The layers sepnet networks are made of, one per file. All work on NCHW tensors.

mod activation;
mod batch_norm;
mod conv2d;
mod dense;
mod depthwise_conv2d;
mod depthwise_separable_block;
mod padding;
mod pooling;
mod separable_conv2d;

pub use activation::{Activation, Fused};
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use conv2d::{Conv2d, Conv2dConfig};
pub use dense::{Dense, DenseConfig};
pub use depthwise_conv2d::{DepthwiseConv2d, DepthwiseConv2dConfig, DepthwiseFans};
pub use depthwise_separable_block::{DepthwiseSeparableBlock, DepthwiseSeparableBlockConfig};
pub use padding::{Padding, effective_kernel};
pub use pooling::{GlobalAvgPool, Pool2d, Pool2dConfig, PoolKind};
pub use separable_conv2d::{SeparableConv2d, SeparableConv2dConfig};

use burn::tensor::Tensor;

use crate::kernels;

/// The forward pass shared by full and depthwise convolutions: padding resolved for this input,
/// a bias-free convolution, then the bias as a broadcast add, then the activation.
///
/// On the CPU (Flex) the convolution is one of sepnet's own kernels, each with its own
/// backward pass ([`crate::kernels`]): depthwise, pointwise (1×1, stride 1, unpadded) or full.
/// On GPU backends it is burn's `conv2d` (whose fast depthwise kernels require no bias, hence
/// the separate add).
#[allow(clippy::too_many_arguments)]
fn convolve(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    groups: usize,
    activation: Activation,
) -> Tensor<4> {
    let input = x.dims();
    let [_, c_in, height, width] = input;
    let [c_out, _, k_h, k_w] = weight.dims();
    let pads = padding.pads_2d([height, width], [k_h, k_w], stride, dilation);
    let y = if !kernels::applies_to(&x) {
        let options =
            burn::tensor::ops::ConvOptions::new_with_padding(stride, pads, dilation, groups);
        burn::tensor::module::conv2d(x, weight, None, options)
    } else {
        let geometry = kernels::Geometry::new(input, [k_h, k_w], stride, dilation, pads);
        if groups > 1 {
            let geometry = kernels::Geometry {
                multiplier: c_out / c_in,
                ..geometry
            };
            kernels::depthwise_conv2d(x, weight, geometry)
        } else if [k_h, k_w, stride[0], stride[1]] == [1; 4] && geometry.pads == [0; 4] {
            kernels::pointwise_conv2d(x, weight)
        } else {
            kernels::dense_conv2d(x, weight, geometry)
        }
    };
    match bias {
        Some(bias) if kernels::applies_to(&y) => kernels::bias_activation(y, bias, activation),
        Some(bias) => activation.apply(y + bias.reshape([1, c_out, 1, 1])),
        None => activation.apply(y),
    }
}
