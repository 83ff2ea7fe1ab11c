//! MobileNet v3 (Howard et al., 2019, "Searching for MobileNetV3", arXiv:1905.02244), Small and
//! Large: a hard-swish stem, the paper's Tables 1 and 2 of bottlenecks (expansion as Keras
//! writes it, output channels, kernel, stride, squeeze-and-excitation, activation) expanded by
//! one builder, a 1×1 convolution to 6× the last width, global pooling, a hard-swish layer of
//! 1024 (Small) or 1280 (Large) and the classifier. Widths follow Keras: `make_divisible(c · α)`.

use super::mobilenet::Layout;
use super::mobilenet_v2::make_divisible;
use crate::spec::LayerSpec;

/// Which of the two networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// MobileNetV3-Small.
    Small,
    /// MobileNetV3-Large.
    Large,
}

/// A bottleneck row: (expansion of the input width, output channels, kernel, stride,
/// squeeze-and-excitation, hard swish instead of ReLU).
type Row = (f64, usize, usize, usize, bool, bool);

/// Table 2 of the paper (Keras's `MobileNetV3Small` stack).
pub const SMALL: [Row; 11] = [
    (1.0, 16, 3, 2, true, false),
    (72.0 / 16.0, 24, 3, 2, false, false),
    (88.0 / 24.0, 24, 3, 1, false, false),
    (4.0, 40, 5, 2, true, true),
    (6.0, 40, 5, 1, true, true),
    (6.0, 40, 5, 1, true, true),
    (3.0, 48, 5, 1, true, true),
    (3.0, 48, 5, 1, true, true),
    (6.0, 96, 5, 2, true, true),
    (6.0, 96, 5, 1, true, true),
    (6.0, 96, 5, 1, true, true),
];

/// Table 1 of the paper (Keras's `MobileNetV3Large` stack).
pub const LARGE: [Row; 15] = [
    (1.0, 16, 3, 1, false, false),
    (4.0, 24, 3, 2, false, false),
    (3.0, 24, 3, 1, false, false),
    (3.0, 40, 5, 2, true, false),
    (3.0, 40, 5, 1, true, false),
    (3.0, 40, 5, 1, true, false),
    (6.0, 80, 3, 2, false, true),
    (2.5, 80, 3, 1, false, true),
    (2.3, 80, 3, 1, false, true),
    (2.3, 80, 3, 1, false, true),
    (6.0, 112, 3, 1, true, true),
    (6.0, 112, 3, 1, true, true),
    (6.0, 160, 5, 2, true, true),
    (6.0, 160, 5, 1, true, true),
    (6.0, 160, 5, 1, true, true),
];

/// The layers for a size, layout (the CIFAR one keeps 32×32 through the stem and the first
/// stride-2 bottleneck, ending at 4×4), width multiplier and class count.
pub fn layers(size: Size, layout: Layout, alpha: f64, classes: usize) -> Vec<LayerSpec> {
    let (rows, last_point): (&[Row], f64) = match size {
        Size::Small => (&SMALL, 1024.0),
        Size::Large => (&LARGE, 1280.0),
    };
    let cifar = layout == Layout::Cifar;
    let stem_stride = if cifar { "" } else { ":s=2" };
    let mut text = vec![format!("conv:16:3{stem_stride}:nobias,bn,hardswish")];
    let mut channels = 16;
    let mut first_stride_kept = !cifar;
    for &(expansion, c, k, s, se, hard) in rows {
        let filters = make_divisible(c as f64 * alpha);
        let expanded = make_divisible(channels as f64 * expansion);
        let stride = if s == 2 && !first_stride_kept {
            first_stride_kept = true;
            1
        } else {
            s
        };
        let mut block = format!("bneck:{filters}:{expanded}:{k}");
        block += if stride == 2 { ":s=2" } else { "" };
        block += if se { ":se=0.25" } else { "" };
        block += if hard { ":hardswish" } else { "" };
        text.push(block);
        channels = filters;
    }
    let last_conv = make_divisible(channels as f64 * 6.0);
    let last_point = if alpha > 1.0 {
        make_divisible(last_point * alpha)
    } else {
        last_point as usize
    };
    text.push(format!(
        "conv:{last_conv}:1:nobias,bn,hardswish,gap,dense:{last_point}:hardswish,dropout:0.2,dense:{classes}"
    ));
    super::layers_of(&text.join(","))
}
