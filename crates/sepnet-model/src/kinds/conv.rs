//! `conv:F:K` — a full convolution (Keras `Conv2D`): `F` filters of `K×K` over all input
//! channels, `same` padding, bias, optional fused activation.

use std::fmt;

use burn::tensor::Device;

use super::args::{Accepts, Args, count, dims};
use super::{LayerKind, mul, print, spatial, windowed};
use crate::export::{Graph, plane};
use crate::layers::{Activation, Conv2d, Conv2dConfig, Padding};
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer, row};

/// A full convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvSpec {
    /// Output channels.
    pub filters: usize,
    /// Geometry.
    pub window: Window,
    /// Per-channel bias.
    pub bias: bool,
    /// Fused activation.
    pub activation: Activation,
}

impl LayerKind for ConvSpec {
    const KEYWORDS: &'static [&'static str] = &["conv"];
    const POSITIONAL: usize = 2;
    type Module = Conv2d;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(2, 2, "filters and kernel (`conv:32:3`)")?;
        let opts = args.options(Accepts::CONV)?;
        Ok(ConvSpec {
            filters: count(args.positional[0], "filters")?,
            window: opts.window(dims(args.positional[1], "kernel")?, Padding::Same),
            bias: opts.bias.unwrap_or(true),
            activation: opts.activation.unwrap_or_default(),
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conv:{}:{}{}{}{}",
            self.filters,
            print::dims(self.window.kernel),
            print::window_options(&self.window, [1, 1], Padding::Same),
            print::no_bias(self.bias),
            print::activation(self.activation)
        )
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        let s = spatial(input, "a convolution")?;
        let [h, w] = windowed(&self.window, s, "the convolution")?;
        Ok(Shape::Spatial([h, w, self.filters]))
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let (c_in, f) = (shape.input.channels() as u64, self.filters as u64);
        let k2 = (self.window.kernel[0] * self.window.kernel[1]) as u64;
        let weights = mul(mul(k2, c_in), f);
        let params = weights + if self.bias { f } else { 0 };
        let macs = mul(shape.output.plane() as u64, weights);
        row(
            namer.name("conv2d"),
            "Conv2D",
            shape.output,
            params,
            params,
            macs,
        )
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> Conv2d {
        Conv2dConfig::new(shape.input.channels(), self.filters, self.window.kernel)
            .with_stride(self.window.stride)
            .with_dilation(self.window.dilation)
            .with_padding(self.window.padding)
            .with_bias(self.bias)
            .with_activation(self.activation)
            .init(device)
    }

    fn export(&self, conv: &Conv2d, shape: &LayerShape, g: &mut Graph) {
        g.conv("conv", conv, &self.window, plane(shape.input));
        g.activation(self.activation);
    }

    fn window(&self) -> Option<&Window> {
        Some(&self.window)
    }
}

impl super::Forward for Conv2d {
    fn forward(&self, x: crate::Features) -> crate::Features {
        x.map_spatial(|t| Conv2d::forward(self, t))
    }
}
