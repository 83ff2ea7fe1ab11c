//! `gap` — global average pooling: `[h, w, c]` → `[c]`.

use std::fmt;

use burn::tensor::Device;

use super::args::Args;
use super::{LayerKind, spatial};
use crate::export::{Attr, Graph};
use crate::layers::GlobalAvgPool;
use crate::network::Features;
use crate::spec::{LayerShape, Shape};
use crate::summary::{LayerSummary, Namer, row};

/// Global average pooling.
#[derive(Clone, Debug, PartialEq)]
pub struct GapSpec;

impl LayerKind for GapSpec {
    const KEYWORDS: &'static [&'static str] = &["gap"];
    const POSITIONAL: usize = 0;
    type Module = GlobalAvgPool;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(0, 0, "no arguments")?;
        args.options(super::args::Accepts::NOTHING)?;
        Ok(GapSpec)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("gap")
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        Ok(Shape::Flat(spatial(input, "global average pooling")?[2]))
    }

    fn export(&self, _: &GlobalAvgPool, _: &LayerShape, g: &mut Graph) {
        let x = g.x();
        let pooled = g.node("GlobalAveragePool", &[x], vec![]);
        g.node("Flatten", &[pooled], vec![Attr::Int("axis", 1)]);
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let name = namer.name("global_average_pooling2d");
        row(name, "GlobalAveragePooling2D", shape.output, 0, 0, 0)
    }

    fn build(&self, _: &LayerShape, _: &Device) -> GlobalAvgPool {
        GlobalAvgPool
    }
}

impl super::Forward for GlobalAvgPool {
    fn forward(&self, x: Features) -> Features {
        match x {
            Features::Spatial(t) => Features::Flat(GlobalAvgPool::forward(self, t)),
            Features::Flat(_) => panic!("global average pooling received a flat input"),
        }
    }
}
