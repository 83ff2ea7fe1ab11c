//! Keras's `SeparableConv2D`: depthwise (no bias) then pointwise 1×1 (bias), nothing between.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::kernels;

use super::{
    Activation, Conv2d, Conv2dConfig, DepthwiseConv2d, DepthwiseConv2dConfig, DepthwiseFans, Fused,
    Padding,
};

/// Configuration of a [`SeparableConv2d`].
///
/// ```
/// use burn::module::Module;
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::layers::SeparableConv2dConfig;
/// use sepnet_model::Padding;
/// let device = Device::flex();
/// let sep = SeparableConv2dConfig::new(3, 64, [3, 3]).with_padding(Padding::Valid).init(&device);
/// assert_eq!(sep.num_params(), 283); // 27 depthwise + 3·64 + 64 pointwise, as Keras reports
/// assert_eq!(sep.forward(Tensor::zeros([1, 3, 32, 32], &device)).dims(), [1, 64, 30, 30]);
/// ```
#[derive(Config, Debug)]
pub struct SeparableConv2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of the pointwise convolution.
    pub filters: usize,
    /// Depthwise kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Depthwise output channels per input channel.
    #[config(default = 1)]
    pub depth_multiplier: usize,
    /// Depthwise stride.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Depthwise dilation.
    #[config(default = "[1, 1]")]
    pub dilation: [usize; 2],
    /// Depthwise border handling.
    #[config(default = "Padding::Same")]
    pub padding: Padding,
    /// Whether the pointwise convolution adds a bias.
    #[config(default = true)]
    pub bias: bool,
    /// Activation after the pointwise convolution.
    #[config(default = "Activation::Linear")]
    pub activation: Activation,
    /// Fans of the depthwise kernel's initialisation.
    #[config(default = "DepthwiseFans::Group")]
    pub fans: DepthwiseFans,
}

/// `act(pointwise(depthwise(x)))`.
#[derive(Module, Debug)]
pub struct SeparableConv2d {
    /// Per-channel spatial filtering (`conv_dw`).
    pub conv_dw: DepthwiseConv2d,
    /// 1×1 channel mixing (`conv_pw`).
    pub conv_pw: Conv2d,
}

impl SeparableConv2dConfig {
    /// Creates both halves.
    pub fn init(&self, device: &Device) -> SeparableConv2d {
        let conv_dw = DepthwiseConv2dConfig::new(self.in_channels, self.kernel)
            .with_depth_multiplier(self.depth_multiplier)
            .with_stride(self.stride)
            .with_dilation(self.dilation)
            .with_padding(self.padding)
            .with_fans(self.fans)
            .init(device);
        let conv_pw = Conv2dConfig::new(
            self.in_channels * self.depth_multiplier,
            self.filters,
            [1, 1],
        )
        .with_bias(self.bias)
        .with_activation(self.activation)
        .init(device);
        SeparableConv2d { conv_dw, conv_pw }
    }
}

impl SeparableConv2d {
    /// `[batch, in_channels, h, w]` → `[batch, filters, h_out, w_out]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(fused) = self.fused_inference(&x) {
            return fused;
        }
        self.conv_pw.forward(self.conv_dw.forward(x))
    }

    /// Inference on sepnet's CPU kernels in one pass per image (the depthwise output stays
    /// in cache; see `kernels::separable`): for a bare depthwise half and a pointwise half
    /// with bias, on a device without autodiff.
    fn fused_inference(&self, x: &Tensor<4>) -> Option<Tensor<4>> {
        let geometry = self.conv_dw.fusable_geometry(x)?;
        let (Some(bias), activation) = self.conv_pw.epilogue() else {
            return None;
        };
        let weights = [self.conv_dw.weight.val(), self.conv_pw.weight.val()];
        let none = Tensor::zeros([geometry.output()[1]], &x.device());
        let (fused, after) = activation.split();
        let biases = [none, bias];
        let y = kernels::separable_inference(
            x.clone(),
            weights,
            biases,
            geometry,
            [Fused::Linear, fused],
        );
        Some(after.apply(y))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    /// The one-pass inference kernel gives what the depthwise and pointwise layers give one
    /// after the other, for stride 1 (fused) and 2 (the three operations), with a depth
    /// multiplier and each activation.
    #[test]
    fn fused_inference_matches_the_two_layers() {
        let device = Device::flex();
        for (stride, multiplier, activation) in [
            (1, 1, Activation::Relu),
            (1, 2, Activation::Linear),
            (2, 1, Activation::Relu6),
        ] {
            let mut layer = SeparableConv2dConfig::new(5, 7, [3, 3])
                .with_depth_multiplier(multiplier)
                .with_stride([stride, stride])
                .with_activation(activation)
                .init(&device);
            let bias = Tensor::<1>::random([7], Distribution::Normal(0.0, 1.0), &device);
            layer.conv_pw.bias = Some(Param::from_tensor(bias));
            let x = Tensor::<4>::random([3, 5, 9, 9], Distribution::Normal(0.0, 1.0), &device);
            let fused = layer
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let apart = layer.conv_pw.forward(layer.conv_dw.forward(x));
            let apart = apart.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(fused.len(), apart.len());
            for (a, b) in fused.iter().zip(&apart) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{activation:?} s{stride}: {a} vs {b}"
                );
            }
        }
    }
}
