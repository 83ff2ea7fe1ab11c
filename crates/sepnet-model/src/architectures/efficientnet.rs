//! EfficientNet-B0 (Tan & Le, 2019, "EfficientNet: Rethinking Model Scaling for Convolutional
//! Neural Networks", arXiv:1905.11946): a SiLU stem, the paper's Table 1 of MBConv stages
//! (kernel, repeats, output channels, expansion, first stride; squeeze-and-excitation 0.25 of
//! each block's input) expanded by one builder, a 1×1 convolution to 1280, global pooling,
//! dropout and the classifier. Widths follow Keras's `round_filters`: `make_divisible(c · α)`.
//! Keras's stochastic depth (training only, no weights) is not modelled.

use super::mobilenet::Layout;
use super::mobilenet_v2::make_divisible;
use crate::spec::LayerSpec;

/// Table 1 of the paper: (kernel, repeats, output channels, expansion, first stride).
pub const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (3, 1, 16, 1, 1),
    (3, 2, 24, 6, 2),
    (5, 2, 40, 6, 2),
    (3, 3, 80, 6, 2),
    (5, 3, 112, 6, 1),
    (5, 4, 192, 6, 2),
    (3, 1, 320, 6, 1),
];

/// The layers for a layout (the CIFAR one keeps 32×32 through the stem and the first stride-2
/// stage, ending at 4×4), width multiplier and class count.
pub fn layers(layout: Layout, alpha: f64, classes: usize) -> Vec<LayerSpec> {
    let cifar = layout == Layout::Cifar;
    let stem_stride = if cifar { "" } else { ":s=2" };
    let stem = make_divisible(32.0 * alpha);
    let mut text = vec![format!("conv:{stem}:3{stem_stride}:nobias,bn,silu")];
    let mut first_stride_kept = !cifar;
    for (k, repeats, c, e, s) in STAGES {
        let filters = make_divisible(c as f64 * alpha);
        for repeat in 0..repeats {
            let stride = match (repeat, s) {
                (0, 2) if !first_stride_kept => {
                    first_stride_kept = true;
                    1
                }
                (0, s) => s,
                _ => 1,
            };
            let mut block = format!("mbconv:{filters}:{k}");
            block += if e == 6 { "" } else { ":e=1" };
            block += if stride == 2 { ":s=2" } else { "" };
            text.push(block + ":se=0.25");
        }
    }
    let top = make_divisible(1280.0 * alpha);
    text.push(format!(
        "conv:{top}:1:nobias,bn,silu,gap,dropout:0.2,dense:{classes}"
    ));
    super::layers_of(&text.join(","))
}
