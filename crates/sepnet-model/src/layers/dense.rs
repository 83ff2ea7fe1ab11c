//! Fully connected layer (Keras `Dense`).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use super::Activation;

/// Configuration of a [`Dense`] layer.
///
/// ```
/// use burn::module::Module;
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::layers::DenseConfig;
/// let device = Device::flex();
/// let dense = DenseConfig::new(4096, 10).init(&device);
/// assert_eq!(dense.num_params(), 40_970);
/// assert_eq!(dense.forward(Tensor::zeros([3, 4096], &device)).dims(), [3, 10]);
/// ```
#[derive(Config, Debug)]
pub struct DenseConfig {
    /// Input features.
    pub in_features: usize,
    /// Output features (Keras `units`).
    pub units: usize,
    /// Whether a bias is added.
    #[config(default = true)]
    pub bias: bool,
    /// Activation applied to the output.
    #[config(default = "Activation::Linear")]
    pub activation: Activation,
}

/// `y = act(x W + b)`.
#[derive(Module, Debug)]
pub struct Dense {
    /// Weights, `[in_features, units]`.
    pub weight: Param<Tensor<2>>,
    /// Bias, `[units]`.
    pub bias: Option<Param<Tensor<1>>>,
    #[module(skip)]
    activation: Activation,
}

impl DenseConfig {
    /// Creates the layer with Glorot-uniform weights and zero bias.
    pub fn init(&self, device: &Device) -> Dense {
        let weight = Initializer::XavierUniform { gain: 1.0 }.init_with(
            [self.in_features, self.units],
            Some(self.in_features),
            Some(self.units),
            device,
        );
        let bias = self
            .bias
            .then(|| Initializer::Zeros.init([self.units], device));
        Dense {
            weight,
            bias,
            activation: self.activation,
        }
    }
}

impl Dense {
    /// `[batch, in_features]` → `[batch, units]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight.val());
        let y = match &self.bias {
            Some(bias) => y + bias.val().unsqueeze_dim(0),
            None => y,
        };
        self.activation.apply(y)
    }
}
