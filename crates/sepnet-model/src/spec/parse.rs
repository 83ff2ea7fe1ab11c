//! Text → [`LayerSpec`]s, with errors that point at the offending token.

use std::fmt;

use super::shape::ShapeError;
use super::{LayerSpec, Window};
use crate::layers::{Activation, DepthwiseFans, Padding, PoolKind};

/// A spec that could not be parsed or does not fit its input; `Display` underlines the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The whole spec text.
    pub spec: String,
    /// Byte range of the offending token within `spec`.
    pub span: (usize, usize),
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = self.span;
        let token = &self.spec[start..end];
        writeln!(
            f,
            "invalid architecture spec at `{token}`: {}",
            self.message
        )?;
        writeln!(f, "  {}", self.spec)?;
        let pad = self.spec[..start].chars().count();
        let width = token.chars().count().max(1);
        write!(f, "  {}{}", " ".repeat(pad), "^".repeat(width))
    }
}

impl std::error::Error for SpecError {}

/// The `(start, end)` byte range of every comma-separated token, whitespace trimmed.
fn token_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ',')))
    {
        if c == ',' {
            let raw = &text[start..i];
            let lead = raw.len() - raw.trim_start().len();
            let trail = raw.len() - raw.trim_end().len();
            spans.push((start + lead, i - trail.min(raw.len() - lead)));
            start = i + 1;
        }
    }
    spans
}

/// Parses every layer of a spec.
pub(crate) fn parse_layers(text: &str) -> Result<Vec<LayerSpec>, SpecError> {
    let error = |span: (usize, usize), message: String| SpecError {
        spec: text.to_string(),
        span,
        message,
    };
    if text.trim().is_empty() {
        return Err(error(
            (0, text.len()),
            "the spec is empty; expected layers such as `conv:32:3,flatten,dense:10`".into(),
        ));
    }
    token_spans(text)
        .into_iter()
        .map(|span| parse_layer(&text[span.0..span.1]).map_err(|message| error(span, message)))
        .collect()
}

/// Points a shape error (which knows the layer index) at that layer's token.
pub(crate) fn locate_shape_error(text: &str, err: ShapeError) -> SpecError {
    let spans = token_spans(text);
    let span = spans.get(err.layer).copied().unwrap_or((0, text.len()));
    SpecError {
        spec: text.to_string(),
        span,
        message: err.message,
    }
}

/// Options that may follow the positional arguments of a layer.
#[derive(Default)]
struct Options {
    stride: Option<[usize; 2]>,
    dilation: Option<[usize; 2]>,
    padding: Option<Padding>,
    multiplier: Option<usize>,
    fans: Option<DepthwiseFans>,
    bias: Option<bool>,
    activation: Option<Activation>,
}

/// Which options a layer kind accepts.
#[derive(Clone, Copy)]
struct Accepts {
    stride: bool,
    dilation: bool,
    padding: bool,
    multiplier: bool,
    fans: bool,
    bias: bool,
    activation: bool,
}

const NOTHING: Accepts = Accepts {
    stride: false,
    dilation: false,
    padding: false,
    multiplier: false,
    fans: false,
    bias: false,
    activation: false,
};
const CONV: Accepts = Accepts {
    stride: true,
    dilation: true,
    padding: true,
    multiplier: false,
    fans: false,
    bias: true,
    activation: true,
};
const DEPTHWISE: Accepts = Accepts {
    multiplier: true,
    fans: true,
    ..CONV
};
const POOL: Accepts = Accepts {
    stride: true,
    padding: true,
    ..NOTHING
};
const DENSE: Accepts = Accepts {
    bias: true,
    activation: true,
    ..NOTHING
};
const BLOCK: Accepts = Accepts {
    stride: true,
    fans: true,
    activation: true,
    ..NOTHING
};

