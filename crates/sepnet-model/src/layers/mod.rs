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
/// Elsewhere see [`convolve_off_cpu`].
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
    let geometry = kernels::Geometry::new(input, [k_h, k_w], stride, dilation, pads);
    // A depthwise convolution's outputs per input channel (a full one's geometry keeps 1).
    let geometry = match groups {
        1 => geometry,
        _ => kernels::Geometry {
            multiplier: c_out / c_in,
            ..geometry
        },
    };
    if !kernels::applies_to(&x) {
        return convolve_off_cpu(x, weight, bias, geometry, groups, activation);
    }
    let y = convolve_on_cpu(x, weight, geometry, groups);
    match bias {
        Some(bias) => {
            let (fused, after) = activation.split();
            after.apply(kernels::bias_activation(y, bias, fused))
        }
        None => activation.apply(y),
    }
}

/// The bias-free convolution on sepnet's CPU kernels: depthwise, pointwise (1×1, stride 1,
/// unpadded) or full.
pub(crate) fn convolve_on_cpu(
    x: Tensor<4>,
    weight: Tensor<4>,
    geometry: kernels::Geometry,
    groups: usize,
) -> Tensor<4> {
    let pointwise =
        geometry.kernel == [1, 1] && geometry.stride == [1, 1] && geometry.pads == [0; 4];
    if groups > 1 {
        kernels::depthwise_conv2d(x, weight, geometry)
    } else if pointwise {
        kernels::pointwise_conv2d(x, weight)
    } else {
        kernels::dense_conv2d(x, weight, geometry)
    }
}

/// [`convolve`] off the CPU kernels' backend. On the GPU (wgpu) a full convolution is sepnet's
/// own tiled kernel and a depthwise one with a bias takes its bias and activation in the same
/// pass ([`crate::kernels::gpu`]); the rest is burn's `conv2d` (whose fast depthwise kernel
/// refuses a bias, hence the separate add) and the activation after it.
fn convolve_off_cpu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    geometry: kernels::Geometry,
    groups: usize,
    activation: Activation,
) -> Tensor<4> {
    #[cfg(feature = "wgpu")]
    if kernels::gpu::applies_to(&x) {
        use kernels::gpu;
        match bias {
            Some(bias) if groups > 1 => {
                let (fused, after) = activation.split();
                return after.apply(gpu::depthwise_bias_act(x, weight, bias, geometry, fused));
            }
            _ if groups == 1 && gpu::fits(&geometry) => {
                let y = gpu::dense_conv2d(x, weight, geometry);
                return add_bias_then(y, bias, activation);
            }
            _ => {}
        }
    }
    let [top, bottom, left, right] = geometry.pads;
    let pads = [(top, bottom), (left, right)];
    let options = burn::tensor::ops::ConvOptions::new_with_padding(
        geometry.stride,
        pads,
        geometry.dilation,
        groups,
    );
    let y = burn::tensor::module::conv2d(x, weight, None, options);
    add_bias_then(y, bias, activation)
}

/// `activation(y + bias)`, `bias [c]` broadcast over `y [n, c, h, w]`.
fn add_bias_then(y: Tensor<4>, bias: Option<Tensor<1>>, activation: Activation) -> Tensor<4> {
    match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            activation.apply(y + bias.reshape([1, channels, 1, 1]))
        }
        None => activation.apply(y),
    }
}
