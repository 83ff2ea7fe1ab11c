//! The block MobileNet v3's bneck and EfficientNet's MBConv share (both MobileNet v2's inverted
//! residual grown a kernel size, an activation and squeeze-and-excitation): expand 1×1 to the
//! expanded width → BN → activation (left out when the width equals the input's) → depthwise
//! K×K (stride) → BN → activation → squeeze-and-excitation (optional) → project 1×1 → BN, plus
//! the input when the stride is 1 and the channels match. `bneck.rs` and `mbconv.rs` parse
//! their own spec text into a [`Design`]; everything else about the block is here.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::se::{SeSpec, SqueezeExcite};
use super::{channels_times, mul, spatial, windowed};
use crate::export::{Graph, plane};
use crate::layers::{
    Activation, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, DepthwiseConv2d,
    DepthwiseConv2dConfig,
};
use crate::spec::{LayerShape, Shape, Window};
use crate::summary::{LayerSummary, Namer, Part, block_row};

/// One block, resolved for its input: every width explicit.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    /// Output channels.
    pub filters: usize,
    /// Channels after the expansion (the input's: no expansion).
    pub expanded: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Activation after the expansion and the depthwise.
    pub activation: Activation,
    /// Squeeze-and-excitation on the expanded channels (its squeeze a channel count).
    pub se: Option<SeSpec>,
}

/// The built block.
#[derive(Module, Debug)]
pub struct MobileBlock {
    /// 1×1 expansion and its BatchNorm (absent without expansion).
    pub expand: Option<(Conv2d, BatchNorm)>,
    /// Depthwise K×K.
    pub conv_dw: DepthwiseConv2d,
    /// BatchNorm after the depthwise.
    pub bn_dw: BatchNorm,
    /// Squeeze-and-excitation.
    pub se: Option<SqueezeExcite>,
    /// 1×1 projection (linear).
    pub project: Conv2d,
    /// BatchNorm after the projection.
    pub bn_project: BatchNorm,
    #[module(skip)]
    activation: Activation,
    /// Whether the input is added to the output.
    #[module(skip)]
    pub residual: bool,
}

impl MobileBlock {
    /// `[batch, c_in, h, w]` → `[batch, filters, h / stride, w / stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = x.clone();
        if let Some((conv, bn)) = &self.expand {
            y = bn.forward_activated(conv.forward(y), self.activation);
        }
        y = (self.bn_dw).forward_activated(self.conv_dw.forward(y), self.activation);
        if let Some(se) = &self.se {
            y = se.forward(y);
        }
        y = self.bn_project.forward(self.project.forward(y));
        if self.residual { y + x } else { y }
    }
}

impl Design {
    fn window(&self) -> Window {
        Window::square(self.kernel).stride(self.stride)
    }

    fn residual(&self, c_in: usize) -> bool {
        self.stride == 1 && c_in == self.filters
    }

    /// The block's output for `input`.
    pub fn output(&self, input: Shape, what: &str) -> Result<Shape, String> {
        let s = spatial(input, what)?;
        channels_times(self.expanded, 1)?;
        let [h, w] = windowed(&self.window(), s, what)?;
        Ok(Shape::Spatial([h, w, self.filters]))
    }

