//! `relu`, `relu6`, `sigmoid`, `tanh`, `silu` (`swish`), `hardswish`, `hardsigmoid`, `gelu`,
//! `linear` — a standalone activation.

use std::fmt;

use burn::module::Module;
use burn::tensor::Device;

use super::LayerKind;
use super::args::{Args, parse_activation};
use crate::export::Graph;
use crate::layers::Activation;
use crate::network::Features;
use crate::spec::{LayerShape, Shape};
use crate::summary::{LayerSummary, Namer, row};

/// A standalone activation.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationSpec(pub Activation);

/// The built activation layer (no parameters).
#[derive(Module, Debug)]
pub struct ActivationLayer {
    #[module(skip)]
    activation: Activation,
}

impl LayerKind for ActivationSpec {
    const KEYWORDS: &'static [&'static str] = &[
        "relu",
        "relu6",
        "sigmoid",
        "tanh",
        "silu",
        "swish",
        "hardswish",
        "hardsigmoid",
        "gelu",
        "linear",
    ];
    const POSITIONAL: usize = 0;
    type Module = ActivationLayer;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(0, 0, "no arguments")?;
        args.options(super::args::Accepts::NOTHING)?;
        Ok(ActivationSpec(
            parse_activation(args.kind).unwrap_or_default(),
        ))
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name().unwrap_or("linear"))
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        Ok(input)
    }

    fn export(&self, _: &ActivationLayer, _: &LayerShape, g: &mut Graph) {
        g.activation(self.0);
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        // Keras's own layer for ReLU; `Activation(name)` for the others.
        let (base, kind) = match self.0 {
            Activation::Relu => ("re_lu", "ReLU"),
            Activation::Relu6 => ("re_lu6", "ReLU6"),
            Activation::Linear => ("activation", "Linear"),
            _ => ("activation", "Activation"),
        };
        row(namer.name(base), kind, shape.output, 0, 0, 0)
    }

    fn build(&self, _: &LayerShape, _: &Device) -> ActivationLayer {
        ActivationLayer { activation: self.0 }
    }
}

impl ActivationLayer {
    /// The activation it applies.
    pub fn activation(&self) -> Activation {
        self.activation
    }
}

impl super::Forward for ActivationLayer {
    fn forward(&self, x: Features) -> Features {
        match x {
            Features::Spatial(t) => Features::Spatial(self.activation.apply(t)),
            Features::Flat(t) => Features::Flat(self.activation.apply(t)),
        }
    }
}
