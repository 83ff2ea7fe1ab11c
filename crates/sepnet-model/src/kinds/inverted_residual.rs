//! `ir:F` — MobileNet v2's inverted residual block (Sandler et al., 2018): expand 1×1 to
//! `e×` the input channels → BN → ReLU6 → depthwise 3×3 (stride `s=`) → BN → ReLU6 → project
//! 1×1 to `F` channels → BN, plus the input when the stride is 1 and the channels match.
//! `e=1` leaves the expansion out, as the network's first block does. Defaults: `e=6`, `s=1`.

use std::fmt;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::args::{Accepts, Args, count};
use super::{LayerKind, channels_times, mul, print, spatial, windowed};
use crate::export::{Graph, plane};
use crate::kernels;
use crate::layers::{
    Activation, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, DepthwiseConv2d,
    DepthwiseConv2dConfig, DepthwiseFans, Fused,
};
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer, Part, block_row};

/// An inverted residual block, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct InvertedResidualSpec {
    /// Output channels (of the projection).
    pub filters: usize,
    /// Expansion factor of the first 1×1 convolution (1: none).
    pub expansion: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Initialisation fans of the depthwise kernel.
    pub fans: DepthwiseFans,
}

/// The built block.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1×1 expansion and its BatchNorm (absent when the expansion is 1).
    pub expand: Option<(Conv2d, BatchNorm)>,
    /// Depthwise 3×3.
    pub conv_dw: DepthwiseConv2d,
    /// BatchNorm after the depthwise.
    pub bn_dw: BatchNorm,
    /// 1×1 projection (linear: no activation after it).
    pub project: Conv2d,
    /// BatchNorm after the projection.
    pub bn_project: BatchNorm,
    /// Whether the input is added to the output.
    #[module(skip)]
    pub residual: bool,
}

impl InvertedResidual {
    /// `[batch, c_in, h, w]` → `[batch, filters, h / stride, w / stride]`.
    ///
    /// At inference on sepnet's CPU kernels every BatchNorm folds into its convolution, and
    /// the depthwise and projection halves run an image at a time (`kernels::separable`), as
    /// MobileNet's blocks do: the BatchNorms as passes of their own made MobileNet-v2's
    /// forward pass 1.46× Keras's.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = x.clone();
        if let Some((conv, bn)) = &self.expand {
            y = match bn.folds_at(&y) {
                true => conv.forward_folded(y, bn, Activation::Relu6),
                false => bn.forward_activated(conv.forward(y), Activation::Relu6),
            };
        }
        y = match self.fused_tail(&y) {
            Some(y) => y,
            None => {
                let y = self.conv_dw.forward(y);
                let y = self.bn_dw.forward_activated(y, Activation::Relu6);
                self.bn_project.forward(self.project.forward(y))
            }
        };
        if self.residual { y + x } else { y }
    }

    /// Depthwise → BN → ReLU6 → projection → BN at inference, both BatchNorms folded, in one
    /// pass per image; `None` where that does not apply (training, another device, a batch
    /// the kernel does not pay for).
    fn fused_tail(&self, y: &Tensor<4>) -> Option<Tensor<4>> {
        let geometry = self.conv_dw.fusable_geometry(y)?;
        let (dw, dw_shift) = self.bn_dw.fold(self.conv_dw.weight.val(), None);
        let bias = self.project.bias.as_ref().map(|b| b.val());
        let (project, shift) = self.bn_project.fold(self.project.weight.val(), bias);
        let activations = [Fused::Relu6, Fused::Linear];
        let biases = [dw_shift, shift];
        Some(kernels::separable_inference(
            y.clone(),
            [dw, project],
            biases,
            geometry,
            activations,
        ))
    }
}

impl InvertedResidualSpec {
    fn depthwise_window(&self) -> Window {
        Window::square(3).stride(self.stride)
    }
}

