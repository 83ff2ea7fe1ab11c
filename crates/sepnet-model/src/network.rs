//! One builder that turns any [`NetworkSpec`] into a burn module.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};

use crate::layers::{
    Activation, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Dense, DenseConfig,
    DepthwiseConv2d, DepthwiseConv2dConfig, DepthwiseSeparableBlock, DepthwiseSeparableBlockConfig,
    GlobalAvgPool, Pool2d, Pool2dConfig, SeparableConv2d, SeparableConv2dConfig,
};
use crate::spec::{LayerSpec, NetworkSpec, Shape, ShapeError, infer_shapes};

/// A standalone activation layer.
#[derive(Module, Debug)]
pub struct ActivationLayer {
    #[module(skip)]
    activation: Activation,
}

/// `[batch, c, h, w]` → `[batch, c·h·w]`.
#[derive(Module, Debug, Default)]
pub struct Flatten;

/// Any layer a spec can name.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Layer {
    /// Full convolution.
    Conv(Conv2d),
    /// Depthwise convolution.
    Depthwise(DepthwiseConv2d),
    /// Depthwise then pointwise.
    Separable(SeparableConv2d),
    /// MobileNet block.
    Block(DepthwiseSeparableBlock),
    /// Batch normalisation.
    BatchNorm(BatchNorm),
    /// Activation.
    Activation(ActivationLayer),
    /// Max / average pooling.
    Pool(Pool2d),
    /// Global average pooling.
    GlobalAvgPool(GlobalAvgPool),
    /// Flatten.
    Flatten(Flatten),
    /// Fully connected.
    Dense(Dense),
    /// Dropout.
    Dropout(Dropout),
}

/// An activation in flight: spatial until `flatten`/`gap`, flat after.
#[derive(Clone, Debug)]
pub enum Features {
    /// `[batch, channels, height, width]`.
    Spatial(Tensor<4>),
    /// `[batch, features]`.
    Flat(Tensor<2>),
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
    /// Builds (and randomly initialises) the network a spec describes.
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
            .map(|(layer, shape)| build_layer(layer, shape.input.channels(), device))
            .collect();
        Ok(Network { layers })
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

impl Layer {
    /// Applies this one layer (what [`Network::forward`] folds over; `sepnet bench --layers`
    /// times each call).
    ///
    /// # Panics
    /// When `x` has the wrong rank for the layer (e.g. a flat tensor into a convolution);
    /// [`Network::new`] rules this out for the layers of a network.
    pub fn forward(&self, x: Features) -> Features {
        match (self, x) {
            (Layer::Conv(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Layer::Depthwise(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Layer::Separable(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Layer::Block(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Layer::BatchNorm(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Layer::BatchNorm(l), Features::Flat(t)) => Features::Flat(l.inner.forward(t)),
            (Layer::Activation(l), Features::Spatial(t)) => {
                Features::Spatial(l.activation.apply(t))
            }
            (Layer::Activation(l), Features::Flat(t)) => Features::Flat(l.activation.apply(t)),
            (Layer::Pool(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Layer::GlobalAvgPool(l), Features::Spatial(t)) => Features::Flat(l.forward(t)),
            (Layer::Flatten(_), Features::Spatial(t)) => Features::Flat(t.flatten(1, 3)),
            (Layer::Dense(l), Features::Flat(t)) => Features::Flat(l.forward(t)),
            (Layer::Dropout(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Layer::Dropout(l), Features::Flat(t)) => Features::Flat(l.forward(t)),
            (layer, _) => panic!("layer {layer:?} received an input of the wrong rank"),
        }
    }
}

fn build_layer(layer: &LayerSpec, c_in: usize, device: &Device) -> Layer {
    match layer {
        LayerSpec::Conv {
            filters,
            window,
            bias,
            activation,
        } => Layer::Conv(
            Conv2dConfig::new(c_in, *filters, window.kernel)
                .with_stride(window.stride)
                .with_dilation(window.dilation)
                .with_padding(window.padding)
                .with_bias(*bias)
                .with_activation(*activation)
                .init(device),
        ),
        LayerSpec::Depthwise {
            window,
            multiplier,
            bias,
            activation,
            fans,
        } => Layer::Depthwise(
            DepthwiseConv2dConfig::new(c_in, window.kernel)
                .with_depth_multiplier(*multiplier)
                .with_stride(window.stride)
                .with_dilation(window.dilation)
                .with_padding(window.padding)
                .with_bias(*bias)
                .with_activation(*activation)
                .with_fans(*fans)
                .init(device),
        ),
        LayerSpec::Separable {
            filters,
            window,
            multiplier,
            bias,
            activation,
            fans,
        } => Layer::Separable(
            SeparableConv2dConfig::new(c_in, *filters, window.kernel)
                .with_depth_multiplier(*multiplier)
                .with_stride(window.stride)
                .with_dilation(window.dilation)
                .with_padding(window.padding)
                .with_bias(*bias)
                .with_activation(*activation)
                .with_fans(*fans)
                .init(device),
        ),
        LayerSpec::DwSepBlock {
            filters,
            stride,
            activation,
            fans,
        } => Layer::Block(
            DepthwiseSeparableBlockConfig::new(c_in, *filters)
                .with_stride(*stride)
                .with_activation(*activation)
                .with_fans(*fans)
                .init(device),
        ),
        LayerSpec::BatchNorm => Layer::BatchNorm(BatchNormConfig::new(c_in).init(device)),
        LayerSpec::Activation(activation) => Layer::Activation(ActivationLayer {
            activation: *activation,
        }),
        LayerSpec::Pool { kind, window } => Layer::Pool(
            Pool2dConfig::new(*kind, window.kernel)
                .with_stride(Some(window.stride))
                .with_padding(window.padding)
                .init(device),
        ),
        LayerSpec::GlobalAvgPool => Layer::GlobalAvgPool(GlobalAvgPool),
        LayerSpec::Flatten => Layer::Flatten(Flatten),
        LayerSpec::Dense {
            units,
            bias,
            activation,
        } => Layer::Dense(
            DenseConfig::new(c_in, *units)
                .with_bias(*bias)
                .with_activation(*activation)
                .init(device),
        ),
        LayerSpec::Dropout { rate } => Layer::Dropout(DropoutConfig::new(*rate).init()),
    }
}
