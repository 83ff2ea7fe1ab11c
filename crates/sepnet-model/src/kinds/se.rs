//! `se:R` — squeeze-and-excitation (Hu et al., arXiv:1709.01507; MobileNet v3, EfficientNet):
//! global average pool → 1×1 convolution to `R` × the channels (`R` a ratio such as `0.25`, or
//! a channel count such as `16`) → activation (`relu` unless given) → 1×1 convolution back to
//! the channels → gate (`gate=sigmoid` unless given; MobileNet v3 uses `gate=hardsigmoid`) →
//! each input channel scaled by its gate.

use std::fmt;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::args::{Accepts, Args, count};
use super::{LayerKind, mul, print, spatial};
use crate::export::Graph;
use crate::layers::{Activation, Conv2d, Conv2dConfig, Padding};
use crate::network::Features;
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer, Part, block_row};

/// How many channels the squeeze keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Squeeze {
    /// A fraction of the input channels, at least one (`se:0.25`).
    Ratio(f64),
    /// A number of channels (`se:16`).
    Channels(usize),
}

/// A squeeze-and-excitation layer.
#[derive(Clone, Debug, PartialEq)]
pub struct SeSpec {
    /// The squeezed width.
    pub squeeze: Squeeze,
    /// Activation after the squeeze.
    pub activation: Activation,
    /// The gate's activation.
    pub gate: Activation,
}

/// The built layer: the squeezing and the exciting 1×1 convolutions (with bias).
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    /// Input channels → squeezed.
    pub reduce: Conv2d,
    /// Squeezed → input channels, its activation the gate.
    pub expand: Conv2d,
}

impl SeSpec {
    /// The squeezed width for `channels` input channels.
    pub fn squeezed(&self, channels: usize) -> usize {
        match self.squeeze {
            Squeeze::Ratio(r) => ((channels as f64 * r).floor() as usize).max(1),
            Squeeze::Channels(n) => n,
        }
    }
}

fn parse_squeeze(text: &str) -> Result<Squeeze, String> {
    if !text.contains('.') {
        return count(text, "squeezed channels").map(Squeeze::Channels);
    }
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(Squeeze::Ratio(r)),
        _ => Err(format!(
            "`se` takes a ratio in (0, 1] (`se:0.25`) or a channel count (`se:16`), got {text}"
        )),
    }
}

/// A 1×1 convolution's window.
const POINT: Window = Window {
    kernel: [1, 1],
    stride: [1, 1],
    dilation: [1, 1],
    padding: Padding::Valid,
};

impl LayerKind for SeSpec {
    const KEYWORDS: &'static [&'static str] = &["se"];
    const POSITIONAL: usize = 1;
    type Module = SqueezeExcite;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(1, 1, "the squeeze ratio or width (`se:0.25`, `se:16`)")?;
        let accepts = Accepts {
            activation: true,
            gate: true,
            ..Accepts::NOTHING
        };
        let opts = args.options(accepts)?;
        Ok(SeSpec {
            squeeze: parse_squeeze(args.positional[0])?,
            activation: opts.activation.unwrap_or(Activation::Relu),
            gate: opts.gate.unwrap_or(Activation::Sigmoid),
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.squeeze {
            Squeeze::Ratio(r) => write!(f, "se:{r:?}")?,
            Squeeze::Channels(n) => write!(f, "se:{n}")?,
        }
        if self.activation != Activation::Relu {
            f.write_str(&print::activation(self.activation))?;
        }
        match self.gate {
            Activation::Sigmoid => Ok(()),
            gate => write!(f, ":gate={}", gate.name().unwrap_or("linear")),
        }
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        spatial(input, "se").map(Shape::Spatial)
    }

    fn export(&self, se: &SqueezeExcite, _: &LayerShape, g: &mut Graph) {
        self.emit(se, g, "");
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let c = shape.input.channels();
        let s = self.squeezed(c);
        let (c, s64) = (c as u64, s as u64);
        let point = |n| Shape::Spatial([1, 1, n]);
        let (reduce, expand) = (mul(c, s64) + s64, mul(s64, c) + c);
        let kind = |a: Activation| {
            if a.fused().is_some() {
                "ReLU"
            } else {
                "Activation"
            }
        };
        let parts = [
            Part::Op(
                "squeeze",
                "GlobalAveragePooling2D",
                point(shape.input.channels()),
            ),
            Part::Conv("reduce", "Conv2D", point(s), reduce, mul(c, s64)),
            Part::Op("reduce_activation", kind(self.activation), point(s)),
            Part::Conv(
                "expand",
                "Conv2D",
                point(shape.input.channels()),
                expand,
                mul(s64, c),
            ),
            Part::Op("gate", kind(self.gate), point(shape.input.channels())),
            Part::Op("excite", "Multiply", shape.output),
        ];
        block_row(
            namer.name("squeeze_excite"),
            "SqueezeExcite",
            shape.output,
            &parts,
        )
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> SqueezeExcite {
        let c = shape.input.channels();
        let s = self.squeezed(c);
        let point = |from, to, activation| {
            Conv2dConfig::new(from, to, [1, 1])
                .with_padding(Padding::Valid)
                .with_activation(activation)
                .init(device)
        };
        SqueezeExcite {
            reduce: point(c, s, self.activation),
            expand: point(s, c, self.gate),
        }
    }
}

impl SeSpec {
    /// The layer as ONNX nodes, its weights named `{part}reduce.*`, `{part}expand.*`.
    pub(crate) fn emit(&self, se: &SqueezeExcite, g: &mut Graph, part: &str) {
        let input = g.x();
        g.node("GlobalAveragePool", std::slice::from_ref(&input), vec![]);
        g.conv(&format!("{part}reduce"), &se.reduce, &POINT, [1, 1]);
        g.activation(self.activation);
        g.conv(&format!("{part}expand"), &se.expand, &POINT, [1, 1]);
        g.activation(self.gate);
        let gate = g.x();
        g.node("Mul", &[input, gate], vec![]);
    }

    /// The layer for `shape`'s channels (inside a block).
    pub(crate) fn build_module(&self, shape: &LayerShape, device: &Device) -> SqueezeExcite {
        self.build(shape, device)
    }
}

impl SqueezeExcite {
    /// `[n, c, h, w]` → the same, each channel scaled by its gate.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let squeezed = x.clone().mean_dim(3).mean_dim(2);
        let gate = self.expand.forward(self.reduce.forward(squeezed));
        x * gate
    }
}

impl super::Forward for SqueezeExcite {
    fn forward(&self, x: Features) -> Features {
        x.map_spatial(|t| SqueezeExcite::forward(self, t))
    }
}
