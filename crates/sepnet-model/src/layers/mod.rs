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

/// Adds a `[channels]` bias to an NCHW tensor. Kept outside the convolution call so that
/// burn always sees a bias-free convolution (its fast depthwise kernels require that).
fn add_channel_bias(x: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            x + bias.reshape([1, channels, 1, 1])
        }
        None => x,
    }
}