impl LayerKind for InvertedResidualSpec {
    const KEYWORDS: &'static [&'static str] = &["ir"];
    const POSITIONAL: usize = 1;
    type Module = InvertedResidual;

    fn parse(args: &Args) -> Result<Self, String> {
        args.expect(1, 1, "filters (`ir:24:e=6:s=2`)")?;
        let accepts = Accepts {
            stride: true,
            expansion: true,
            fans: true,
            ..Accepts::NOTHING
        };
        let opts = args.options(accepts)?;
        Ok(InvertedResidualSpec {
            filters: count(args.positional[0], "filters")?,
            expansion: opts.expansion.unwrap_or(6),
            stride: opts.square_stride(args.kind)?,
            fans: opts.fans.unwrap_or_default(),
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ir:{}", self.filters)?;
        if self.expansion != 6 {
            write!(f, ":e={}", self.expansion)?;
        }
        if self.stride != 1 {
            write!(f, ":s={}", self.stride)?;
        }
        write!(f, "{}", print::fans(self.fans))
    }

    fn output(&self, input: Shape) -> Result<Shape, String> {
        let s = spatial(input, "an inverted residual block")?;
        channels_times(s[2], self.expansion)?;
        let [h, w] = windowed(&self.depthwise_window(), s, "the block's depthwise")?;
        Ok(Shape::Spatial([h, w, self.filters]))
    }

    fn summarise(&self, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
        let (c_in, f) = (shape.input.channels() as u64, self.filters as u64);
        let mid = mul(c_in, self.expansion as u64);
        let (plane_in, plane) = (shape.input.plane() as u64, shape.output.plane() as u64);
        let (Shape::Spatial([h_in, w_in, _]), Shape::Spatial([h, w, _])) =
            (shape.input, shape.output)
        else {
            unreachable!("the block takes and gives spatial shapes")
        };
        let expanded = Shape::Spatial([h_in, w_in, mid as usize]);
        let filtered = Shape::Spatial([h, w, mid as usize]);
        let (expand, dw, project) = (mul(c_in, mid), mul(9, mid), mul(mid, f));
        let mut parts = Vec::new();
        if self.expansion != 1 {
            parts.push(Part::Conv(
                "expand",
                "Conv2D",
                expanded,
                expand,
                mul(plane_in, expand),
            ));
            parts.push(Part::Norm("expand_bn", expanded));
            parts.push(Part::Op("expand_relu", "ReLU6", expanded));
        }
        parts.extend([
            Part::Conv("depthwise", "DepthwiseConv2D", filtered, dw, mul(plane, dw)),
            Part::Norm("depthwise_bn", filtered),
            Part::Op("depthwise_relu", "ReLU6", filtered),
            Part::Conv(
                "project",
                "Conv2D",
                shape.output,
                project,
                mul(plane, project),
            ),
            Part::Norm("project_bn", shape.output),
        ]);
        if self.stride == 1 && c_in == f {
            parts.push(Part::Op("add", "Add", shape.output));
        }
        let name = namer.name("inverted_residual");
        block_row(name, "InvertedResidual", shape.output, &parts)
    }

    fn build(&self, shape: &LayerShape, device: &Device) -> InvertedResidual {
        let c_in = shape.input.channels();
        let mid = c_in * self.expansion;
        let pointwise = |from, to| {
            Conv2dConfig::new(from, to, [1, 1])
                .with_bias(false)
                .init(device)
        };
        let norm = |channels| BatchNormConfig::new(channels).init(device);
        InvertedResidual {
            expand: (self.expansion != 1).then(|| (pointwise(c_in, mid), norm(mid))),
            conv_dw: DepthwiseConv2dConfig::new(mid, [3, 3])
                .with_stride([self.stride; 2])
                .with_fans(self.fans)
                .init(device),
            bn_dw: norm(mid),
            project: pointwise(mid, self.filters),
            bn_project: norm(self.filters),
            residual: self.stride == 1 && c_in == self.filters,
        }
    }

    fn export(&self, block: &InvertedResidual, shape: &LayerShape, g: &mut Graph) {
        let input = g.x();
        let one = Window::square(1);
        if let Some((conv, bn)) = &block.expand {
            g.conv("expand", conv, &one, plane(shape.input));
            g.batch_norm("bn_expand", bn);
            g.activation(Activation::Relu6);
        }
        g.depthwise(
            "dw",
            &block.conv_dw,
            &self.depthwise_window(),
            plane(shape.input),
        );
        g.batch_norm("bn_dw", &block.bn_dw);
        g.activation(Activation::Relu6);
        g.conv("project", &block.project, &one, plane(shape.output));
        g.batch_norm("bn_project", &block.bn_project);
        if block.residual {
            let output = g.x();
            g.node("Add", &[output, input], vec![]);
        }
    }

    fn set_fans(&mut self, fans: DepthwiseFans) {
        self.fans = fans;
    }
}

impl super::Forward for InvertedResidual {
    fn forward(&self, x: crate::Features) -> crate::Features {
        x.map_spatial(|t| InvertedResidual::forward(self, t))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use crate::spec::NetworkSpec;
    use crate::{Network, Summary};

    /// (input h×w×c, layer, output h×w×c, parameters): the counts written out by hand.
    #[test]
    fn shapes_and_parameters() {
        let table = [
            // expand 16·96 + BN 4·96 + dw 9·96 + BN 4·96 + project 96·24 + BN 4·24
            (
                [56, 56, 16],
                "ir:24",
                [56, 56, 24],
                1536 + 384 + 864 + 384 + 2304 + 96,
            ),
            (
                [56, 56, 16],
                "ir:24:s=2",
                [28, 28, 24],
                1536 + 384 + 864 + 384 + 2304 + 96,
            ),
            // no expansion: dw 9·32 + BN + project 32·16 + BN
            (
                [112, 112, 32],
                "ir:16:e=1",
                [112, 112, 16],
                288 + 128 + 512 + 64,
            ),
            (
                [7, 7, 160],
                "ir:160",
                [7, 7, 160],
                153600 + 3840 + 8640 + 3840 + 153600 + 640,
            ),
        ];
        for (input, text, output, params) in table {
            let spec = NetworkSpec::parse(text, input).unwrap();
            assert_eq!(spec.to_string(), text, "prints back");
            let summary = Summary::of(&spec).unwrap();
            assert_eq!(summary.layers[0].output_shape.to_vec(), output, "{text}");
            assert_eq!(summary.total_params, params, "{text}");
        }
    }

    #[test]
    fn the_residual_is_added_only_when_stride_and_channels_allow() {
        let device = burn::tensor::Device::flex();
        for (text, residual) in [
            ("ir:8:e=2", true),
            ("ir:8:e=2:s=2", false),
            ("ir:12:e=2", false),
        ] {
            let spec = NetworkSpec::parse(&format!("{text},gap,dense:3"), [6, 6, 8]).unwrap();
            let net = Network::new(&spec, &device).unwrap();
            let crate::Layer::InvertedResidual(block) = &net.layers[0] else {
                panic!()
            };
            assert_eq!(block.residual, residual, "{text}");
            let x = Tensor::<4>::random([2, 8, 6, 6], Distribution::Default, &device);
            assert_eq!(net.forward(x).dims(), [2, 3]);
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        for (text, message) in [
            ("ir", "takes filters"),
            ("ir:8:e=0", "expansion must be a positive integer"),
            ("ir:8:s=2x1", "square stride"),
            ("ir:8:relu", "does not take an activation"),
        ] {
            let err = NetworkSpec::parse(text, [8, 8, 4]).unwrap_err().to_string();
            assert!(err.contains(message), "{text}: {err}");
        }
    }

    /// Sets a BatchNorm's statistics and parameters to something other than its defaults.
    fn randomise(bn: &mut crate::layers::BatchNorm, device: &burn::tensor::Device) {
        use burn::module::{Param, RunningState};
        let n = bn.inner.gamma.dims()[0];
        let random = |lo, hi| Tensor::<1>::random([n], Distribution::Uniform(lo, hi), device);
        bn.inner.gamma = Param::from_tensor(random(0.5, 1.5));
        bn.inner.beta = Param::from_tensor(random(-0.5, 0.5));
        bn.inner.running_mean = RunningState::new(random(-0.3, 0.3));
        bn.inner.running_var = RunningState::new(random(0.5, 2.0));
    }

    /// Inference with every BatchNorm folded (the expansion a convolution with its epilogue,
    /// the rest one pass per image) gives what the layers give one after the other: with the
    /// residual, at stride 2 (the one-pass kernel's parts), without the expansion, and at
    /// batch 1 (the layers' own path, the expansion still folded).
    #[test]
    fn folded_inference_matches_the_layers() {
        use crate::layers::Activation;
        let device = burn::tensor::Device::flex();
        for (text, c, batch) in [
            ("ir:8:e=3", 8, 3),
            ("ir:12:s=2:e=2", 8, 3),
            ("ir:6:e=1", 6, 3),
            ("ir:8:e=2", 8, 1),
        ] {
            let spec = NetworkSpec::parse(&format!("{text},gap,dense:2"), [9, 9, c]).unwrap();
            let mut net = Network::new(&spec, &device).unwrap();
            let crate::Layer::InvertedResidual(block) = &mut net.layers[0] else {
                panic!("{text} is an inverted residual block")
            };
            randomise(&mut block.bn_dw, &device);
            randomise(&mut block.bn_project, &device);
            if let Some((_, bn)) = &mut block.expand {
                randomise(bn, &device);
            }
            // Spread wide enough that ReLU6 clamps at 6 as well as at 0.
            let x = Tensor::<4>::random([batch, c, 9, 9], Distribution::Normal(0.0, 8.0), &device);
            let folded = block
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let mut y = x.clone();
            if let Some((conv, bn)) = &block.expand {
                y = bn.forward_activated(conv.forward(y), Activation::Relu6);
            }
            let y = block
                .bn_dw
                .forward_activated(block.conv_dw.forward(y), Activation::Relu6);
            let y = block.bn_project.forward(block.project.forward(y));
            let y = if block.residual { y + x } else { y };
            let apart = y.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(folded.len(), apart.len());
            for (a, b) in folded.iter().zip(&apart) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{text}: {a} vs {b}"
                );
            }
        }
    }
}
