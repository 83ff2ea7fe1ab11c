//! `dense:N` — fully connected to `N` units (bias unless `nobias`, optional activation).

use std::fmt;

use burn::tensor::Device;

use super::args::{Accepts, Args, count};
use super::{LayerKind, mul, print};
use crate::export::{Attr, Graph};
use crate::layers::{Activation, Dense, DenseConfig};
use crate::network::Features;
use crate::spec::{LayerShape, Shape};
use crate::summary::{LayerSummary, Namer, row};

/// A fully connected layer.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseSpec {
    /// Output features.
    pub units: usize,
    /// Bias.
    pub bias: bool,
    /// Fused activation.
    pub activation: Activation,
}

impl LayerKind for DenseSpec {
    const KEYWORDS: &'static [&'static str] = &["dense"];
    const POSITIONAL: usize = 1;
    type Module = Dense;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(1, 1, "units (`dense:10`)")?;
        let accepts = Accepts {
            bias: true,
            activation: true,
            ..Accepts::NOTHING
        };
        let opts = args.options(accepts)?;
        Ok(DenseSpec {
            units: count(args.positional[0], "units")?,
            bias: opts.bias.unwrap_or(true),
            activation: opts.activation.unwrap_or_default(),
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (bias, act) = (
            print::no_bias(self.bias),
            print::activation(self.activation),
        );
        write!(f, "dense:{}{bias}{act}", self.units)
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Flat(_) => Ok(Shape::Flat(self.units)),
            Shape::Spatial([h, w, c]) => Err(format!(
                "dense needs a flat input but receives {h}×{w}×{c}; add `flatten` or `gap` before it"
            )),
        }
    }

    fn export(&self, dense: &Dense, _: &LayerShape, g: &mut Graph) {
        // PyTorch's layout, `[out, in]`: Gemm multiplies by its transpose.
        let mut inputs = vec![
            g.x(),
            g.weight("fc", "weight", dense.weight.val().transpose()),
        ];
        if let Some(bias) = &dense.bias {
            inputs.push(g.weight("fc", "bias", bias.val()));
        }
        g.node("Gemm", &inputs, vec![Attr::Int("transB", 1)]);
        g.activation(self.activation);
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let (c_in, u) = (shape.input.channels() as u64, self.units as u64);
        let params = mul(c_in, u) + if self.bias { u } else { 0 };
        row(
            namer.name("dense"),
            "Dense",
            shape.output,
            params,
            params,
            mul(c_in, u),
        )
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> Dense {
        DenseConfig::new(shape.input.channels(), self.units)
            .with_bias(self.bias)
            .with_activation(self.activation)
            .init(device)
    }
}

impl super::Forward for Dense {
    fn forward(&self, x: Features) -> Features {
        match x {
            Features::Flat(t) => Features::Flat(Dense::forward(self, t)),
            Features::Spatial(_) => panic!("dense received a spatial input"),
        }
    }
}