fn parse_layer(token: &str) -> Result<LayerSpec, String> {
    if token.is_empty() {
        return Err("empty layer (two commas in a row, or a trailing comma?)".into());
    }
    let mut parts = token.split(':');
    let kind = parts.next().unwrap_or_default();
    let max_positional = match kind {
        "conv" | "sep" => 2,
        "dw" | "dwsep" | "maxpool" | "avgpool" | "pool" | "dense" | "dropout" => 1,
        _ => 0,
    };
    // The first arguments that are neither `key=value` nor a flag word are positional.
    let mut positional = Vec::new();
    let mut options = Vec::new();
    for arg in parts {
        if arg.contains('=') || is_flag(arg) || positional.len() == max_positional {
            options.push(arg);
        } else {
            positional.push(arg);
        }
    }
    let expect = |min: usize, max: usize, names: &str| -> Result<(), String> {
        if positional.len() < min || positional.len() > max {
            return Err(format!(
                "`{kind}` takes {names}, got {} positional argument(s)",
                positional.len()
            ));
        }
        Ok(())
    };
    let accepts = match kind {
        "conv" | "sep" => {
            if kind == "sep" {
                DEPTHWISE
            } else {
                CONV
            }
        }
        "dw" => DEPTHWISE,
        "dwsep" => BLOCK,
        "maxpool" | "avgpool" => POOL,
        "dense" => DENSE,
        "pool" | "bn" | "relu" | "relu6" | "linear" | "gap" | "flatten" | "dropout" => NOTHING,
        other => {
            return Err(format!(
                "unknown layer kind `{other}`; expected one of conv, dw, sep, dwsep, bn, relu, relu6, \
                 maxpool, avgpool, pool, gap, flatten, dense, dropout"
            ));
        }
    };
    let opts = parse_options(kind, &options, accepts)?;
    let padding_or = |default| opts.padding.unwrap_or(default);
    let window = |kernel: [usize; 2], default_padding| Window {
        kernel,
        stride: opts.stride.unwrap_or([1, 1]),
        dilation: opts.dilation.unwrap_or([1, 1]),
        padding: padding_or(default_padding),
    };
    let activation = opts.activation.unwrap_or_default();
    Ok(match kind {
        "conv" => {
            expect(2, 2, "filters and kernel (`conv:32:3`)")?;
            LayerSpec::Conv {
                filters: count(positional[0], "filters")?,
                window: window(dims(positional[1], "kernel")?, Padding::Same),
                bias: opts.bias.unwrap_or(true),
                activation,
            }
        }
        "dw" => {
            expect(1, 1, "a kernel (`dw:3`)")?;
            LayerSpec::Depthwise {
                window: window(dims(positional[0], "kernel")?, Padding::Same),
                multiplier: opts.multiplier.unwrap_or(1),
                bias: opts.bias.unwrap_or(false),
                activation,
                fans: opts.fans.unwrap_or_default(),
            }
        }
        "sep" => {
            expect(2, 2, "filters and kernel (`sep:64:3`)")?;
            LayerSpec::Separable {
                filters: count(positional[0], "filters")?,
                window: window(dims(positional[1], "kernel")?, Padding::Same),
                multiplier: opts.multiplier.unwrap_or(1),
                bias: opts.bias.unwrap_or(true),
                activation,
                fans: opts.fans.unwrap_or_default(),
            }
        }
        "dwsep" => {
            expect(1, 1, "filters (`dwsep:64`)")?;
            let stride = opts.stride.unwrap_or([1, 1]);
            if stride[0] != stride[1] {
                return Err("`dwsep` takes a square stride (`s=2`)".into());
            }
            LayerSpec::DwSepBlock {
                filters: count(positional[0], "filters")?,
                stride: stride[0],
                activation: opts.activation.unwrap_or(Activation::Relu),
                fans: opts.fans.unwrap_or_default(),
            }
        }
        "maxpool" | "avgpool" | "pool" => {
            expect(0, 1, "an optional window (`maxpool:2`)")?;
            let size = match positional.first() {
                Some(arg) => dims(arg, "pool window")?,
                None => [2, 2],
            };
            let kind = if kind == "avgpool" {
                PoolKind::Average
            } else {
                PoolKind::Max
            };
            let mut window = window(size, Padding::Valid);
            window.stride = opts.stride.unwrap_or(size);
            LayerSpec::Pool { kind, window }
        }
        "bn" => {
            expect(0, 0, "no arguments")?;
            LayerSpec::BatchNorm
        }
        "relu" | "relu6" | "linear" => {
            expect(0, 0, "no arguments")?;
            LayerSpec::Activation(parse_activation(kind).unwrap_or_default())
        }
        "gap" => {
            expect(0, 0, "no arguments")?;
            LayerSpec::GlobalAvgPool
        }
        "flatten" => {
            expect(0, 0, "no arguments")?;
            LayerSpec::Flatten
        }
        "dense" => {
            expect(1, 1, "units (`dense:10`)")?;
            LayerSpec::Dense {
                units: count(positional[0], "units")?,
                bias: opts.bias.unwrap_or(true),
                activation,
            }
        }
        "dropout" => {
            expect(1, 1, "a rate (`dropout:0.5`)")?;
            let rate: f64 = positional[0]
                .parse()
                .map_err(|_| format!("dropout rate must be a number, got `{}`", positional[0]))?;
            if !(0.0..1.0).contains(&rate) {
                return Err(format!("dropout rate must be in [0, 1), got {rate}"));
            }
            LayerSpec::Dropout { rate }
        }
        _ => unreachable!("kind checked above"),
    })
}

