//! `maxpool[:K]`, `avgpool[:K]`, `pool` (= `maxpool:2`) — pooling; the stride is the window
//! unless `s=`, `valid` padding unless `same`.

use std::fmt;

use burn::tensor::Device;

use super::args::{Accepts, Args, dims};
use super::{LayerKind, print, spatial, windowed};
use crate::export::{Attr, Graph, plane, window_attrs};
use crate::layers::{Padding, Pool2d, Pool2dConfig, PoolKind};
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer, row};

/// Max or average pooling.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSpec {
    /// Max or average.
    pub kind: PoolKind,
    /// Window (stride defaults to the window size).
    pub window: Window,
}

impl LayerKind for PoolSpec {
    const KEYWORDS: &'static [&'static str] = &["maxpool", "avgpool", "pool"];
    const POSITIONAL: usize = 1;
    type Module = Pool2d;

    fn parse(args: &Args) -> Result<Self, String> {
        let accepts = Accepts {
            stride: true,
            padding: true,
            ..Accepts::NOTHING
        };
        args.expect(0, 1, "an optional window (`maxpool:2`)")?;
        // `pool` is the short form: a max pool with no options.
        let opts = args.options(if args.kind == "pool" {
            Accepts::NOTHING
        } else {
            accepts
        })?;
        let size = match args.positional.first() {
            Some(arg) => dims(arg, "pool window")?,
            None => [2, 2],
        };
        let mut window = opts.window(size, Padding::Valid);
        window.stride = opts.stride.unwrap_or(size);
        if let Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } = window.padding
            && (top.max(bottom) >= size[0] || left.max(right) >= size[1])
        {
            // A window made of padding alone has no pixel to take: a max pool would output
            // -inf (then NaN), an average one divide by zero; ONNX refuses such pads.
            return Err(format!(
                "padding {top}/{bottom}/{left}/{right} must be smaller than the {}×{} window on \
                 each side",
                size[0], size[1]
            ));
        }
        let kind = if args.kind == "avgpool" {
            PoolKind::Average
        } else {
            PoolKind::Max
        };
        Ok(PoolSpec { kind, window })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keyword = match self.kind {
            PoolKind::Max => "maxpool",
            PoolKind::Average => "avgpool",
        };
        let kernel = self.window.kernel;
        let options = print::window_options(&self.window, kernel, Padding::Valid);
        write!(f, "{keyword}:{}{options}", print::dims(kernel))
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        let s = spatial(input, "pooling")?;
        let [h, w] = windowed(&self.window, s, "the pooling")?;
        Ok(Shape::Spatial([h, w, s[2]]))
    }

    fn export(&self, _: &Pool2d, shape: &LayerShape, g: &mut Graph) {
        let mut attrs = window_attrs(&self.window, plane(shape.input), None);
        let op = match self.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Average => {
                // Keras and sepnet average over the window's real pixels only.
                attrs.push(Attr::Int("count_include_pad", 0));
                "AveragePool"
            }
        };
        let x = g.x();
        g.node(op, &[x], attrs);
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let (base, kind) = match self.kind {
            PoolKind::Max => ("max_pooling2d", "MaxPooling2D"),
            PoolKind::Average => ("average_pooling2d", "AveragePooling2D"),
        };
        row(namer.name(base), kind, shape.output, 0, 0, 0)
    }

    fn build(&self, _: &LayerShape, device: &Device) -> Pool2d {
        Pool2dConfig::new(self.kind, self.window.kernel)
            .with_stride(Some(self.window.stride))
            .with_padding(self.window.padding)
            .init(device)
    }
}

impl super::Forward for Pool2d {
    fn forward(&self, x: crate::Features) -> crate::Features {
        x.map_spatial(|t| Pool2d::forward(self, t))
    }
}
