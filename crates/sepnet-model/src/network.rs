//! One builder that turns any [`NetworkSpec`] into a burn module.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

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
        let network = Network { layers };
        network.visit(&mut DrawNow);
        Ok(network)
    }

    /// `[batch, c, h, w]` → logits `[batch, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let features = self
            .layers
            .iter()
            .fold(Features::Spatial(images), |x, layer| layer.forward(x));
        match features {
            Features::Flat(logits) => logits,
            Features::Spatial(_) => unreachable!("Network::new checked the output is flat"),
        }
    }
}

/// A parameter (or BatchNorm statistic) holding a NaN or an infinity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonFinite {
    /// Index of the layer in the network (and its spec).
    pub layer: usize,
    /// The parameter's path in the module, e.g. `layers.3.Separable.pointwise.weight`.
    pub path: String,
}

impl Network {
    /// The first parameter or BatchNorm statistic that is not finite, if any: one read from the
    /// device for the whole network (each tensor is summed there; a NaN or an infinity
    /// anywhere makes its sum non-finite).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use sepnet_model::{Network, spec::NetworkSpec};
    /// let spec = NetworkSpec::parse("conv:4:3,bn,flatten,dense:2", [6, 6, 1]).unwrap();
    /// let net = Network::new(&spec, &Device::flex()).unwrap();
    /// assert_eq!(net.first_non_finite(), None);
    /// ```
    pub fn first_non_finite(&self) -> Option<NonFinite> {
        let mut sums = Sums::default();
        self.visit(&mut sums);
        if sums.sums.is_empty() {
            return None;
        }
        let values = Tensor::cat(sums.sums, 0)
            .into_data()
            .try_to_vec::<f32>()
            .ok()?;
        let at = values.iter().position(|v| !v.is_finite())?;
        let path = sums.paths.swap_remove(at);
        let layer = path
            .split('.')
            .nth(1)
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        Some(NonFinite { layer, path })
    }
}

/// Collects each float tensor's sum (still on the device) and its module path.
#[derive(Default)]
struct Sums {
    at: Vec<String>,
    paths: Vec<String>,
    sums: Vec<Tensor<1>>,
}

impl ModuleVisitor for Sums {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.at.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.paths.push(self.at.join("."));
        self.sums.push(param.val().detach().sum());
    }
}

/// Draws every parameter's initial value. burn draws a parameter lazily, at its first use,
/// from whatever the device's RNG holds then: a training run's first step, which reseeds the
/// RNG for dropout. A network saved before that step (a run stopped before it) would then hold
/// other weights than the ones an unbroken run trains.
struct DrawNow;

impl ModuleVisitor for DrawNow {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        param.val();
    }
}
