//! What sepnet trains: any burn module that maps images to logits.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// A burn module that maps images `[batch, c, h, w]` to logits `[batch, classes]`: what
/// sepnet's trainer, resume, evaluation, `compare` and `bench` take. A [`crate::Network`]
/// built from a spec is one; a module of a user's own is another in a few lines:
///
/// ```
/// use burn::module::Module;
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::layers::{Conv2d, Conv2dConfig, Dense, DenseConfig, GlobalAvgPool};
/// use sepnet_model::{Activation, Classifier};
///
/// #[derive(Module, Debug)]
/// struct Tiny {
///     conv: Conv2d,
///     head: Dense,
/// }
///
/// impl Classifier for Tiny {
///     fn forward(&self, images: Tensor<4>) -> Tensor<2> {
///         self.head.forward(GlobalAvgPool.forward(self.conv.forward(images)))
///     }
/// }
///
/// let device = Device::flex();
/// let tiny = Tiny {
///     conv: Conv2dConfig::new(1, 8, [3, 3]).with_activation(Activation::Relu).init(&device),
///     head: DenseConfig::new(8, 10).init(&device),
/// };
/// assert_eq!(tiny.forward(Tensor::zeros([2, 1, 28, 28], &device)).dims(), [2, 10]);
/// assert_eq!(tiny.num_params(), 8 * 9 + 8 + 8 * 10 + 10);
/// ```
///
/// Dropout and BatchNorm follow burn's rules: they train on an autodiff device and infer
/// after [`Module::valid`], so a module needs nothing more to train and evaluate correctly.
pub trait Classifier: Module + 'static {
    /// Images `[batch, c, h, w]` → logits `[batch, classes]`.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;
}

/// A parameter (or BatchNorm statistic) holding a NaN or an infinity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonFinite {
    /// Index of the layer in a spec-built network (the number after the module's first path
    /// segment; 0 when the path has none).
    pub layer: usize,
    /// The parameter's path in the module, e.g. `layers.3.Separable.pointwise.weight`.
    pub path: String,
}

/// The first parameter or BatchNorm statistic of `module` that is not finite, if any: one
/// read from the device for the whole module (each tensor is summed there; a NaN or an
/// infinity anywhere makes its sum non-finite).
///
/// ```
/// use burn::tensor::Device;
/// use sepnet_model::{Network, first_non_finite, spec::NetworkSpec};
/// let spec = NetworkSpec::parse("conv:4:3,bn,flatten,dense:2", [6, 6, 1]).unwrap();
/// let net = Network::new(&spec, &Device::flex()).unwrap();
/// assert_eq!(first_non_finite(&net), None);
/// ```
pub fn first_non_finite<M: Module>(module: &M) -> Option<NonFinite> {
    let mut sums = Sums::default();
    module.visit(&mut sums);
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

/// Draws every parameter's initial value now. burn draws a parameter lazily, at its first use,
/// from whatever the device's RNG holds then: a training run's first step, which reseeds the
/// RNG for dropout. A module saved before that step (a run stopped before it) would then hold
/// other weights than the ones an unbroken run trains. Returns the module.
pub fn draw_weights_now<M: Module>(module: M) -> M {
    struct DrawNow;
    impl ModuleVisitor for DrawNow {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            param.val();
        }
    }
    module.visit(&mut DrawNow);
    module
}
