//! `mbconv:F:K` — EfficientNet's mobile inverted bottleneck (Tan & Le, arXiv:1905.11946):
//! expand 1×1 to `e×` the input channels (`e=6`; none with `e=1`) → BN → SiLU (or another
//! activation) → depthwise K×K (`s=`) → BN → SiLU → squeeze-and-excitation when `se=R`
//! (squeezed to `R` × the block's *input* channels, at least 1, as Keras; SiLU, sigmoid gate) →
//! project 1×1 to `F` → BN, plus the input when the stride is 1 and the channels match.
//! (Keras's stochastic depth before the addition is not modelled: training-only, no weights.)

use std::fmt;

use burn::tensor::Device;

use super::args::{Accepts, Args, count};
use super::mobile_block::{Design, MobileBlock};
use super::se::{SeSpec, Squeeze};
use super::{LayerKind, channels_times, print};
use crate::export::Graph;
use crate::layers::Activation;
use crate::spec::{LayerShape, Shape};
use crate::summary::{LayerSummary, Namer};

/// An MBConv block, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct MbConvSpec {
    /// Output channels.
    pub filters: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Expansion factor (1: none).
    pub expansion: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Activation (SiLU in EfficientNet).
    pub activation: Activation,
    /// Squeeze-and-excitation ratio of the block's input channels.
    pub se: Option<f64>,
}

impl MbConvSpec {
    fn design(&self, c_in: usize) -> Design {
        Design {
            filters: self.filters,
            expanded: c_in * self.expansion,
            kernel: self.kernel,
            stride: self.stride,
            activation: self.activation,
            se: self.se.map(|r| SeSpec {
                squeeze: Squeeze::Channels(((c_in as f64 * r) as usize).max(1)),
                activation: self.activation,
                gate: Activation::Sigmoid,
            }),
        }
    }
}

impl LayerKind for MbConvSpec {
    const KEYWORDS: &'static [&'static str] = &["mbconv"];
    const POSITIONAL: usize = 2;
    type Module = MobileBlock;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(2, 2, "filters and kernel (`mbconv:24:3:e=6:s=2:se=0.25`)")?;
        let accepts = Accepts {
            stride: true,
            expansion: true,
            activation: true,
            se: true,
            ..Accepts::NOTHING
        };
        let opts = args.options(accepts)?;
        Ok(MbConvSpec {
            filters: count(args.positional[0], "filters")?,
            kernel: count(args.positional[1], "kernel")?,
            expansion: opts.expansion.unwrap_or(6),
            stride: opts.square_stride(args.kind)?,
            activation: opts.activation.unwrap_or(Activation::Silu),
            se: opts.se,
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mbconv:{}:{}", self.filters, self.kernel)?;
        if self.expansion != 6 {
            write!(f, ":e={}", self.expansion)?;
        }
        if self.stride != 1 {
            write!(f, ":s={}", self.stride)?;
        }
        if let Some(r) = self.se {
            write!(f, ":se={r:?}")?;
        }
        match self.activation {
            Activation::Silu => Ok(()),
            a => f.write_str(&print::activation(a)),
        }
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        let c_in = super::spatial(input, "an mbconv block")?[2];
        channels_times(c_in, self.expansion)?;
        self.design(c_in).output(input, "an mbconv block")
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let design = self.design(shape.input.channels());
        design.summarise(shape, namer, ["mbconv", "MBConv"])
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> MobileBlock {
        self.design(shape.input.channels()).build(shape, device)
    }

    fn export(&self, block: &MobileBlock, shape: &LayerShape, g: &mut Graph) {
        self.design(shape.input.channels()).export(block, shape, g);
    }
}
