//! VGG-style CIFAR-10 networks: blocks of `n × [3×3 same conv + ReLU]` each followed by
//! MaxPool 2, then Flatten and one Dense classifier.

use crate::spec::LayerSpec;

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

/// The layers: each block's convolutions as `style` says, a 2×2 max pool after each block,
/// then flatten and the classifier — one line of spec text per block.
pub fn layers(blocks: &[(usize, usize)], style: ConvStyle, classes: usize) -> Vec<LayerSpec> {
    let mut text = Vec::new();
    let mut first = true;
    for &(filters, count) in blocks {
        for _ in 0..count {
            let separable = match style {
                ConvStyle::Full => false,
                ConvStyle::Separable => true,
                ConvStyle::Hybrid => !first,
            };
            first = false;
            let kind = if separable { "sep" } else { "conv" };
            text.push(format!("{kind}:{filters}:3:relu"));
        }
        text.push("maxpool:2".into());
    }
    text.push(format!("flatten,dense:{classes}"));
    super::layers_of(&text.join(","))
}
