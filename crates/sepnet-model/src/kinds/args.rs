//! The arguments of one spec layer (`sep:64:3:s=2:relu`): positional numbers first, then
//! options (`key=value` or flag words). Each kind says how many positional arguments it takes
//! and which options it accepts; the checks and messages are shared here.

use crate::layers::{Activation, DepthwiseFans, Padding};
use crate::spec::Window;

/// The largest size a spec may give any count, kernel, stride or padding: far above any
/// network that fits in memory, and small enough that no product of them overflows.
pub const MAX_SIZE: usize = 1 << 20;

/// Which options a layer kind accepts.
#[derive(Clone, Copy, Default)]
pub struct Accepts {
    /// `s=`.
    pub stride: bool,
    /// `d=`.
    pub dilation: bool,
    /// `same`, `valid`, `pad=`.
    pub padding: bool,
    /// `m=` (depth multiplier).
    pub multiplier: bool,
    /// `e=` (expansion factor).
    pub expansion: bool,
    /// `fans=`.
    pub fans: bool,
    /// `bias`, `nobias`.
    pub bias: bool,
    /// An activation (`relu`, `silu`, …).
    pub activation: bool,
    /// `gate=` (squeeze-and-excitation's gate).
    pub gate: bool,
    /// `se=` (a block's squeeze-and-excitation ratio).
    pub se: bool,
}

impl Accepts {
    /// What a convolution takes.
    pub const CONV: Accepts = Accepts {
        stride: true,
        dilation: true,
        padding: true,
        multiplier: false,
        expansion: false,
        fans: false,
        bias: true,
        activation: true,
        gate: false,
        se: false,
    };
    /// What a depthwise (or separable) convolution takes.
    pub const DEPTHWISE: Accepts = Accepts {
        multiplier: true,
        fans: true,
        ..Accepts::CONV
    };
    /// Nothing at all.
    pub const NOTHING: Accepts = Accepts {
        stride: false,
        dilation: false,
        padding: false,
        multiplier: false,
        expansion: false,
        fans: false,
        bias: false,
        activation: false,
        gate: false,
        se: false,
    };
}

/// Options given after the positional arguments.
#[derive(Default)]
pub struct Options {
    /// `s=`.
    pub stride: Option<[usize; 2]>,
    /// `d=`.
    pub dilation: Option<[usize; 2]>,
    /// `same`, `valid`, `pad=`.
    pub padding: Option<Padding>,
    /// `m=`.
    pub multiplier: Option<usize>,
    /// `e=`.
    pub expansion: Option<usize>,
    /// `fans=`.
    pub fans: Option<DepthwiseFans>,
    /// `bias` / `nobias`.
    pub bias: Option<bool>,
    /// An activation (`relu`, `silu`, …).
    pub activation: Option<Activation>,
    /// `gate=`.
    pub gate: Option<Activation>,
    /// `se=`, a ratio in (0, 1].
    pub se: Option<f64>,
}

impl Options {
    /// A window of `kernel` with these options (stride 1, dilation 1 by default).
    pub fn window(&self, kernel: [usize; 2], default_padding: Padding) -> Window {
        Window {
            kernel,
            stride: self.stride.unwrap_or([1, 1]),
            dilation: self.dilation.unwrap_or([1, 1]),
            padding: self.padding.unwrap_or(default_padding),
        }
    }

    /// The stride as one number, for kinds that only take a square one.
    pub fn square_stride(&self, kind: &str) -> Result<usize, String> {
        match self.stride.unwrap_or([1, 1]) {
            [h, w] if h == w => Ok(h),
            _ => Err(format!("`{kind}` takes a square stride (`s=2`)")),
        }
    }
}

/// One layer's text split into its keyword, positional arguments and options.
pub struct Args<'a> {
    /// The keyword (`conv`).
    pub kind: &'a str,
    /// The positional arguments (`32`, `3`).
    pub positional: Vec<&'a str>,
    options: Vec<&'a str>,
}

