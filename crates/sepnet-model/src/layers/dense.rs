//! Fully connected layer (Keras `Dense`).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use super::Activation;
use crate::kernels;

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
        let y = product(x, self.weight.val());
        let y = match &self.bias {
            Some(bias) => y + bias.val().unsqueeze_dim(0),
            None => y,
        };
        self.activation.apply(y)
    }
}

/// `x · w`; with fewer images than threads on the CPU, the weights' columns split across
/// threads ([`kernels::few_rows`]), where burn runs the product on one.
fn product(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    let ([rows, inner], cols) = (x.dims(), w.dims()[1]);
    let d = kernels::few_rows::Dims { rows, inner, cols };
    if kernels::applies_to(&x) && kernels::few_rows::applies(d) {
        return kernels::few_rows_matmul(x, w);
    }
    x.matmul(w)
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::tensor::TensorData;

    use super::*;

    /// One image through a layer large enough for the column split
    /// ([`kernels::few_rows::applies`]) and a few images through a small one, both against the
    /// definition.
    #[test]
    fn forward_matches_the_definition_on_one_image_and_several() {
        let device = Device::flex();
        for (rows, inner, units) in [(1, 600, 700), (3, 5, 4)] {
            let mut dense = DenseConfig::new(inner, units)
                .with_activation(Activation::Relu)
                .init(&device);
            let value = |i: usize, seed: usize| ((i * 7919 + seed) % 1000) as f32 / 500.0 - 1.0;
            let x: Vec<f32> = (0..rows * inner).map(|i| value(i, 1)).collect();
            let w: Vec<f32> = (0..inner * units).map(|i| value(i, 2) * 0.1).collect();
            let b: Vec<f32> = (0..units).map(|i| value(i, 3)).collect();
            dense.weight = Param::from_data(TensorData::new(w.clone(), [inner, units]), &device);
            dense.bias = Some(Param::from_data(
                TensorData::new(b.clone(), [units]),
                &device,
            ));
            let input = Tensor::from_data(TensorData::new(x.clone(), [rows, inner]), &device);
            let ours = dense
                .forward(input)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (o, &y) in ours.iter().enumerate() {
                let (r, u) = (o / units, o % units);
                let sum: f64 = (0..inner)
                    .map(|i| x[r * inner + i] as f64 * w[i * units + u] as f64)
                    .sum();
                let expected = (sum + b[u] as f64).max(0.0);
                assert!(
                    (y as f64 - expected).abs() < 1e-4 * (1.0 + expected.abs()),
                    "{o}"
                );
            }
        }
    }
}
