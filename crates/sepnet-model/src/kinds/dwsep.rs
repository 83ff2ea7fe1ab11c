//! `dwsep:F` — MobileNet v1's depthwise separable block: depthwise 3×3 (stride `s=`) → BN →
//! ReLU → pointwise 1×1 to `F` channels → BN → ReLU (`relu6` as Keras builds it).

use std::fmt;

use burn::tensor::Device;

use super::args::{Accepts, Args, count};
use super::{LayerKind, mul, print, spatial, windowed};
use crate::export::{Graph, plane};
use crate::layers::{
    Activation, DepthwiseFans, DepthwiseSeparableBlock, DepthwiseSeparableBlockConfig,
};
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer, Part, block_row, separable_cost};

/// A MobileNet v1 block.
#[derive(Clone, Debug, PartialEq)]
pub struct DwSepSpec {
    /// Output channels.
    pub filters: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Activation after each BN.
    pub activation: Activation,
    /// Initialisation fans of the depthwise part (`fans=keras`).
    pub fans: DepthwiseFans,
}

impl DwSepSpec {
    fn depthwise_window(&self) -> Window {
        Window::square(3).stride(self.stride)
    }
}

impl LayerKind for DwSepSpec {
    const KEYWORDS: &'static [&'static str] = &["dwsep"];
    const POSITIONAL: usize = 1;
    type Module = DepthwiseSeparableBlock;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(1, 1, "filters (`dwsep:64`)")?;
        let accepts = Accepts {
            stride: true,
            fans: true,
            activation: true,
            ..Accepts::NOTHING
        };
        let opts = args.options(accepts)?;
        Ok(DwSepSpec {
            filters: count(args.positional[0], "filters")?,
            stride: opts.square_stride(args.kind)?,
            activation: opts.activation.unwrap_or(Activation::Relu),
            fans: opts.fans.unwrap_or_default(),
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dwsep:{}", self.filters)?;
        if self.stride != 1 {
            write!(f, ":s={}", self.stride)?;
        }
        match self.activation {
            Activation::Relu => {}
            other => write!(f, ":{}", other.name().unwrap_or("linear"))?,
        }
        write!(f, "{}", print::fans(self.fans))
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        let s = spatial(input, "a depthwise separable block")?;
        let [h, w] = windowed(&self.depthwise_window(), s, "the block's depthwise")?;
        Ok(Shape::Spatial([h, w, self.filters]))
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let (c_in, f) = (shape.input.channels() as u64, self.filters as u64);
        let plane = shape.output.plane() as u64;
        let Shape::Spatial([h, w, _]) = shape.output else {
            unreachable!("blocks output spatial shapes")
        };
        let (mid, out) = (Shape::Spatial([h, w, c_in as usize]), shape.output);
        let act = self.activation.name().unwrap_or("linear");
        let (act_dw, act_pw) = (format!("{act}_dw"), format!("{act}_pw"));
        // Keras's layer: ReLU(6.) for relu6, Activation(name) for the smooth ones.
        let layer = match self.activation.fused() {
            Some(_) => "ReLU",
            None => "Activation",
        };
        let (dw, pw) = (9 * c_in, mul(c_in, f));
        let parts = [
            Part::Conv("conv_dw", "DepthwiseConv2D", mid, dw, mul(plane, dw)),
            Part::Norm("bn_dw", mid),
            Part::Op(&act_dw, layer, mid),
            Part::Conv("conv_pw", "Conv2D", out, pw, mul(plane, pw)),
            Part::Norm("bn_pw", out),
            Part::Op(&act_pw, layer, out),
        ];
        let name = namer.name("dwsep_block");
        let mut r = block_row(name, "DepthwiseSeparableBlock", out, &parts);
        r.separable = Some(separable_cost(r.macs, plane, [3, 3], c_in, f, 1));
        r
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> DepthwiseSeparableBlock {
        DepthwiseSeparableBlockConfig::new(shape.input.channels(), self.filters)
            .with_stride(self.stride)
            .with_activation(self.activation)
            .with_fans(self.fans)
            .init(device)
    }

    fn export(&self, block: &DepthwiseSeparableBlock, shape: &LayerShape, g: &mut Graph) {
        g.depthwise(
            "dw",
            &block.conv_dw,
            &self.depthwise_window(),
            plane(shape.input),
        );
        g.batch_norm("bn_dw", &block.bn_dw);
        g.activation(self.activation);
        g.conv(
            "pw",
            &block.conv_pw,
            &Window::square(1),
            plane(shape.output),
        );
        g.batch_norm("bn_pw", &block.bn_pw);
        g.activation(self.activation);
    }

    fn set_fans(&mut self, fans: DepthwiseFans) {
        self.fans = fans;
    }
}

impl super::Forward for DepthwiseSeparableBlock {
    fn forward(&self, x: crate::Features) -> crate::Features {
        x.map_spatial(|t| DepthwiseSeparableBlock::forward(self, t))
    }
}