impl<'a> Args<'a> {
    /// Splits `conv:32:3:s=2` for a kind that takes up to `max_positional` positional
    /// arguments: the first arguments that are neither `key=value` nor a flag word.
    pub fn split(token: &'a str, max_positional: usize) -> Args<'a> {
        let mut parts = token.split(':');
        let kind = parts.next().unwrap_or_default();
        let (mut positional, mut options) = (Vec::new(), Vec::new());
        for arg in parts {
            if arg.contains('=') || is_flag(arg) || positional.len() == max_positional {
                options.push(arg);
            } else {
                positional.push(arg);
            }
        }
        Args {
            kind,
            positional,
            options,
        }
    }

    /// Checks the number of positional arguments (`names` describes them for the message).
    pub fn expect(&self, min: usize, max: usize, names: &str) -> Result<(), String> {
        let n = self.positional.len();
        if n < min || n > max {
            return Err(format!(
                "`{}` takes {names}, got {n} positional argument(s)",
                self.kind
            ));
        }
        Ok(())
    }

    /// Parses the options, refusing what the kind does not accept.
    pub fn options(&self, accepts: Accepts) -> Result<Options, String> {
        let mut opts = Options::default();
        let mut given: Vec<(&str, &str)> = Vec::new();
        for arg in &self.options {
            if let Some(slot) = slot(arg) {
                if let Some((_, earlier)) = given.iter().find(|(s, _)| *s == slot) {
                    return Err(format!(
                        "`{earlier}` and `{arg}` both set the {slot} of `{}`; give it once",
                        self.kind
                    ));
                }
                given.push((slot, arg));
            }
            match arg.split_once('=') {
                Some((key, value)) => self.key_value(&mut opts, accepts, key, value)?,
                None => self.word(&mut opts, accepts, arg)?,
            }
        }
        Ok(opts)
    }

    fn refuse(&self, what: &str) -> String {
        format!("`{}` does not take {what}", self.kind)
    }

    fn key_value(&self, o: &mut Options, a: Accepts, key: &str, value: &str) -> Result<(), String> {
        match key {
            "s" | "stride" if a.stride => o.stride = Some(dims(value, "stride")?),
            "d" | "dilation" if a.dilation => o.dilation = Some(dims(value, "dilation")?),
            "m" | "multiplier" if a.multiplier => {
                o.multiplier = Some(count(value, "depth multiplier")?)
            }
            "e" | "expansion" if a.expansion => o.expansion = Some(count(value, "expansion")?),
            "fans" if a.fans => o.fans = Some(value.parse()?),
            "pad" if a.padding => o.padding = Some(explicit_padding(value)?),
            "gate" if a.gate => {
                o.gate = Some(parse_activation(value).ok_or_else(|| {
                    format!("`gate={value}`: expected an activation (sigmoid, hardsigmoid, …)")
                })?)
            }
            "se" if a.se => o.se = Some(ratio(value, "se")?),
            "s" | "stride" | "d" | "dilation" | "m" | "multiplier" | "e" | "expansion" | "pad"
            | "fans" | "gate" | "se" => return Err(self.refuse(&format!("`{key}=`"))),
            _ => {
                return Err(format!(
                    "unknown option `{key}=`; expected s= (stride), d= (dilation), m= (depth multiplier), \
                     e= (expansion), pad=T/B/L/R, fans=group|keras|torch, gate= (an activation) or se= (a ratio)"
                ));
            }
        }
        Ok(())
    }

    fn word(&self, o: &mut Options, a: Accepts, word: &str) -> Result<(), String> {
        if let Some(activation) = parse_activation(word) {
            if !a.activation {
                return Err(self.refuse("an activation"));
            }
            o.activation = Some(activation);
            return Ok(());
        }
        match word {
            "same" if a.padding => o.padding = Some(Padding::Same),
            "valid" if a.padding => o.padding = Some(Padding::Valid),
            "bias" | "nobias" if a.bias => o.bias = Some(word == "bias"),
            "same" | "valid" | "bias" | "nobias" => return Err(self.refuse(&format!("`{word}`"))),
            "" => return Err("empty argument (`::`?)".into()),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; expected a number, same, valid, bias, nobias, an activation (relu, silu, …) or key=value"
                ));
            }
        }
        Ok(())
    }
}

/// Which setting an option sets (two options setting one are a contradiction).
fn slot(arg: &str) -> Option<&'static str> {
    let key = arg.split_once('=').map_or(arg, |(k, _)| k);
    Some(match key {
        "s" | "stride" => "stride",
        "d" | "dilation" => "dilation",
        "m" | "multiplier" => "depth multiplier",
        "e" | "expansion" => "expansion",
        "fans" => "initialisation",
        "gate" => "gate",
        "se" => "squeeze-and-excitation",
        "pad" | "same" | "valid" => "padding",
        "bias" | "nobias" => "bias",
        word if parse_activation(word).is_some() => "activation",
        _ => return None,
    })
}

fn is_flag(word: &str) -> bool {
    matches!(word, "same" | "valid" | "bias" | "nobias") || parse_activation(word).is_some()
}

/// A ratio in (0, 1] (`se=0.25`).
pub fn ratio(text: &str, what: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!("`{what}=` takes a ratio in (0, 1], got {text}")),
    }
}

/// An activation by its spec name (`swish` is SiLU, as Keras names it).
pub fn parse_activation(word: &str) -> Option<Activation> {
    match word {
        "linear" => Some(Activation::Linear),
        "swish" => Some(Activation::Silu),
        word => (Activation::ALL.into_iter()).find(|a| a.name() == Some(word)),
    }
}

/// A positive integer, at most [`MAX_SIZE`].
pub fn count(text: &str, what: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > MAX_SIZE => Err(format!("{what} must be at most {MAX_SIZE}, got {n}")),
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{what} must be a positive integer, got `{text}`")),
    }
}

/// `3` → `[3, 3]`; `3x5` → `[3, 5]`.
pub fn dims(text: &str, what: &str) -> Result<[usize; 2], String> {
    let bad = || format!("{what} must be a positive integer or HxW, got `{text}`");
    let one = |part: &str| match count(part, what) {
        Err(e) if e.contains("at most") => Err(e),
        other => other.map_err(|_| bad()),
    };
    match text.split_once('x') {
        Some((h, w)) => Ok([one(h)?, one(w)?]),
        None => one(text).map(|n| [n, n]),
    }
}

/// `pad=T/B/L/R`, or `pad=N` for the same amount on every side.
fn explicit_padding(text: &str) -> Result<Padding, String> {
    let parts: Result<Vec<usize>, ()> = text
        .split('/')
        .map(|p| match p.parse::<usize>() {
            Ok(n) if n <= MAX_SIZE => Ok(n),
            _ => Err(()),
        })
        .collect();
    match parts.as_deref() {
        Ok(&[n]) => Ok(Padding::Explicit {
            top: n,
            bottom: n,
            left: n,
            right: n,
        }),
        Ok(&[top, bottom, left, right]) => Ok(Padding::Explicit {
            top,
            bottom,
            left,
            right,
        }),
        _ => Err(format!(
            "padding must be `pad=N` or `pad=T/B/L/R` in whole numbers up to {MAX_SIZE}, got `pad={text}`"
        )),
    }
}
