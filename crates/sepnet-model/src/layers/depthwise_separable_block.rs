//! MobileNet v1's building block (Howard et al., 2017, fig. 3 right):
//! depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU. No biases: BN supplies the shift.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::kernels;

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
        if let Some(fused) = self.fused_inference(&x) {
            return fused;
        }
        let x = self
            .bn_dw
            .forward_activated(self.conv_dw.forward(x), self.activation);
        self.bn_pw
            .forward_activated(self.conv_pw.forward(x), self.activation)
    }

    /// Inference on sepnet's CPU kernels with both BatchNorms folded into the convolutions
    /// (scale into the weights, shift as a bias) and the block run in one pass per image
    /// (`kernels::separable`), on a device without autodiff.
    fn fused_inference(&self, x: &Tensor<4>) -> Option<Tensor<4>> {
        let geometry = self.conv_dw.fusable_geometry(x)?;
        let (None, Activation::Linear) = self.conv_pw.epilogue() else {
            return None;
        };
        let device = x.device();
        let (dw_scale, dw_shift) = self.bn_dw.inference_affine(&device);
        let (pw_scale, pw_shift) = self.bn_pw.inference_affine(&device);
        let per_output = |scale: Tensor<1>| {
            let n = scale.dims()[0];
            scale.reshape([n, 1, 1, 1])
        };
        let weights = [
            self.conv_dw.weight.val() * per_output(dw_scale),
            self.conv_pw.weight.val() * per_output(pw_scale),
        ];
        let biases = [dw_shift, pw_shift];
        // The depthwise half's activation sits inside the fused kernel: only one it fuses.
        let (fused, after) = self.activation.split();
        let activations = [self.activation.fused()?, fused];
        let y = kernels::separable_inference(x.clone(), weights, biases, geometry, activations);
        Some(after.apply(y))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Param, RunningState};
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    fn random(n: usize, low: f64, high: f64, device: &Device) -> Tensor<1> {
        Tensor::random([n], Distribution::Uniform(low, high), device)
    }

    /// Sets every BatchNorm statistic and parameter to something other than its default.
    fn randomise(bn: &mut BatchNorm, device: &Device) {
        let n = bn.inner.gamma.dims()[0];
        bn.inner.gamma = Param::from_tensor(random(n, 0.5, 1.5, device));
        bn.inner.beta = Param::from_tensor(random(n, -0.5, 0.5, device));
        bn.inner.running_mean = RunningState::new(random(n, -0.3, 0.3, device));
        bn.inner.running_var = RunningState::new(random(n, 0.5, 2.0, device));
    }

    /// Inference with the BatchNorms folded into one pass per image gives what the four
    /// layers give one after the other (stride 1 fused, stride 2 through the parts).
    #[test]
    fn folded_inference_matches_the_layers() {
        let device = Device::flex();
        for (stride, activation) in [(1, Activation::Relu), (2, Activation::Relu6)] {
            let mut block = DepthwiseSeparableBlockConfig::new(6, 10)
                .with_stride(stride)
                .with_activation(activation)
                .init(&device);
            randomise(&mut block.bn_dw, &device);
            randomise(&mut block.bn_pw, &device);
            let x = Tensor::<4>::random([3, 6, 9, 9], Distribution::Normal(0.0, 1.0), &device);
            let folded = block
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let t = block
                .bn_dw
                .forward_activated(block.conv_dw.forward(x), activation);
            let y = block
                .bn_pw
                .forward_activated(block.conv_pw.forward(t), activation);
            let apart = y.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(folded.len(), apart.len());
            for (a, b) in folded.iter().zip(&apart) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{activation:?} s{stride}: {a} vs {b}"
                );
            }
        }
    }
}
