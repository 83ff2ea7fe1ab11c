//! `dropout:R` — zeroes a fraction `R` of the activations while training (identity otherwise).

use std::fmt;

use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::Device;

use super::LayerKind;
use super::args::Args;
use crate::export::Graph;
use crate::network::Features;
use crate::spec::{LayerShape, Shape};
use crate::summary::{LayerSummary, Namer, row};

/// Dropout.
#[derive(Clone, Debug, PartialEq)]
pub struct DropoutSpec {
    /// Probability of zeroing an element, in [0, 1).
    pub rate: f64,
}

impl LayerKind for DropoutSpec {
    const KEYWORDS: &'static [&'static str] = &["dropout"];
    const POSITIONAL: usize = 1;
    type Module = Dropout;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(1, 1, "a rate (`dropout:0.5`)")?;
        let text = args.positional[0];
        let rate: f64 = text
            .parse()
            .map_err(|_| format!("dropout rate must be a number, got `{text}`"))?;
        if !(0.0..1.0).contains(&rate) {
            return Err(format!("dropout rate must be in [0, 1), got {rate}"));
        }
        args.options(super::args::Accepts::NOTHING)?;
        Ok(DropoutSpec { rate })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dropout:{}", self.rate)
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        Ok(input)
    }

    /// Dropout is the identity outside training: nothing to export.
    fn export(&self, _: &Dropout, _: &LayerShape, _: &mut Graph) {}

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        row(namer.name("dropout"), "Dropout", shape.output, 0, 0, 0)
    }

    fn build(&self, _: &LayerShape, _: &Device) -> Dropout {
        DropoutConfig::new(self.rate).init()
    }
}

impl super::Forward for Dropout {
    fn forward(&self, x: Features) -> Features {
        match x {
            Features::Spatial(t) => Features::Spatial(Dropout::forward(self, t)),
            Features::Flat(t) => Features::Flat(Dropout::forward(self, t)),
        }
    }
}