fn is_flag(word: &str) -> bool {
    matches!(word, "same" | "valid" | "bias" | "nobias") || parse_activation(word).is_some()
}

fn parse_activation(word: &str) -> Option<Activation> {
    match word {
        "relu" => Some(Activation::Relu),
        "relu6" => Some(Activation::Relu6),
        "linear" => Some(Activation::Linear),
        _ => None,
    }
}

fn parse_options(kind: &str, args: &[&str], accepts: Accepts) -> Result<Options, String> {
    let mut opts = Options::default();
    let refuse = |what: &str| format!("`{kind}` does not take {what}");
    for arg in args {
        if let Some((key, value)) = arg.split_once('=') {
            match key {
                "s" | "stride" if accepts.stride => opts.stride = Some(dims(value, "stride")?),
                "d" | "dilation" if accepts.dilation => {
                    opts.dilation = Some(dims(value, "dilation")?)
                }
                "m" | "multiplier" if accepts.multiplier => {
                    opts.multiplier = Some(count(value, "depth multiplier")?)
                }
                "fans" if accepts.fans => opts.fans = Some(value.parse()?),
                "pad" if accepts.padding => opts.padding = Some(explicit_padding(value)?),
                "s" | "stride" | "d" | "dilation" | "m" | "multiplier" | "pad" | "fans" => {
                    return Err(refuse(&format!("`{key}=`")));
                }
                _ => {
                    return Err(format!(
                        "unknown option `{key}=`; expected s= (stride), d= (dilation), m= (depth multiplier), pad=T/B/L/R or fans=group|keras|torch"
                    ));
                }
            }
        } else if let Some(activation) = parse_activation(arg) {
            if !accepts.activation {
                return Err(refuse("an activation"));
            }
            opts.activation = Some(activation);
        } else {
            match *arg {
                "same" | "valid" if accepts.padding => {
                    opts.padding = Some(if *arg == "same" {
                        Padding::Same
                    } else {
                        Padding::Valid
                    })
                }
                "bias" | "nobias" if accepts.bias => opts.bias = Some(*arg == "bias"),
                "same" | "valid" | "bias" | "nobias" => return Err(refuse(&format!("`{arg}`"))),
                "" => return Err("empty argument (`::`?)".into()),
                other => {
                    return Err(format!(
                        "unknown argument `{other}`; expected a number, same, valid, bias, nobias, relu, relu6 or key=value"
                    ));
                }
            }
        }
    }
    Ok(opts)
}

/// The largest size a spec may give any count, kernel, stride or padding: far above any
/// network that fits in memory, and small enough that no product of them overflows.
pub const MAX_SIZE: usize = 1 << 20;

/// A positive integer, at most [`MAX_SIZE`].
fn count(text: &str, what: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > MAX_SIZE => Err(format!("{what} must be at most {MAX_SIZE}, got {n}")),
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{what} must be a positive integer, got `{text}`")),
    }
}

