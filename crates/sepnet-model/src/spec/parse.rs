//! Text → [`LayerSpec`]s, with errors that point at the offending token.

use std::fmt;

use super::LayerSpec;
use super::shape::ShapeError;

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

/// One layer's token, by the kind its keyword names.
fn parse_layer(token: &str) -> Result<LayerSpec, String> {
    if token.is_empty() {
        return Err("empty layer (two commas in a row, or a trailing comma?)".into());
    }
    LayerSpec::parse_layer(token).unwrap_or_else(|| {
        let keyword = token.split(':').next().unwrap_or_default();
        let known: Vec<&str> = crate::kinds::KEYWORDS
            .iter()
            .flat_map(|k| k.iter().copied())
            .collect();
        Err(format!(
            "unknown layer kind `{keyword}`; expected one of {}",
            known.join(", ")
        ))
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{ConvSpec, DepthwiseSpec};
    use crate::layers::{Activation, DepthwiseFans, Padding};
    use crate::spec::Window;

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
            LayerSpec::Depthwise(DepthwiseSpec {
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
            })
        );
        assert_eq!(
            layers[1],
            LayerSpec::Conv(ConvSpec {
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
            })
        );
    }
}
