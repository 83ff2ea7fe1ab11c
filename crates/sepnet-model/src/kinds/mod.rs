//! Layer kinds. Everything about one kind of layer — its arguments, how its spec text parses
//! and prints, the shape it produces, what it costs in parameters and multiply-adds, and the
//! burn module it builds — sits in that kind's own file, behind [`LayerKind`]. The spec
//! parser, the shape inference, the summary and the network builder only dispatch, through
//! the one list of kinds below: adding a kind is a new file and a line in that list.

mod activation;
pub mod args;
mod batch_norm;
mod bneck;
mod conv;
mod dense;
mod depthwise;
mod dropout;
mod dwsep;
mod flatten;
mod gap;
mod inverted_residual;
mod mbconv;
mod mobile_block;
mod pool;
mod print;
mod se;
mod separable;

use std::fmt;

use burn::module::Module;
use burn::tensor::Device;

pub use activation::{ActivationLayer, ActivationSpec};
pub use batch_norm::BatchNormSpec;
pub use bneck::BneckSpec;
pub use conv::ConvSpec;
pub use dense::DenseSpec;
pub use depthwise::DepthwiseSpec;
pub use dropout::DropoutSpec;
pub use dwsep::DwSepSpec;
pub use flatten::{Flatten, FlattenSpec};
pub use gap::GapSpec;
pub use inverted_residual::{InvertedResidual, InvertedResidualSpec};
pub use mbconv::MbConvSpec;
pub use mobile_block::{Design, MobileBlock};
pub use pool::PoolSpec;
pub use se::{SeSpec, Squeeze, SqueezeExcite};
pub use separable::SeparableSpec;

use crate::export::Graph;
use crate::layers::DepthwiseFans;
use crate::network::Features;
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer};
use args::Args;

/// What every kind of spec layer provides.
pub trait LayerKind: Clone + fmt::Debug + PartialEq + Sized {
    /// The keywords that name it in a spec (`conv`); the first is how it prints.
    const KEYWORDS: &'static [&'static str];
    /// How many positional arguments it takes at most (`conv:32:3`: 2).
    const POSITIONAL: usize;
    /// The burn module it builds.
    type Module;
    /// Parses its arguments (the keyword is `args.kind`).
    fn parse(args: &Args) -> Result<Self, String>;
    /// Writes its canonical text: parsing it gives the same layer back.
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    /// The shape it produces from `input`, or why it does not fit.
    fn output(&self, input: Shape) -> Result<Shape, String>;
    /// Its row of the Keras-style summary: name, class, parameters, multiply-adds.
    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary;
    /// The initialised module for the shape it receives.
    fn build(&self, shape: &LayerShape, device: &Device) -> Self::Module;
    /// Its sliding window, if it has one (the summary warns about kernels larger than
    /// their input).
    fn window(&self) -> Option<&Window> {
        None
    }
    /// Sets the initialisation fans of its depthwise kernels, if it has any.
    fn set_fans(&mut self, _fans: DepthwiseFans) {}
    /// Writes the built layer as ONNX nodes, its weights named as the PyTorch twin names them.
    fn export(&self, module: &Self::Module, shape: &LayerShape, graph: &mut Graph);
}

/// A built layer's forward pass on an activation in flight.
pub trait Forward {
    /// Applies the layer.
    ///
    /// # Panics
    /// When `x` has the wrong rank for the layer; [`crate::Network::new`] rules that out.
    fn forward(&self, x: Features) -> Features;
}

