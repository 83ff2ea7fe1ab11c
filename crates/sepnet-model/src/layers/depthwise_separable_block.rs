//! MobileNet v1's building block (Howard et al., 2017, fig. 3 right):
//! depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU. No biases: BN supplies the shift.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::{
    Activation, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, DepthwiseConv2d,
    DepthwiseConv2dConfig, DepthwiseFans, Padding,
};

/// Configuration of a [`DepthwiseSeparableBlock`].
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::layers::DepthwiseSeparableBlockConfig;
/// let device = Device::flex();
/// let block = DepthwiseSeparableBlockConfig::new(32, 64).with_stride(2).init(&device);
/// assert_eq!(block.forward(Tensor::zeros([1, 32, 16, 16], &device)).dims(), [1, 64, 8, 8]);
/// ```
#[derive(Config, Debug)]
pub struct DepthwiseSeparableBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of the pointwise convolution.
    pub filters: usize,
    /// Stride of the depthwise convolution (the only place the block downsamples).
    #[config(default = 1)]
    pub stride: usize,
    /// Activation after each BatchNorm (the paper: ReLU; Keras's MobileNet: ReLU6).
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Fans of the depthwise kernel's initialisation.
    #[config(default = "DepthwiseFans::Group")]
    pub fans: DepthwiseFans,
}

/// The block; field names follow timm (`conv_dw`, `bn_dw`, `conv_pw`, `bn_pw`).
#[derive(Module, Debug)]
pub struct DepthwiseSeparableBlock {
    /// 3×3 depthwise, no bias.
    pub conv_dw: DepthwiseConv2d,
    /// BatchNorm after the depthwise.
    pub bn_dw: BatchNorm,
    /// 1×1 pointwise, no bias.
    pub conv_pw: Conv2d,
    /// BatchNorm after the pointwise.
    pub bn_pw: BatchNorm,
    #[module(skip)]
    activation: Activation,
}

impl DepthwiseSeparableBlockConfig {
    /// Creates the four layers.
    pub fn init(&self, device: &Device) -> DepthwiseSeparableBlock {
        DepthwiseSeparableBlock {
            conv_dw: DepthwiseConv2dConfig::new(self.in_channels, [3, 3])
                .with_stride([self.stride; 2])
                .with_padding(Padding::Same)
                .with_fans(self.fans)
                .init(device),
            bn_dw: BatchNormConfig::new(self.in_channels).init(device),
            conv_pw: Conv2dConfig::new(self.in_channels, self.filters, [1, 1])
                .with_bias(false)
                .init(device),
            bn_pw: BatchNormConfig::new(self.filters).init(device),
            activation: self.activation,
        }
    }
}

impl DepthwiseSeparableBlock {
    /// `[batch, in_channels, h, w]` → `[batch, filters, ceil(h / s), ceil(w / s)]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self
            .bn_dw
            .forward_activated(self.conv_dw.forward(x), self.activation);
        self.bn_pw
            .forward_activated(self.conv_pw.forward(x), self.activation)
    }
}
