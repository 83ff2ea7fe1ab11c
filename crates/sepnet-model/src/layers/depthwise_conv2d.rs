//! Depthwise convolution: one spatial filter per input channel (times a depth multiplier).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{Activation, Padding, convolve};
use crate::kernels;

/// How a depthwise kernel is initialised: Glorot-uniform, `U(±√(6 / (fan_in + fan_out)))`, with
/// one of two readings of the fans, or PyTorch's default for a grouped convolution.
///
/// ```
/// use sepnet_model::layers::DepthwiseFans;
/// // A 3×3 kernel over 64 channels, depth multiplier 1:
/// assert_eq!(DepthwiseFans::Group.fans(64, [3, 3], 1), (9, 9));
/// assert_eq!(DepthwiseFans::Keras.fans(64, [3, 3], 1), (576, 9));
/// assert_eq!("keras".parse::<DepthwiseFans>(), Ok(DepthwiseFans::Keras));
/// // The largest weight each can draw:
/// assert!((DepthwiseFans::Group.limit(64, [3, 3], 1) - (6.0f64 / 18.0).sqrt()).abs() < 1e-12);
/// assert!((DepthwiseFans::Torch.limit(64, [3, 3], 1) - 1.0 / 3.0).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DepthwiseFans {
    /// Each group's own: `k·k` in, `k·k·multiplier` out (PyTorch's grouped-conv convention).
    /// Keeps the scale of the activations from layer to layer.
    #[default]
    Group,
    /// Keras's, computed from its kernel shape `(k, k, channels, multiplier)`: `k·k·channels`
    /// in, `k·k·multiplier` out. About √channels smaller weights, so each layer shrinks its
    /// input's scale; Keras code that trains on raw 0–255 pixels relies on that.
    Keras,
    /// PyTorch's default for a grouped `nn.Conv2d`: `U(±1/√(k·k))` (Kaiming-uniform with
    /// `a = √5` on the group's fan-in `k·k`), 0.58× the `group` limit whatever the channels.
    Torch,
}

impl DepthwiseFans {
    const ALL: [DepthwiseFans; 3] = [
        DepthwiseFans::Group,
        DepthwiseFans::Keras,
        DepthwiseFans::Torch,
    ];

    /// `(fan_in, fan_out)` of a depthwise kernel.
    pub fn fans(self, channels: usize, kernel: [usize; 2], multiplier: usize) -> (usize, usize) {
        let area = kernel[0] * kernel[1];
        let fan_in = match self {
            DepthwiseFans::Group | DepthwiseFans::Torch => area,
            DepthwiseFans::Keras => area * channels,
        };
        (fan_in, area * multiplier)
    }

    /// The bound of the uniform distribution the weights are drawn from.
    pub fn limit(self, channels: usize, kernel: [usize; 2], multiplier: usize) -> f64 {
        let (fan_in, fan_out) = self.fans(channels, kernel, multiplier);
        // Computed in the order burn's Xavier- and Kaiming-uniform compute their bounds
        // (√3 · gain · std), so the weights match those initialisers' draws bit for bit.
        let (gain, std) = match self {
            // Kaiming-uniform with gain 1/√3: bound 1/√fan_in.
            DepthwiseFans::Torch => (1.0 / 3f64.sqrt(), 1.0 / (fan_in as f64).sqrt()),
            _ => (1.0, (2.0 / (fan_in + fan_out) as f64).sqrt()),
        };
        3f64.sqrt() * gain * std
    }

    /// The command-line and spec name (`fans=keras`).
    pub fn name(self) -> &'static str {
        match self {
            DepthwiseFans::Group => "group",
            DepthwiseFans::Keras => "keras",
            DepthwiseFans::Torch => "torch",
        }
    }
}

impl std::str::FromStr for DepthwiseFans {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        DepthwiseFans::ALL
            .into_iter()
            .find(|fans| fans.name() == text)
            .ok_or_else(|| {
                format!("unknown depthwise fans `{text}`; expected group, keras or torch")
            })
    }
}

impl std::fmt::Display for DepthwiseFans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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
    /// Kernel initialisation (see [`DepthwiseFans`]).
    #[config(default = "DepthwiseFans::Group")]
    pub fans: DepthwiseFans,
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
    /// Creates the layer: uniform kernel as [`Self::fans`] says, zero bias.
    pub fn init(&self, device: &Device) -> DepthwiseConv2d {
        let [k_h, k_w] = self.kernel;
        let out = self.channels * self.depth_multiplier;
        let limit = self
            .fans
            .limit(self.channels, self.kernel, self.depth_multiplier);
        let weight = Initializer::Uniform {
            min: -limit,
            max: limit,
        }
        .init([out, 1, k_h, k_w], device);
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
    /// The activation applied to the output.
    pub(crate) fn activation(&self) -> Activation {
        self.activation
    }

    /// Whether the layer is a bare depthwise convolution: no bias, no activation.
    pub(crate) fn is_bare(&self) -> bool {
        self.bias.is_none() && self.activation == Activation::Linear
    }

    /// The kernels' geometry of this convolution on an input of `dims` (NCHW).
    pub(crate) fn geometry(&self, dims: [usize; 4]) -> kernels::Geometry {
        let [c_out, _, k_h, k_w] = self.weight.dims();
        let kernel = [k_h, k_w];
        let pads = self
            .padding
            .pads_2d([dims[2], dims[3]], kernel, self.stride, self.dilation);
        kernels::Geometry {
            multiplier: c_out / self.channels.max(1),
            ..kernels::Geometry::new(dims, kernel, self.stride, self.dilation, pads)
        }
    }

    /// The kernel geometry for `x`, when the layer is a bare depthwise convolution and `x` an
    /// inference input for which the fused separable kernel pays (`kernels::separable::pays`).
    pub(crate) fn fusable_geometry(&self, x: &Tensor<4>) -> Option<kernels::Geometry> {
        let inference = kernels::applies_to(x) && !x.device().is_autodiff();
        if !inference || !self.is_bare() {
            return None;
        }
        let geometry = self.geometry(x.dims());
        kernels::separable::pays(&geometry).then_some(geometry)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_are_uniform_within_their_limit() {
        let device = Device::flex();
        for (fans, channels, multiplier, limit) in [
            (DepthwiseFans::Group, 64, 1, (6.0f32 / 18.0).sqrt()),
            (DepthwiseFans::Keras, 64, 1, (6.0f32 / (576.0 + 9.0)).sqrt()),
            (DepthwiseFans::Group, 8, 2, (6.0f32 / 27.0).sqrt()),
            (DepthwiseFans::Keras, 8, 2, (6.0f32 / (72.0 + 18.0)).sqrt()),
            (DepthwiseFans::Torch, 64, 1, 1.0 / 3.0),
            (DepthwiseFans::Torch, 8, 2, 1.0 / 3.0),
        ] {
            let layer = DepthwiseConv2dConfig::new(channels, [3, 3])
                .with_depth_multiplier(multiplier)
                .with_fans(fans)
                .init(&device);
            let weights: Vec<f32> = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
            // ≥ 144 uniform draws: the largest lies within 10% of the limit but for ~1e-7.
            let largest = weights.iter().fold(0f32, |m, w| m.max(w.abs()));
            assert!(
                largest <= limit && largest > 0.9 * limit,
                "{fans} c{channels} m{multiplier}: largest |w| {largest}, limit {limit}"
            );
        }
    }
}
