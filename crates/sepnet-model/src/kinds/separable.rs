//! `sep:F:K` — Keras's `SeparableConv2D`: a depthwise `K×K` convolution (no bias, `m=` depth
//! multiplier) then a pointwise 1×1 convolution to `F` channels (bias unless `nobias`).

use std::fmt;

use burn::tensor::Device;

use super::args::{Accepts, Args, count, dims};
use super::{LayerKind, channels_times, mul, print, spatial, windowed};
use crate::export::{Graph, plane};
use crate::layers::{Activation, DepthwiseFans, Padding, SeparableConv2d, SeparableConv2dConfig};
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer, row, separable_cost};

/// A depthwise separable convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct SeparableSpec {
    /// Output channels of the pointwise part.
    pub filters: usize,
    /// Depthwise geometry.
    pub window: Window,
    /// Depth multiplier.
    pub multiplier: usize,
    /// Pointwise bias.
    pub bias: bool,
    /// Fused activation after the pointwise.
    pub activation: Activation,
    /// Initialisation fans of the depthwise part (`fans=keras`).
    pub fans: DepthwiseFans,
}

impl LayerKind for SeparableSpec {
    const KEYWORDS: &'static [&'static str] = &["sep"];
    const POSITIONAL: usize = 2;
    type Module = SeparableConv2d;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(2, 2, "filters and kernel (`sep:64:3`)")?;
        let opts = args.options(Accepts::DEPTHWISE)?;
        Ok(SeparableSpec {
            filters: count(args.positional[0], "filters")?,
            window: opts.window(dims(args.positional[1], "kernel")?, Padding::Same),
            multiplier: opts.multiplier.unwrap_or(1),
            bias: opts.bias.unwrap_or(true),
            activation: opts.activation.unwrap_or_default(),
            fans: opts.fans.unwrap_or_default(),
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sep:{}:{}{}{}{}{}{}",
            self.filters,
            print::dims(self.window.kernel),
            print::multiplier(self.multiplier),
            print::window_options(&self.window, [1, 1], Padding::Same),
            print::no_bias(self.bias),
            print::activation(self.activation),
            print::fans(self.fans)
        )
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        let s = spatial(input, "a convolution")?;
        let [h, w] = windowed(&self.window, s, "the convolution")?;
        channels_times(s[2], self.multiplier)?;
        Ok(Shape::Spatial([h, w, self.filters]))
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let (c_in, f) = (shape.input.channels() as u64, self.filters as u64);
        let mid = mul(c_in, self.multiplier as u64);
        let k2 = (self.window.kernel[0] * self.window.kernel[1]) as u64;
        let weights = mul(k2, mid).saturating_add(mul(mid, f));
        let params = weights + if self.bias { f } else { 0 };
        let macs = mul(shape.output.plane() as u64, weights);
        let name = namer.name("separable_conv2d");
        let mut r = row(name, "SeparableConv2D", shape.output, params, params, macs);
        r.separable = Some(separable_cost(
            macs,
            shape.output.plane() as u64,
            self.window.kernel,
            c_in,
            f,
            self.multiplier,
        ));
        r
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> SeparableConv2d {
        SeparableConv2dConfig::new(shape.input.channels(), self.filters, self.window.kernel)
            .with_depth_multiplier(self.multiplier)
            .with_stride(self.window.stride)
            .with_dilation(self.window.dilation)
            .with_padding(self.window.padding)
            .with_bias(self.bias)
            .with_activation(self.activation)
            .with_fans(self.fans)
            .init(device)
    }

    fn export(&self, sep: &SeparableConv2d, shape: &LayerShape, g: &mut Graph) {
        g.depthwise("dw", &sep.conv_dw, &self.window, plane(shape.input));
        g.conv("pw", &sep.conv_pw, &Window::square(1), plane(shape.output));
        g.activation(self.activation);
    }

    fn window(&self) -> Option<&Window> {
        Some(&self.window)
    }

    fn set_fans(&mut self, fans: DepthwiseFans) {
        self.fans = fans;
    }
}

impl super::Forward for SeparableConv2d {
    fn forward(&self, x: crate::Features) -> crate::Features {
        x.map_spatial(|t| SeparableConv2d::forward(self, t))
    }
}