    /// The block's summary row, `name` and `class` as Keras-like names.
    pub fn summarise(
        &self,
        shape: &LayerShape,
        namer: &mut Namer,
        names: [&'static str; 2],
    ) -> LayerSummary {
        let (c_in, f, mid) = (
            shape.input.channels(),
            self.filters as u64,
            self.expanded as u64,
        );
        let (Shape::Spatial([h_in, w_in, _]), Shape::Spatial([h, w, _])) =
            (shape.input, shape.output)
        else {
            unreachable!("the block takes and gives spatial shapes")
        };
        let (plane_in, plane) = ((h_in * w_in) as u64, (h * w) as u64);
        let (expanded, filtered) = (
            Shape::Spatial([h_in, w_in, self.expanded]),
            Shape::Spatial([h, w, self.expanded]),
        );
        let act = layer_class(self.activation);
        let mut parts = Vec::new();
        if self.expanded != c_in {
            let expand = mul(c_in as u64, mid);
            parts.push(Part::Conv(
                "expand",
                "Conv2D",
                expanded,
                expand,
                mul(plane_in, expand),
            ));
            parts.extend([
                Part::Norm("expand_bn", expanded),
                Part::Op("expand_activation", act, expanded),
            ]);
        }
        let dw = mul((self.kernel * self.kernel) as u64, mid);
        parts.extend([
            Part::Conv("depthwise", "DepthwiseConv2D", filtered, dw, mul(plane, dw)),
            Part::Norm("depthwise_bn", filtered),
            Part::Op("depthwise_activation", act, filtered),
        ]);
        parts.extend(self.se_parts(filtered));
        let project = mul(mid, f);
        parts.extend([
            Part::Conv(
                "project",
                "Conv2D",
                shape.output,
                project,
                mul(plane, project),
            ),
            Part::Norm("project_bn", shape.output),
        ]);
        if self.residual(c_in) {
            parts.push(Part::Op("add", "Add", shape.output));
        }
        block_row(namer.name(names[0]), names[1], shape.output, &parts)
    }

    /// The squeeze-and-excitation's rows (none without it), on the depthwise output `filtered`.
    fn se_parts(&self, filtered: Shape) -> Vec<Part<'static>> {
        let Some(se) = &self.se else {
            return Vec::new();
        };
        let point = |n| Shape::Spatial([1, 1, n]);
        let (mid, s) = (self.expanded as u64, se.squeezed(self.expanded) as u64);
        vec![
            Part::Op("se_squeeze", "GlobalAveragePooling2D", point(self.expanded)),
            Part::Conv(
                "se_reduce",
                "Conv2D",
                point(s as usize),
                mul(mid, s) + s,
                mul(mid, s),
            ),
            Part::Op(
                "se_activation",
                layer_class(se.activation),
                point(s as usize),
            ),
            Part::Conv(
                "se_expand",
                "Conv2D",
                point(self.expanded),
                mul(s, mid) + mid,
                mul(s, mid),
            ),
            Part::Op("se_gate", layer_class(se.gate), point(self.expanded)),
            Part::Op("se_excite", "Multiply", filtered),
        ]
    }

    /// The block for `shape`.
    pub fn build(&self, shape: &LayerShape, device: &Device) -> MobileBlock {
        let c_in = shape.input.channels();
        let mid = self.expanded;
        let pointwise = |from, to| {
            Conv2dConfig::new(from, to, [1, 1])
                .with_bias(false)
                .init(device)
        };
        let norm = |channels| BatchNormConfig::new(channels).init(device);
        let squeezed = LayerShape {
            input: Shape::Spatial([1, 1, mid]),
            output: Shape::Spatial([1, 1, mid]),
        };
        MobileBlock {
            expand: (mid != c_in).then(|| (pointwise(c_in, mid), norm(mid))),
            conv_dw: DepthwiseConv2dConfig::new(mid, [self.kernel; 2])
                .with_stride([self.stride; 2])
                .init(device),
            bn_dw: norm(mid),
            se: self
                .se
                .as_ref()
                .map(|se| se.build_module(&squeezed, device)),
            project: pointwise(mid, self.filters),
            bn_project: norm(self.filters),
            activation: self.activation,
            residual: self.residual(c_in),
        }
    }

    /// The block as ONNX nodes.
    pub fn export(&self, block: &MobileBlock, shape: &LayerShape, g: &mut Graph) {
        let input = g.x();
        let one = Window::square(1);
        if let Some((conv, bn)) = &block.expand {
            g.conv("expand", conv, &one, plane(shape.input));
            g.batch_norm("bn_expand", bn);
            g.activation(self.activation);
        }
        g.depthwise("dw", &block.conv_dw, &self.window(), plane(shape.input));
        g.batch_norm("bn_dw", &block.bn_dw);
        g.activation(self.activation);
        if let (Some(spec), Some(se)) = (&self.se, &block.se) {
            spec.emit(se, g, "se.");
        }
        g.conv("project", &block.project, &one, plane(shape.output));
        g.batch_norm("bn_project", &block.bn_project);
        if block.residual {
            let output = g.x();
            g.node("Add", &[output, input], vec![]);
        }
    }
}

/// The Keras layer an activation is: ReLU for the piecewise-linear ones, `Activation` else.
pub(crate) fn layer_class(activation: Activation) -> &'static str {
    match activation.fused() {
        Some(_) => "ReLU",
        None => "Activation",
    }
}

impl super::Forward for MobileBlock {
    fn forward(&self, x: crate::Features) -> crate::Features {
        x.map_spatial(|t| MobileBlock::forward(self, t))
    }
}
