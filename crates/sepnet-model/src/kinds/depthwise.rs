//! `dw:K` — a depthwise convolution (Keras `DepthwiseConv2D`): each input channel convolved
//! with its own `m` kernels (`m=` depth multiplier), no bias unless `bias`.

use std::fmt;

use burn::tensor::Device;

use super::args::{Accepts, Args, dims};
use super::{LayerKind, channels_times, mul, print, spatial, windowed};
use crate::export::{Graph, plane};
use crate::layers::{Activation, DepthwiseConv2d, DepthwiseConv2dConfig, DepthwiseFans, Padding};
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer, row};

/// A depthwise convolution (output channels = input × multiplier).
#[derive(Clone, Debug, PartialEq)]
pub struct DepthwiseSpec {
    /// Geometry.
    pub window: Window,
    /// Depth multiplier.
    pub multiplier: usize,
    /// Per-channel bias.
    pub bias: bool,
    /// Fused activation.
    pub activation: Activation,
    /// Initialisation fans (`fans=keras`).
    pub fans: DepthwiseFans,
}

impl LayerKind for DepthwiseSpec {
    const KEYWORDS: &'static [&'static str] = &["dw"];
    const POSITIONAL: usize = 1;
    type Module = DepthwiseConv2d;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(1, 1, "a kernel (`dw:3`)")?;
        let opts = args.options(Accepts::DEPTHWISE)?;
        Ok(DepthwiseSpec {
            window: opts.window(dims(args.positional[0], "kernel")?, Padding::Same),
            multiplier: opts.multiplier.unwrap_or(1),
            bias: opts.bias.unwrap_or(false),
            activation: opts.activation.unwrap_or_default(),
            fans: opts.fans.unwrap_or_default(),
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dw:{}{}{}{}{}{}",
            print::dims(self.window.kernel),
            print::multiplier(self.multiplier),
            print::window_options(&self.window, [1, 1], Padding::Same),
            if self.bias { ":bias" } else { "" },
            print::activation(self.activation),
            print::fans(self.fans)
        )
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        let s = spatial(input, "a depthwise convolution")?;
        let [h, w] = windowed(&self.window, s, "the depthwise convolution")?;
        Ok(Shape::Spatial([
            h,
            w,
            channels_times(s[2], self.multiplier)?,
        ]))
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let c_out = shape.output.channels() as u64;
        let k2 = (self.window.kernel[0] * self.window.kernel[1]) as u64;
        let params = mul(k2, c_out) + if self.bias { c_out } else { 0 };
        let macs = mul(shape.output.plane() as u64, mul(k2, c_out));
        let name = namer.name("depthwise_conv2d");
        row(name, "DepthwiseConv2D", shape.output, params, params, macs)
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> DepthwiseConv2d {
        DepthwiseConv2dConfig::new(shape.input.channels(), self.window.kernel)
            .with_depth_multiplier(self.multiplier)
            .with_stride(self.window.stride)
            .with_dilation(self.window.dilation)
            .with_padding(self.window.padding)
            .with_bias(self.bias)
            .with_activation(self.activation)
            .with_fans(self.fans)
            .init(device)
    }

    fn export(&self, dw: &DepthwiseConv2d, shape: &LayerShape, g: &mut Graph) {
        g.depthwise("dw", dw, &self.window, plane(shape.input));
        g.activation(self.activation);
    }

    fn window(&self) -> Option<&Window> {
        Some(&self.window)
    }

    fn set_fans(&mut self, fans: DepthwiseFans) {
        self.fans = fans;
    }
}

impl super::Forward for DepthwiseConv2d {
    fn forward(&self, x: crate::Features) -> crate::Features {
        x.map_spatial(|t| DepthwiseConv2d::forward(self, t))
    }
}
