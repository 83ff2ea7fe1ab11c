//! Depthwise convolution: one spatial filter per input channel (times a depth multiplier).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use super::{Activation, Padding, convolve};

/// Configuration of a [`DepthwiseConv2d`].
///
/// Output channels are `channels × depth_multiplier`. burn's fast depthwise kernels need
/// `depth_multiplier = 1`; the bias, when on, is added as a separate broadcast so that the
/// convolution itself always takes the bias-free path.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::layers::DepthwiseConv2dConfig;
/// let device = Device::flex();
/// let dw = DepthwiseConv2dConfig::new(8, [3, 3]).with_depth_multiplier(2).init(&device);
/// assert_eq!(dw.forward(Tensor::zeros([2, 8, 9, 9], &device)).dims(), [2, 16, 9, 9]);
/// ```
#[derive(Config, Debug)]
pub struct DepthwiseConv2dConfig {
    /// Input channels.
    pub channels: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Output channels per input channel.
    #[config(default = 1)]
    pub depth_multiplier: usize,
    /// Stride `[height, width]`.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Dilation `[height, width]`.
    #[config(default = "[1, 1]")]
    pub dilation: [usize; 2],
    /// Border handling; `Same` follows TensorFlow exactly.
    #[config(default = "Padding::Same")]
    pub padding: Padding,
    /// Whether a per-channel bias is added (Keras's default is on; MobileNet turns it off).
    #[config(default = false)]
    pub bias: bool,
    /// Activation applied to the output.
    #[config(default = "Activation::Linear")]
    pub activation: Activation,
}

/// Grouped convolution with `groups = channels`, NCHW in and out.
#[derive(Module, Debug)]
pub struct DepthwiseConv2d {
    /// Kernel, `[channels × depth_multiplier, 1, k_h, k_w]`.
    pub weight: Param<Tensor<4>>,
    /// Bias, `[channels × depth_multiplier]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Input channels (= groups).
    pub channels: usize,
    #[module(skip)]
    padding: Padding,
    #[module(skip)]
    activation: Activation,
}

impl DepthwiseConv2dConfig {
    /// Creates the layer; Glorot-uniform kernels use each group's own fans.
    pub fn init(&self, device: &Device) -> DepthwiseConv2d {
        let [k_h, k_w] = self.kernel;
        let out = self.channels * self.depth_multiplier;
        let weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
            [out, 1, k_h, k_w],
            Some(k_h * k_w),
            Some(k_h * k_w * self.depth_multiplier),
            device,
        );
        let bias = self.bias.then(|| Initializer::Zeros.init([out], device));
        DepthwiseConv2d {
            weight,
            bias,
            stride: self.stride,
            dilation: self.dilation,
            channels: self.channels,
            padding: self.padding,
            activation: self.activation,
        }
    }
}

impl DepthwiseConv2d {
    /// `[batch, channels, height, width]` → `[batch, channels × multiplier, height_out, width_out]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let bias = self.bias.as_ref().map(|b| b.val());
        let (weight, groups) = (self.weight.val(), self.channels);
        convolve(
            x,
            weight,
            bias,
            self.stride,
            self.dilation,
            self.padding,
            groups,
            self.activation,
        )
    }
}
