//! `bn` — batch normalisation over channels (or features, after `flatten`): γ, β trainable,
//! the moving mean and variance non-trainable, as Keras counts them.

use std::fmt;

use burn::tensor::Device;

use super::LayerKind;
use super::args::Args;
use crate::export::Graph;
use crate::layers::{BatchNorm, BatchNormConfig};
use crate::network::Features;
use crate::spec::{LayerShape, Shape};
use crate::summary::{LayerSummary, Namer, row};

/// Batch normalisation.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormSpec;

impl LayerKind for BatchNormSpec {
    const KEYWORDS: &'static [&'static str] = &["bn"];
    const POSITIONAL: usize = 0;
    type Module = BatchNorm;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(0, 0, "no arguments")?;
        args.options(super::args::Accepts::NOTHING)?;
        Ok(BatchNormSpec)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bn")
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        Ok(input)
    }

    fn export(&self, bn: &BatchNorm, _: &LayerShape, g: &mut Graph) {
        g.batch_norm("bn", bn);
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let c = shape.input.channels() as u64;
        let name = namer.name("batch_normalization");
        row(name, "BatchNormalization", shape.output, 4 * c, 2 * c, 0)
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> BatchNorm {
        BatchNormConfig::new(shape.input.channels()).init(device)
    }
}

impl super::Forward for BatchNorm {
    fn forward(&self, x: Features) -> Features {
        match x {
            Features::Spatial(t) => Features::Spatial(BatchNorm::forward(self, t)),
            Features::Flat(t) => Features::Flat(self.inner.forward(t)),
        }
    }
}