/// `3` → `[3, 3]`; `3x5` → `[3, 5]`.
fn dims(text: &str, what: &str) -> Result<[usize; 2], String> {
    let bad = || format!("{what} must be a positive integer or HxW, got `{text}`");
    match text.split_once('x') {
        Some((h, w)) => Ok([
            count(h, what).map_err(|_| bad())?,
            count(w, what).map_err(|_| bad())?,
        ]),
        None => count(text, what).map(|n| [n, n]).map_err(|_| bad()),
    }
}

/// `pad=T/B/L/R`, or `pad=N` for the same amount on every side.
fn explicit_padding(text: &str) -> Result<Padding, String> {
    let parts: Result<Vec<usize>, _> = text
        .split('/')
        .map(|p| match p.parse::<usize>() {
            Ok(n) if n <= MAX_SIZE => Ok(n),
            _ => Err(()),
        })
        .collect();
    match parts.as_deref() {
        Ok([n]) => Ok(Padding::Explicit {
            top: *n,
            bottom: *n,
            left: *n,
            right: *n,
        }),
        Ok([top, bottom, left, right]) => Ok(Padding::Explicit {
            top: *top,
            bottom: *bottom,
            left: *left,
            right: *right,
        }),
        _ => Err(format!(
            "padding must be `pad=N` or `pad=T/B/L/R` in whole numbers up to {MAX_SIZE}, got `pad={text}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> SpecError {
        parse_layers(text).unwrap_err()
    }

    #[test]
    fn errors_point_at_the_token() {
        let cases = [
            (
                "conv:32:3,pool,sep:64:x",
                "sep:64:x",
                "kernel must be a positive integer",
            ),
            ("conv:32:3,bogus,dense:10", "bogus", "unknown layer kind"),
            ("conv:32", "conv:32", "takes filters and kernel"),
            ("conv:32:3:m=2", "conv:32:3:m=2", "does not take `m=`"),
            ("dense:10:same", "dense:10:same", "does not take `same`"),
            ("conv:32:3,,dense:10", "", "empty layer"),
            ("dropout:1.5", "dropout:1.5", "[0, 1)"),
            ("conv:0:3", "conv:0:3", "filters must be a positive integer"),
            ("conv:8:3:pad=1/2", "conv:8:3:pad=1/2", "pad=T/B/L/R"),
            ("conv:8:3:q=1", "conv:8:3:q=1", "unknown option"),
            (
                "conv:8:3:fans=keras",
                "conv:8:3:fans=keras",
                "does not take `fans=`",
            ),
            (
                "sep:8:3:fans=he",
                "sep:8:3:fans=he",
                "expected group, keras or torch",
            ),
        ];
        for (text, token, message) in cases {
            let e = err(text);
            assert_eq!(&e.spec[e.span.0..e.span.1], token, "{text}");
            assert!(e.message.contains(message), "{text}: {}", e.message);
        }
    }

    #[test]
    fn display_underlines_the_token() {
        let shown = err("conv:32:3, sep:64:x").to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[1], "  conv:32:3, sep:64:x");
        assert_eq!(lines[2], "             ^^^^^^^^");
    }

    #[test]
    fn options_parse() {
        let layers = parse_layers(
            "dw:3x5:m=2:s=2x1:d=2:valid:bias:relu6:fans=keras, conv:8:1:pad=1/2/3/4:nobias",
        )
        .unwrap();
        assert_eq!(
            layers[0],
            LayerSpec::Depthwise {
                window: Window {
                    kernel: [3, 5],
                    stride: [2, 1],
                    dilation: [2, 2],
                    padding: Padding::Valid
                },
                multiplier: 2,
                bias: true,
                activation: Activation::Relu6,
                fans: DepthwiseFans::Keras,
            }
        );
        assert_eq!(
            layers[1],
            LayerSpec::Conv {
                filters: 8,
                window: Window {
                    kernel: [1, 1],
                    stride: [1, 1],
                    dilation: [1, 1],
                    padding: Padding::Explicit {
                        top: 1,
                        bottom: 2,
                        left: 3,
                        right: 4
                    },
                },
                bias: false,
                activation: Activation::Linear,
            }
        );
    }
}
