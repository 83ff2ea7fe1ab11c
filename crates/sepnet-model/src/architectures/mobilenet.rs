//! MobileNet v1 (Howard et al., 2017) and its full-convolution twin ("Conv MobileNet").
//!
//! The body is a table of (filters, stride) block specs expanded by one builder, as in the
//! paper's Table 1. Width multiplier α scales every layer's channels to `int(c · α)` (as Keras
//! does); the resolution multiplier ρ scales the input side.

use crate::spec::LayerSpec;

/// Table 1 of the paper after the stem: (pointwise filters, depthwise stride) of the 13
/// depthwise separable blocks. (The paper's last row prints s2; every implementation uses s1.)
pub const BLOCKS: [(usize, usize); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];

/// Where the network is meant to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// 224×224×3, stem stride 2, 1000 classes: 7×7 before pooling.
    ImageNet,
    /// 32×32×3, stem stride 1, 10 classes: the four stride-2 blocks end at 2×2 before pooling.
    Cifar,
}

impl Layout {
    /// Input side at ρ = 1.
    pub fn base_resolution(&self) -> usize {
        match self {
            Layout::ImageNet => 224,
            Layout::Cifar => 32,
        }
    }

    fn stem_stride(&self) -> usize {
        match self {
            Layout::ImageNet => 2,
            Layout::Cifar => 1,
        }
    }
}

/// `int(c · α)`, never below 1.
pub fn scale(channels: usize, alpha: f64) -> usize {
    ((channels as f64 * alpha) as usize).max(1)
}

/// A full convolution, BatchNorm and ReLU: the stem, and each block of the full twin.
fn conv_bn_relu(filters: usize, kernel: usize, stride: usize) -> String {
    let stride = if stride == 1 {
        String::new()
    } else {
        format!(":s={stride}")
    };
    format!("conv:{filters}:{kernel}{stride}:nobias,bn,relu")
}

/// The layers for a layout, width multiplier and class count; `full` swaps every depthwise
/// separable block for a full 3×3 convolution (the paper's "Conv MobileNet").
pub fn layers(layout: Layout, alpha: f64, classes: usize, full: bool) -> Vec<LayerSpec> {
    let mut text = vec![conv_bn_relu(scale(32, alpha), 3, layout.stem_stride())];
    for (filters, stride) in BLOCKS {
        let filters = scale(filters, alpha);
        text.push(if full {
            conv_bn_relu(filters, 3, stride)
        } else if stride == 1 {
            format!("dwsep:{filters}")
        } else {
            format!("dwsep:{filters}:s={stride}")
        });
    }
    text.push(format!("gap,dropout:0.001,dense:{classes}"));
    super::layers_of(&text.join(","))
}
