//! VGG-style CIFAR-10 networks: blocks of `n × [3×3 same conv + ReLU]` each followed by
//! MaxPool 2, then Flatten and one Dense classifier.

use crate::layers::{Activation, DepthwiseFans, Padding, PoolKind};
use crate::spec::{LayerSpec, Window};

/// Which convolution each 3×3 layer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvStyle {
    /// Every convolution full.
    Full,
    /// Every convolution a SeparableConv2D.
    Separable,
    /// The first convolution full, the rest separable (a 3-channel input gains little from
    /// separating, and the first layer is a small share of the cost).
    Hybrid,
}

/// The article's block list: (filters, convolutions per block).
pub const CIFAR_BLOCKS: [(usize, usize); 3] = [(64, 2), (128, 2), (256, 2)];

/// The layers of a VGG network with the given blocks.
pub fn layers(blocks: &[(usize, usize)], style: ConvStyle, classes: usize) -> Vec<LayerSpec> {
    let mut layers = Vec::new();
    let mut first = true;
    for &(filters, count) in blocks {
        for _ in 0..count {
            let separable = match style {
                ConvStyle::Full => false,
                ConvStyle::Separable => true,
                ConvStyle::Hybrid => !first,
            };
            first = false;
            let window = Window::square(3);
            layers.push(if separable {
                LayerSpec::Separable {
                    filters,
                    window,
                    multiplier: 1,
                    bias: true,
                    activation: Activation::Relu,
                    fans: DepthwiseFans::Group,
                }
            } else {
                LayerSpec::Conv {
                    filters,
                    window,
                    bias: true,
                    activation: Activation::Relu,
                }
            });
        }
        layers.push(LayerSpec::Pool {
            kind: PoolKind::Max,
            window: Window::square(2).stride(2).padding(Padding::Valid),
        });
    }
    layers.push(LayerSpec::Flatten);
    layers.push(LayerSpec::Dense {
        units: classes,
        bias: true,
        activation: Activation::Linear,
    });
    layers
}
