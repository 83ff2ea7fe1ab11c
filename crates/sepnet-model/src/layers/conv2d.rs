//! A full 2-D convolution with Keras padding semantics.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use super::{Activation, BatchNorm, Padding, convolve};

/// Configuration of a [`Conv2d`]. All arguments are named: there is no positional
/// `(filters, kernel)` pair to confuse with stride.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::layers::Conv2dConfig;
/// let device = Device::flex();
/// let conv = Conv2dConfig::new(3, 64, [3, 3]).with_stride([2, 2]).init(&device);
/// let y = conv.forward(Tensor::zeros([1, 3, 32, 32], &device)); // NCHW
/// assert_eq!(y.dims(), [1, 64, 16, 16]); // `same` padding: ceil(32 / 2)
/// ```
#[derive(Config, Debug)]
pub struct Conv2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (Keras `filters`).
    pub filters: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Dilation `[height, width]`.
    #[config(default = "[1, 1]")]
    pub dilation: [usize; 2],
    /// Border handling; `Same` follows TensorFlow exactly.
    #[config(default = "Padding::Same")]
    pub padding: Padding,
    /// Whether a per-channel bias is added (leave off before BatchNorm).
    #[config(default = true)]
    pub bias: bool,
    /// Activation applied to the output.
    #[config(default = "Activation::Linear")]
    pub activation: Activation,
}

/// `y = act(conv(x, W) + b)`, NCHW in and out.
#[derive(Module, Debug)]
pub struct Conv2d {
    /// Kernel, `[filters, in_channels, k_h, k_w]`.
    pub weight: Param<Tensor<4>>,
    /// Bias, `[filters]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    #[module(skip)]
    padding: Padding,
    #[module(skip)]
    activation: Activation,
}

impl Conv2dConfig {
    /// Creates the layer with Glorot-uniform kernels and zero bias (Keras's defaults).
    pub fn init(&self, device: &Device) -> Conv2d {
        let [k_h, k_w] = self.kernel;
        let receptive = k_h * k_w;
        let weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
            [self.filters, self.in_channels, k_h, k_w],
            Some(receptive * self.in_channels),
            Some(receptive * self.filters),
            device,
        );
        let bias = self
            .bias
            .then(|| Initializer::Zeros.init([self.filters], device));
        Conv2d {
            weight,
            bias,
            stride: self.stride,
            dilation: self.dilation,
            padding: self.padding,
            activation: self.activation,
        }
    }
}

impl Conv2d {
    /// The bias and activation applied after the convolution.
    pub(crate) fn epilogue(&self) -> (Option<Tensor<1>>, Activation) {
        (self.bias.as_ref().map(|b| b.val()), self.activation)
    }

    /// The kernels' geometry of this convolution on an input of `dims` (NCHW).
    pub(crate) fn geometry(&self, dims: [usize; 4]) -> crate::kernels::Geometry {
        let [_, _, k_h, k_w] = self.weight.dims();
        let pads = self
            .padding
            .pads_2d([dims[2], dims[3]], [k_h, k_w], self.stride, self.dilation);
        crate::kernels::Geometry::new(dims, [k_h, k_w], self.stride, self.dilation, pads)
    }

    /// The convolution alone, without its bias and activation, on sepnet's CPU kernels (for an
    /// input [`crate::kernels::applies_to`] accepts).
    pub(crate) fn convolve_only(&self, x: Tensor<4>) -> Tensor<4> {
        let geometry = self.geometry(x.dims());
        super::convolve_on_cpu(x, self.weight.val(), geometry, 1)
    }

    /// `activation(bn(conv(x)))` at inference, the BatchNorm folded into the weights and
    /// bias (one convolution with its epilogue instead of two more passes); the convolution's
    /// own activation must be linear.
    pub(crate) fn forward_folded(
        &self,
        x: Tensor<4>,
        bn: &BatchNorm,
        act: Activation,
    ) -> Tensor<4> {
        debug_assert_eq!(
            self.activation,
            Activation::Linear,
            "an activation before the BN"
        );
        let bias = self.bias.as_ref().map(|b| b.val());
        let (weight, bias) = bn.fold(self.weight.val(), bias);
        let (stride, dilation) = (self.stride, self.dilation);
        convolve(
            x,
            weight,
            Some(bias),
            stride,
            dilation,
            self.padding,
            1,
            act,
        )
    }

    /// `[batch, in_channels, height, width]` → `[batch, filters, height_out, width_out]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let bias = self.bias.as_ref().map(|b| b.val());
        convolve(
            x,
            self.weight.val(),
            bias,
            self.stride,
            self.dilation,
            self.padding,
            1,
            self.activation,
        )
    }
}