/// Declares the kinds: generates [`LayerSpec`] (a layer as written), [`Layer`] (as built) and
/// the dispatch from each to its kind.
macro_rules! kinds {
    ($($variant:ident($spec:ty => $module:ty)),* $(,)?) => {
        /// One layer of a network, as written in a spec.
        #[derive(Clone, Debug, PartialEq)]
        pub enum LayerSpec {
            $(
                #[allow(missing_docs)]
                $variant($spec),
            )*
        }

        /// Any layer a spec can name, built.
        #[derive(Module, Debug)]
        #[allow(clippy::large_enum_variant)]
        pub enum Layer {
            $(
                #[allow(missing_docs)]
                $variant($module),
            )*
        }

        /// Every keyword a spec may start a layer with.
        pub const KEYWORDS: &[&[&str]] = &[$(<$spec as LayerKind>::KEYWORDS),*];

        impl LayerSpec {
            /// Parses one layer's text (`conv:32:3:s=2`), or `None` for an unknown keyword.
            pub fn parse_layer(token: &str) -> Option<Result<LayerSpec, String>> {
                let keyword = token.split(':').next().unwrap_or_default();
                $(
                    if <$spec as LayerKind>::KEYWORDS.contains(&keyword) {
                        let args = Args::split(token, <$spec as LayerKind>::POSITIONAL);
                        return Some(<$spec as LayerKind>::parse(&args).map(LayerSpec::$variant));
                    }
                )*
                None
            }

            /// The shape this layer produces from `input`, or why it does not fit.
            pub fn output(&self, input: Shape) -> Result<Shape, String> {
                match self { $(LayerSpec::$variant(k) => k.output(input),)* }
            }

            pub(crate) fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
                match self { $(LayerSpec::$variant(k) => k.summarise(shape, namer),)* }
            }

            pub(crate) fn build(&self, shape: &LayerShape, device: &Device) -> Layer {
                match self { $(LayerSpec::$variant(k) => Layer::$variant(k.build(shape, device)),)* }
            }

            /// The layer's sliding window, if it has one.
            pub fn window(&self) -> Option<&Window> {
                match self { $(LayerSpec::$variant(k) => k.window(),)* }
            }

            pub(crate) fn set_fans(&mut self, fans: DepthwiseFans) {
                match self { $(LayerSpec::$variant(k) => k.set_fans(fans),)* }
            }

            pub(crate) fn export(&self, layer: &Layer, shape: &LayerShape, graph: &mut Graph) -> Result<(), String> {
                match (self, layer) {
                    $((LayerSpec::$variant(k), Layer::$variant(m)) => k.export(m, shape, graph),)*
                    _ => return Err(format!("layer `{self}` was built as another kind")),
                }
                Ok(())
            }
        }

        impl fmt::Display for LayerSpec {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $(LayerSpec::$variant(k) => k.write(f),)* }
            }
        }

        impl Layer {
            /// Applies this one layer (what [`crate::Network::forward`] folds over;
            /// `sepnet bench --layers` times each call).
            ///
            /// # Panics
            /// When `x` has the wrong rank for the layer (e.g. a flat tensor into a
            /// convolution); [`crate::Network::new`] rules this out for a network's layers.
            pub fn forward(&self, x: Features) -> Features {
                match self { $(Layer::$variant(l) => Forward::forward(l, x),)* }
            }
        }
    };
}

kinds! {
    Conv(ConvSpec => crate::layers::Conv2d),
    Depthwise(DepthwiseSpec => crate::layers::DepthwiseConv2d),
    Separable(SeparableSpec => crate::layers::SeparableConv2d),
    DwSep(DwSepSpec => crate::layers::DepthwiseSeparableBlock),
    InvertedResidual(InvertedResidualSpec => InvertedResidual),
    SqueezeExcite(SeSpec => SqueezeExcite),
    Bneck(BneckSpec => MobileBlock),
    MbConv(MbConvSpec => MobileBlock),
    BatchNorm(BatchNormSpec => crate::layers::BatchNorm),
    Activation(ActivationSpec => ActivationLayer),
    Pool(PoolSpec => crate::layers::Pool2d),
    GlobalAvgPool(GapSpec => crate::layers::GlobalAvgPool),
    Flatten(FlattenSpec => Flatten),
    Dense(DenseSpec => crate::layers::Dense),
    Dropout(DropoutSpec => burn::nn::Dropout),
}

/// The spatial `[h, w, c]` a layer needs, or the error for a flat input.
pub(crate) fn spatial(shape: Shape, what: &str) -> Result<[usize; 3], String> {
    match shape {
        Shape::Spatial(s) => Ok(s),
        Shape::Flat(n) => Err(format!(
            "{what} needs a spatial input but receives a flat vector of {n}"
        )),
    }
}

/// The output `[h, w]` of a window on `[h, w, _]`, or why no window fits.
pub(crate) fn windowed(
    window: &Window,
    [h, w, _]: [usize; 3],
    what: &str,
) -> Result<[usize; 2], String> {
    window
        .padding
        .output_size_2d([h, w], window.kernel, window.stride, window.dilation)
        .ok_or_else(|| {
            format!(
                "{what} window {}×{} (stride {}×{}, dilation {}×{}, {:?} padding) does not fit the {h}×{w} input",
                window.kernel[0], window.kernel[1], window.stride[0], window.stride[1],
                window.dilation[0], window.dilation[1], window.padding
            )
        })
}

/// `a × b` for parameter and MAC counts: saturates instead of overflowing (a network that
/// large is refused anyway, by the memory check before training).
pub(crate) fn mul(a: u64, b: u64) -> u64 {
    a.saturating_mul(b)
}

/// `channels × multiplier`, refused when absurd.
pub(crate) fn channels_times(channels: usize, factor: usize) -> Result<usize, String> {
    channels
        .checked_mul(factor)
        .filter(|&c| c <= crate::spec::MAX_ACTIVATION)
        .ok_or_else(|| {
            format!("{channels} channels × {factor} is more channels than sepnet accepts")
        })
}
