//! One builder that turns any [`NetworkSpec`] into a burn module.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::blocked::Flow;
use crate::classifier::{Classifier, NonFinite, draw_weights_now, first_non_finite};
use crate::fake_quant::FakeQuant;
pub use crate::kinds::Layer;
use crate::spec::{NetworkSpec, Shape, ShapeError, infer_shapes};

/// An activation in flight: spatial until `flatten`/`gap`, flat after.
#[derive(Clone, Debug)]
pub enum Features {
    /// `[batch, channels, height, width]`.
    Spatial(Tensor<4>),
    /// `[batch, features]`.
    Flat(Tensor<2>),
}

impl Features {
    /// Applies a layer that takes and gives spatial activations.
    ///
    /// # Panics
    /// On a flat activation; [`Network::new`] rules that out for a network's layers.
    pub fn map_spatial(self, layer: impl FnOnce(Tensor<4>) -> Tensor<4>) -> Features {
        match self {
            Features::Spatial(t) => Features::Spatial(layer(t)),
            Features::Flat(_) => panic!("a spatial layer received a flat input"),
        }
    }
}

/// A network built from a spec: images `[batch, c, h, w]` in, logits `[batch, classes]` out.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::{Network, spec::NetworkSpec};
/// let device = Device::flex();
/// let spec = NetworkSpec::parse("conv:8:3:relu,pool,flatten,dense:10", [28, 28, 1]).unwrap();
/// let net = Network::new(&spec, &device).unwrap();
/// assert_eq!(net.forward(Tensor::zeros([4, 1, 28, 28], &device)).dims(), [4, 10]);
/// ```
#[derive(Module, Debug)]
pub struct Network {
    /// The layers in order.
    pub layers: Vec<Layer>,
    /// Quantization-aware training: each forward pass runs on the weights int8 will hold.
    #[module(skip)]
    fake_quant: Option<FakeQuant>,
}

impl Network {
    /// Builds the network a spec describes, its weights drawn now from the device's RNG (so
    /// they depend only on the seed in effect at this call).
    pub fn new(spec: &NetworkSpec, device: &Device) -> Result<Network, ShapeError> {
        let shapes = infer_shapes(spec)?;
        if !matches!(shapes.last().map(|s| s.output), Some(Shape::Flat(_))) {
            return Err(ShapeError {
                layer: spec.layers.len().saturating_sub(1),
                message: "a classifier must end with a flat output (`...,flatten,dense:N` or `...,gap,dense:N`)".into(),
            });
        }
        let layers = spec
            .layers
            .iter()
            .zip(&shapes)
            .map(|(layer, shape)| layer.build(shape, device))
            .collect();
        Ok(draw_weights_now(Network {
            layers,
            fake_quant: None,
        }))
    }

    /// This network with quantization-aware training on (`Some`) or off ([`FakeQuant`]).
    pub fn with_fake_quant(self, fake_quant: Option<FakeQuant>) -> Network {
        Network { fake_quant, ..self }
    }

    /// How its forward pass rounds the weights, if it does.
    pub fn fake_quant(&self) -> Option<FakeQuant> {
        self.fake_quant
    }

    /// `[batch, c, h, w]` → logits `[batch, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        if let Some(fq) = &self.fake_quant {
            let mut x = Features::Spatial(images);
            for (i, layer) in self.layers.iter().enumerate() {
                x = fq.layer(layer, self.layers.get(i + 1)).forward(x);
            }
            return flat(x);
        }
        // Runs of convolutions and pools the direct kernel takes stay in its blocked layout;
        // a BatchNorm and the activation layer after it run as one.
        let (mut x, mut i) = (Flow::new(images), 0);
        while i < self.layers.len() {
            let (next, taken) = x.through(&self.layers[i..]);
            (x, i) = (next, i + taken);
        }
        flat(x.into_features())
    }
}

/// The logits a network's last layer gives.
fn flat(features: Features) -> Tensor<2> {
    match features {
        Features::Flat(logits) => logits,
        Features::Spatial(_) => unreachable!("Network::new checked the output is flat"),
    }
}

impl Classifier for Network {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        Network::forward(self, images)
    }
}

impl Network {
    /// The first parameter or BatchNorm statistic that is not finite, if any
    /// ([`first_non_finite`]); its `layer` is the index of the spec's layer.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use sepnet_model::{Network, spec::NetworkSpec};
    /// let spec = NetworkSpec::parse("conv:4:3,bn,flatten,dense:2", [6, 6, 1]).unwrap();
    /// let net = Network::new(&spec, &Device::flex()).unwrap();
    /// assert_eq!(net.first_non_finite(), None);
    /// ```
    pub fn first_non_finite(&self) -> Option<NonFinite> {
        first_non_finite(self)
    }
}
