//! `bneck:F:X:K` — MobileNet v3's bottleneck (Howard et al., arXiv:1905.02244): expand 1×1 to
//! `X` channels (none when `X` is the input's) → BN → activation (`relu`, or `hardswish`) →
//! depthwise K×K (`s=`) → BN → activation → squeeze-and-excitation when `se=R` (squeezed to
//! `X·R` rounded to a multiple of 8, as Keras's `_depth`; ReLU, hard-sigmoid gate) → project
//! 1×1 to `F` → BN, plus the input when the stride is 1 and the channels match.

use std::fmt;

use burn::tensor::Device;

use super::args::{Accepts, Args, count};
use super::mobile_block::{Design, MobileBlock};
use super::se::{SeSpec, Squeeze};
use super::{LayerKind, print};
use crate::architectures::mobilenet_v2::make_divisible;
use crate::export::Graph;
use crate::layers::Activation;
use crate::spec::{LayerShape, Shape};
use crate::summary::{LayerSummary, Namer};

/// A MobileNet v3 bottleneck, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct BneckSpec {
    /// Output channels.
    pub filters: usize,
    /// Expanded channels (the paper's "exp size").
    pub expanded: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Activation (ReLU or hard swish in the paper).
    pub activation: Activation,
    /// Squeeze-and-excitation ratio.
    pub se: Option<f64>,
}

impl BneckSpec {
    fn design(&self) -> Design {
        Design {
            filters: self.filters,
            expanded: self.expanded,
            kernel: self.kernel,
            stride: self.stride,
            activation: self.activation,
            se: self.se.map(|r| SeSpec {
                squeeze: Squeeze::Channels(make_divisible(self.expanded as f64 * r)),
                activation: Activation::Relu,
                gate: Activation::Hardsigmoid,
            }),
        }
    }
}

impl LayerKind for BneckSpec {
    const KEYWORDS: &'static [&'static str] = &["bneck"];
    const POSITIONAL: usize = 3;
    type Module = MobileBlock;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(
            3,
            3,
            "filters, expanded channels and kernel (`bneck:24:72:3:s=2`)",
        )?;
        let accepts = Accepts {
            stride: true,
            activation: true,
            se: true,
            ..Accepts::NOTHING
        };
        let opts = args.options(accepts)?;
        Ok(BneckSpec {
            filters: count(args.positional[0], "filters")?,
            expanded: count(args.positional[1], "expanded channels")?,
            kernel: count(args.positional[2], "kernel")?,
            stride: opts.square_stride(args.kind)?,
            activation: opts.activation.unwrap_or(Activation::Relu),
            se: opts.se,
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bneck:{}:{}:{}",
            self.filters, self.expanded, self.kernel
        )?;
        if self.stride != 1 {
            write!(f, ":s={}", self.stride)?;
        }
        if let Some(r) = self.se {
            write!(f, ":se={r:?}")?;
        }
        match self.activation {
            Activation::Relu => Ok(()),
            a => f.write_str(&print::activation(a)),
        }
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        self.design().output(input, "a bneck block")
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        self.design().summarise(shape, namer, ["bneck", "Bneck"])
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> MobileBlock {
        self.design().build(shape, device)
    }

    fn export(&self, block: &MobileBlock, shape: &LayerShape, g: &mut Graph) {
        self.design().export(block, shape, g);
    }
}
