//! [`LayerSpec`] → canonical text: defaults omitted, so that parsing it back gives the same spec.

use std::fmt;

use super::{LayerSpec, NetworkSpec, Window};
use crate::layers::{Activation, DepthwiseFans, Padding, PoolKind};

fn dims(d: [usize; 2]) -> String {
    if d[0] == d[1] {
        d[0].to_string()
    } else {
        format!("{}x{}", d[0], d[1])
    }
}

/// `:s=..:d=..:valid` for whatever differs from the defaults of the layer kind.
fn window_options(window: &Window, default_stride: [usize; 2], default_padding: Padding) -> String {
    let mut out = String::new();
    if window.stride != default_stride {
        out += &format!(":s={}", dims(window.stride));
    }
    if window.dilation != [1, 1] {
        out += &format!(":d={}", dims(window.dilation));
    }
    if window.padding != default_padding {
        out += &match window.padding {
            Padding::Same => ":same".to_string(),
            Padding::Valid => ":valid".to_string(),
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => {
                format!(":pad={top}/{bottom}/{left}/{right}")
            }
        };
    }
    out
}

fn activation(act: Activation) -> String {
    act.name()
        .map(|name| format!(":{name}"))
        .unwrap_or_default()
}

fn fans_option(fans: DepthwiseFans) -> String {
    match fans {
        DepthwiseFans::Group => String::new(),
        other => format!(":fans={other}"),
    }
}

fn multiplier(m: usize) -> String {
    if m == 1 {
        String::new()
    } else {
        format!(":m={m}")
    }
}

impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerSpec::Conv {
                filters,
                window,
                bias,
                activation: act,
            } => write!(
                f,
                "conv:{filters}:{}{}{}{}",
                dims(window.kernel),
                window_options(window, [1, 1], Padding::Same),
                if *bias { "" } else { ":nobias" },
                activation(*act)
            ),
            LayerSpec::Depthwise {
                window,
                multiplier: m,
                bias,
                activation: act,
                fans,
            } => write!(
                f,
                "dw:{}{}{}{}{}{}",
                dims(window.kernel),
                multiplier(*m),
                window_options(window, [1, 1], Padding::Same),
                if *bias { ":bias" } else { "" },
                activation(*act),
                fans_option(*fans)
            ),
            LayerSpec::Separable {
                filters,
                window,
                multiplier: m,
                bias,
                activation: act,
                fans,
            } => {
                write!(
                    f,
                    "sep:{filters}:{}{}{}{}{}{}",
                    dims(window.kernel),
                    multiplier(*m),
                    window_options(window, [1, 1], Padding::Same),
                    if *bias { "" } else { ":nobias" },
                    activation(*act),
                    fans_option(*fans)
                )
            }
            LayerSpec::DwSepBlock {
                filters,
                stride,
                activation: act,
                fans,
            } => {
                write!(f, "dwsep:{filters}")?;
                if *stride != 1 {
                    write!(f, ":s={stride}")?;
                }
                match act {
                    Activation::Relu => {}
                    Activation::Relu6 => write!(f, ":relu6")?,
                    Activation::Linear => write!(f, ":linear")?,
                }
                write!(f, "{}", fans_option(*fans))
            }
            LayerSpec::BatchNorm => write!(f, "bn"),
            LayerSpec::Activation(act) => write!(f, "{}", act.name().unwrap_or("linear")),
            LayerSpec::Pool { kind, window } => write!(
                f,
                "{}:{}{}",
                match kind {
                    PoolKind::Max => "maxpool",
                    PoolKind::Average => "avgpool",
                },
                dims(window.kernel),
                window_options(window, window.kernel, Padding::Valid)
            ),
            LayerSpec::GlobalAvgPool => write!(f, "gap"),
            LayerSpec::Flatten => write!(f, "flatten"),
            LayerSpec::Dense {
                units,
                bias,
                activation: act,
            } => write!(
                f,
                "dense:{units}{}{}",
                if *bias { "" } else { ":nobias" },
                activation(*act)
            ),
            LayerSpec::Dropout { rate } => write!(f, "dropout:{rate}"),
        }
    }
}

/// The layers' text form; the input size is not part of it (`--input HxWxC` gives it).
impl fmt::Display for NetworkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, layer) in self.layers.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{layer}")?;
        }
        Ok(())
    }
}
