//! `flatten` — `[h, w, c]` → `[h·w·c]`.

use std::fmt;

use burn::module::Module;
use burn::tensor::Device;

use super::args::Args;
use super::{LayerKind, spatial};
use crate::export::{Attr, Graph};
use crate::network::Features;
use crate::spec::{LayerShape, Shape};
use crate::summary::{LayerSummary, Namer, row};

/// Flatten, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct FlattenSpec;

/// `[batch, c, h, w]` → `[batch, c·h·w]`.
#[derive(Module, Debug, Default)]
pub struct Flatten;

impl LayerKind for FlattenSpec {
    const KEYWORDS: &'static [&'static str] = &["flatten"];
    const POSITIONAL: usize = 0;
    type Module = Flatten;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(0, 0, "no arguments")?;
        args.options(super::args::Accepts::NOTHING)?;
        Ok(FlattenSpec)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flatten")
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        Ok(Shape::Flat(spatial(input, "flatten")?.iter().product()))
    }

    fn export(&self, _: &Flatten, _: &LayerShape, g: &mut Graph) {
        let x = g.x();
        g.node("Flatten", &[x], vec![Attr::Int("axis", 1)]);
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        row(namer.name("flatten"), "Flatten", shape.output, 0, 0, 0)
    }

    fn build(&self, _: &LayerShape, _: &Device) -> Flatten {
        Flatten
    }
}

impl super::Forward for Flatten {
    fn forward(&self, x: Features) -> Features {
        match x {
            Features::Spatial(t) => Features::Flat(t.flatten(1, 3)),
            Features::Flat(_) => panic!("flatten received a flat input"),
        }
    }
}
