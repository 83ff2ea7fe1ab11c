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

pub use activation::Activation;
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use conv2d::{Conv2d, Conv2dConfig};
pub use dense::{Dense, DenseConfig};
pub use depthwise_conv2d::{DepthwiseConv2d, DepthwiseConv2dConfig};
pub use depthwise_separable_block::{DepthwiseSeparableBlock, DepthwiseSeparableBlockConfig};
pub use padding::{Padding, effective_kernel};
pub use pooling::{GlobalAvgPool, Pool2d, Pool2dConfig, PoolKind};
pub use separable_conv2d::{SeparableConv2d, SeparableConv2dConfig};

use burn::tensor::Tensor;

/// The forward pass shared by full and depthwise convolutions: padding resolved for this input,
/// a bias-free grouped convolution (burn's fast depthwise kernels require no bias), then the
/// bias as a broadcast add, then the activation.
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
    let [_, _, height, width] = x.dims();
    let [_, _, k_h, k_w] = weight.dims();
    let pads = padding.pads_2d([height, width], [k_h, k_w], stride, dilation);
    let options = burn::tensor::ops::ConvOptions::new_with_padding(stride, pads, dilation, groups);
    let y = burn::tensor::module::conv2d(x, weight, None, options);
    let y = match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.reshape([1, channels, 1, 1])
        }
        None => y,
    };
    activation.apply(y)
}
