//! MobileNet v2 (Sandler et al., 2018, "MobileNetV2: Inverted Residuals and Linear
//! Bottlenecks"): a stem convolution, a table of inverted residual stages (expansion t,
//! channels c, repeats n, stride s — the paper's Table 2) expanded by one builder, a 1×1
//! convolution to 1280 channels, global pooling and the classifier. Channels follow Keras:
//! `make_divisible(c · α, 8)`.

use super::mobilenet::Layout;
use crate::spec::LayerSpec;

/// Table 2 of the paper: (expansion t, output channels c, repeats n, first stride s).
pub const STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Keras's `_make_divisible(v, 8)`: the nearest multiple of 8, at least 8, and never more than
/// 10% below `v`.
///
/// ```
/// use sepnet_model::architectures::mobilenet_v2::make_divisible;
/// assert_eq!(make_divisible(32.0 * 0.35), 16);
/// assert_eq!(make_divisible(24.0 * 0.5), 16);
/// assert_eq!(make_divisible(1280.0 * 1.3), 1664);
/// ```
pub fn make_divisible(v: f64) -> usize {
    let rounded = (((v + 4.0) as usize) / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * v {
        rounded + 8
    } else {
        rounded
    }
}

/// The layers for a layout (the CIFAR one keeps 32×32 through the stem and the first stride-2
/// stage, ending at 4×4), width multiplier and class count.
pub fn layers(layout: Layout, alpha: f64, classes: usize) -> Vec<LayerSpec> {
    let stem_stride = match layout {
        Layout::ImageNet => ":s=2",
        Layout::Cifar => "",
    };
    let stem = make_divisible(32.0 * alpha);
    let mut text = vec![format!("conv:{stem}:3{stem_stride}:nobias,bn,relu6")];
    for (i, (t, c, n, s)) in STAGES.into_iter().enumerate() {
        let filters = make_divisible((c as f64 * alpha).trunc());
        let s = if layout == Layout::Cifar && i == 1 {
            1
        } else {
            s
        };
        for repeat in 0..n {
            let stride = if repeat == 0 && s != 1 {
                format!(":s={s}")
            } else {
                String::new()
            };
            let expansion = if t == 6 {
                String::new()
            } else {
                format!(":e={t}")
            };
            text.push(format!("ir:{filters}{expansion}{stride}"));
        }
    }
    let last = if alpha > 1.0 {
        make_divisible(1280.0 * alpha)
    } else {
        1280
    };
    text.push(format!("conv:{last}:1:nobias,bn,relu6,gap,dense:{classes}"));
    super::layers_of(&text.join(","))
}
