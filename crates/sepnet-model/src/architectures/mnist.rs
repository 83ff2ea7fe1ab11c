//! The MNIST article models (28×28×1, 10 classes; the head follows the dataset's classes).
//!
//! `full`: Conv2D(32, 3×3, same, relu), MaxPool 2, Conv2D(64, 3×3, same, relu), MaxPool 2,
//! Flatten, Dense 512 relu, Dense 10; `separable` and `hybrid` swap convolutions for
//! SeparableConv2D. The `literal` models reproduce what the published Keras code really built
//! when it wrote `DepthwiseConv2D(32, 3, padding='same')`: Keras reads the positional arguments
//! as kernel_size = 32 and strides = 3, so the "depthwise 3×3 with 32 filters" is a single
//! 32×32-kernel, stride-3 depthwise convolution with depth multiplier 1 and a bias.

use crate::spec::LayerSpec;

fn conv(filters: usize) -> String {
    format!("conv:{filters}:3:relu")
}

fn separable(filters: usize) -> String {
    format!("sep:{filters}:3:relu")
}

/// Keras's `DepthwiseConv2D(k, s, padding='same', activation='relu')` read literally.
fn literal_depthwise(kernel: usize) -> String {
    format!("dw:{kernel}:s=3:bias:relu")
}

fn network(first: String, second: String, classes: usize) -> Vec<LayerSpec> {
    let text =
        format!("{first},maxpool:2,{second},maxpool:2,flatten,dense:512:relu,dense:{classes}");
    super::layers_of(&text)
}

/// `mnist-full`.
pub fn full(classes: usize) -> Vec<LayerSpec> {
    network(conv(32), conv(64), classes)
}

/// `mnist-separable`: both convolutions separable.
pub fn separable_all(classes: usize) -> Vec<LayerSpec> {
    network(separable(32), separable(64), classes)
}

/// `mnist-hybrid`: first convolution full, second separable.
pub fn hybrid(classes: usize) -> Vec<LayerSpec> {
    network(conv(32), separable(64), classes)
}

/// `mnist-depthwise-literal`: both Conv2D replaced by the literal DepthwiseConv2D(32|64, 3).
pub fn depthwise_literal(classes: usize) -> Vec<LayerSpec> {
    network(literal_depthwise(32), literal_depthwise(64), classes)
}

/// `mnist-hybrid-literal`: only the second replaced.
pub fn hybrid_literal(classes: usize) -> Vec<LayerSpec> {
    network(conv(32), literal_depthwise(64), classes)
}
