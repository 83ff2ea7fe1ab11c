//! The canonical text of a layer's arguments: what equals the default is left out, so that
//! parsing the text gives the same spec back.

use crate::layers::{Activation, DepthwiseFans, Padding};
use crate::spec::Window;

/// `3` for `[3, 3]`, `3x5` otherwise.
pub fn dims(d: [usize; 2]) -> String {
    if d[0] == d[1] {
        d[0].to_string()
    } else {
        format!("{}x{}", d[0], d[1])
    }
}

/// `:s=..:d=..:valid` for whatever differs from the kind's defaults.
pub fn window_options(
    window: &Window,
    default_stride: [usize; 2],
    default_padding: Padding,
) -> String {
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
            } => format!(":pad={top}/{bottom}/{left}/{right}"),
        };
    }
    out
}

/// `:relu` / `:relu6`, or nothing for no activation.
pub fn activation(act: Activation) -> String {
    act.name()
        .map(|name| format!(":{name}"))
        .unwrap_or_default()
}

/// `:fans=keras`, or nothing for the default.
pub fn fans(fans: DepthwiseFans) -> String {
    match fans {
        DepthwiseFans::Group => String::new(),
        other => format!(":fans={other}"),
    }
}

/// `:m=2`, or nothing for 1.
pub fn multiplier(m: usize) -> String {
    if m == 1 {
        String::new()
    } else {
        format!(":m={m}")
    }
}

/// `:nobias` when a kind that has a bias by default has none.
pub fn no_bias(bias: bool) -> &'static str {
    if bias { "" } else { ":nobias" }
}
