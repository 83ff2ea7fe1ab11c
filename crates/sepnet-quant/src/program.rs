//! A network lowered for inference: the ONNX nodes its kinds export, with every BatchNorm
//! folded into the convolution before it and every ReLU/ReLU6 fused into the convolution or
//! dense layer before it (sigmoid, tanh, hard-sigmoid and hard-swish stay ops of their own, as
//! does squeeze-and-excitation's `Mul`). This is the form that is quantized (what Krishnamoorthi's
//! whitepaper and ONNX Runtime's `quantize_static` quantize), and the float form it is
//! calibrated with.

use std::collections::HashMap;

use sepnet_model::export::{Graph, Node};

/// An activation: ReLU and ReLU6 fused into the op that produces them, the others (MobileNet
/// v3's and EfficientNet's) ops of their own between a dequantization and a quantization, as
/// ONNX's QDQ form defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// None.
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `max(0, min(1, x/6 + 1/2))` (ONNX `HardSigmoid` with Keras's α = 1/6, β = 1/2).
    HardSigmoid,
    /// `x · HardSigmoid(x)`.
    HardSwish,
}

impl Act {
    /// Applies it to one value.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::Linear => x,
            Act::Relu => x.max(0.0),
            Act::Relu6 => x.clamp(0.0, 6.0),
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
            Act::HardSigmoid => (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Act::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        }
    }
}

/// A sliding window on an NCHW plane, with ONNX's explicit pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[dh, dw]`.
    pub dilation: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
}

impl Window {
    fn of(node: &Node) -> Result<Window, String> {
        let pair = |name: &str, default: usize| -> Result<[usize; 2], String> {
            match node.ints(name) {
                Some(&[a, b]) if a >= 0 && b >= 0 => Ok([a as usize, b as usize]),
                None => Ok([default; 2]),
                Some(v) => Err(format!("{}: `{name}` {v:?} is not two sizes", node.output)),
            }
        };
        let pads = match node.ints("pads") {
            Some(&[t, l, b, r]) => [t, l, b, r].map(|p| p.max(0) as usize),
            _ => [0; 4],
        };
        Ok(Window {
            kernel: pair("kernel_shape", 1)?,
            stride: pair("strides", 1)?,
            dilation: pair("dilations", 1)?,
            pads,
        })
    }

    /// The `[oh, ow]` it produces from an `[h, w]` plane.
    pub fn output(&self, [h, w]: [usize; 2]) -> [usize; 2] {
        let size = |n: usize, i: usize| {
            let span = self.dilation[i] * (self.kernel[i] - 1) + 1;
            (n + self.pads[i] + self.pads[i + 2]).saturating_sub(span) / self.stride[i] + 1
        };
        [size(h, 0), size(w, 1)]
    }
}

/// A convolution (full, depthwise or pointwise: `group` says which) with its bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// `[out, in / group, kh, kw]`.
    pub weight: Vec<f32>,
    /// One per output channel (zeros where the layer had none).
    pub bias: Vec<f32>,
    /// Output channels.
    pub out: usize,
    /// Groups: 1 for a full convolution, the input channels for a depthwise one.
    pub group: usize,
    /// Its window.
    pub window: Window,
}

/// A dense layer: `y = W x + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[out, in]`.
    pub weight: Vec<f32>,
    /// One per output.
    pub bias: Vec<f32>,
    /// Outputs.
    pub out: usize,
}

/// What an op computes.
#[derive(Clone, Debug, PartialEq)]
pub enum OpKind {
    /// A convolution, BatchNorm folded in.
    Conv(Conv),
    /// A dense layer.
    Dense(Dense),
    /// Max pooling (exact on int8: its output shares its input's quantization).
    MaxPool(Window),
    /// Average pooling over the window's real pixels (`count_include_pad = 0`).
    AvgPool(Window),
    /// Mean over the plane.
    GlobalAvgPool,
    /// `[c, h, w]` as one vector (a no-op on the values; shares its input's quantization).
    Flatten,
    /// The sum of two tensors (MobileNet v2's residual).
    Add,
    /// The product of two tensors, or of planes and a per-channel vector (squeeze-and-excitation).
    Mul,
    /// An activation not fused into a convolution or dense layer.
    Activation,
}

/// One op of the program.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// What it computes.
    pub kind: OpKind,
    /// The activation applied to its result.
    pub act: Act,
    /// The tensors it reads.
    pub inputs: Vec<usize>,
    /// The tensor it writes.
    pub output: usize,
    /// The ONNX operator it was exported as, with its window attributes.
    pub node: Node,
}

/// The lowered network: tensor 0 is the input images; op `i` writes tensor `i + 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// `[c, h, w]` of each tensor (`[n, 1, 1]` for a vector).
    pub shapes: Vec<[usize; 3]>,
    /// The name of each tensor in the exported graph (`images`, `layers.3.relu12`, ...).
    pub names: Vec<String>,
    /// The ops in execution order.
    pub ops: Vec<Op>,
}

impl Program {
    /// The tensor holding the logits.
    pub fn output(&self) -> usize {
        self.shapes.len() - 1
    }

    /// Elements of tensor `t` per image.
    pub fn len(&self, t: usize) -> usize {
        self.shapes[t].iter().product()
    }

    /// Lowers an exported graph of an input `[c, h, w]`.
    pub fn lower(graph: &Graph, input: [usize; 3]) -> Result<Program, String> {
        Lowering::new(graph, input).run()
    }
}

struct Lowering<'a> {
    graph: &'a Graph,
    weights: HashMap<&'a str, &'a [f32]>,
    readers: HashMap<&'a str, usize>,
    slots: HashMap<String, usize>,
    program: Program,
}

impl<'a> Lowering<'a> {
    fn new(graph: &'a Graph, [c, h, w]: [usize; 3]) -> Self {
        let weights = graph
            .weights()
            .iter()
            .map(|w| (w.name.as_str(), w.data.as_slice()))
            .collect();
        let mut readers = HashMap::new();
        for node in graph.nodes() {
            for input in &node.inputs {
                *readers.entry(input.as_str()).or_insert(0) += 1;
            }
        }
        let program = Program {
            shapes: vec![[c, h, w]],
            names: vec!["images".into()],
            ops: Vec::new(),
        };
        let slots = HashMap::from([("images".to_string(), 0)]);
        Lowering {
            graph,
            weights,
            readers,
            slots,
            program,
        }
    }

    fn run(mut self) -> Result<Program, String> {
        let nodes = self.graph.nodes();
        let mut i = 0;
        while i < nodes.len() {
            i = self.op(nodes, i)?;
        }
        if self.program.ops.is_empty() {
            return Err("the network has no layer to quantize".into());
        }
        Ok(self.program)
    }

    fn weight(&self, name: &str) -> Result<Vec<f32>, String> {
        self.weights
            .get(name)
            .map(|w| w.to_vec())
            .ok_or_else(|| format!("weight `{name}` is missing from the exported graph"))
    }

    fn input(&self, node: &Node, i: usize) -> Result<usize, String> {
        let name = node
            .inputs
            .get(i)
            .ok_or_else(|| format!("{} lacks an input", node.output))?;
        self.slots.get(name).copied().ok_or_else(|| {
            format!(
                "{} reads `{name}`, which no earlier layer wrote",
                node.output
            )
        })
    }

    /// Whether `next` reads `node`'s output and nothing else does.
    fn only_reader(&self, node: &Node, next: Option<&Node>) -> bool {
        next.is_some_and(|n| n.inputs.first() == Some(&node.output))
            && self.readers.get(node.output.as_str()) == Some(&1)
    }

    /// Lowers the op starting at node `i` (with what folds into it); returns the next node.
    fn op(&mut self, nodes: &[Node], i: usize) -> Result<usize, String> {
        let node = &nodes[i];
        let x = self.input(node, 0)?;
        let shape = self.program.shapes[x];
        let (kind, out_shape) = match node.op.as_str() {
            "Conv" => self.conv(node, shape)?,
            "Gemm" => self.dense(node, shape)?,
            "MaxPool" | "AveragePool" => {
                let window = Window::of(node)?;
                let [oh, ow] = window.output([shape[1], shape[2]]);
                let kind = if node.op == "MaxPool" {
                    OpKind::MaxPool(window)
                } else {
                    OpKind::AvgPool(window)
                };
                (kind, [shape[0], oh, ow])
            }
            "GlobalAveragePool" => (OpKind::GlobalAvgPool, [shape[0], 1, 1]),
            "Flatten" => (OpKind::Flatten, [shape.iter().product(), 1, 1]),
            "Add" => (OpKind::Add, shape),
            "Mul" => (OpKind::Mul, self.product_shape(node, shape)?),
            "Relu" | "Clip" | "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish" => {
                (OpKind::Activation, shape)
            }
            "BatchNormalization" => {
                return Err(format!(
                    "the BatchNorm writing `{}` does not follow a convolution that only it reads: \
                     int8 needs every BatchNorm folded into the convolution before it",
                    node.output
                ));
            }
            op => {
                return Err(format!(
                    "`{}`: the ONNX op {op} has no int8 form in sepnet",
                    node.output
                ));
            }
        };
        let mut inputs = vec![x];
        if node.op == "Add" || node.op == "Mul" {
            inputs.push(self.input(node, 1)?);
        }
        self.finish(nodes, i, kind, inputs, out_shape)
    }

    /// Folds a following BatchNorm into a convolution and fuses a following activation into a
    /// convolution or dense layer; records the op.
    fn finish(
        &mut self,
        nodes: &[Node],
        mut i: usize,
        mut kind: OpKind,
        inputs: Vec<usize>,
        shape: [usize; 3],
    ) -> Result<usize, String> {
        let first = &nodes[i];
        let mut act = Act::Linear;
        if let OpKind::Conv(conv) = &mut kind {
            let next = nodes.get(i + 1);
            if next.is_some_and(|n| n.op == "BatchNormalization")
                && self.only_reader(&nodes[i], next)
            {
                i += 1;
                self.fold(conv, &nodes[i])?;
            }
        }
        let fusable = matches!(kind, OpKind::Conv(_) | OpKind::Dense(_));
        if fusable
            && self.only_reader(&nodes[i], nodes.get(i + 1))
            && let Some(a) = self.activation(&nodes[i + 1])?
        {
            i += 1;
            act = a;
        }
        if kind == OpKind::Activation {
            act = self.elementwise(first)?;
        }
        let output = self.program.shapes.len();
        let name = nodes[i].output.clone();
        self.program.shapes.push(shape);
        self.program.names.push(name.clone());
        self.slots.insert(name, output);
        self.program.ops.push(Op {
            kind,
            act,
            inputs,
            output,
            node: first.clone(),
        });
        Ok(i + 1)
    }

    /// `Relu` → ReLU, `Clip(0, 6)` → ReLU6, another op → none; another Clip is an error.
    fn activation(&self, node: &Node) -> Result<Option<Act>, String> {
        match node.op.as_str() {
            "Relu" => Ok(Some(Act::Relu)),
            "Clip" => {
                let bound = |i: usize| {
                    node.inputs
                        .get(i)
                        .and_then(|name| self.graph.constants().get(name))
                        .copied()
                };
                match (bound(1), bound(2)) {
                    (Some(lo), Some(hi)) if lo == 0.0 && hi == 6.0 => Ok(Some(Act::Relu6)),
                    _ => Err(format!(
                        "`{}`: only Clip(0, 6) has an int8 form",
                        node.output
                    )),
                }
            }
            _ => Ok(None),
        }
    }

    /// The activation op `node` computes on its own (not fused into a convolution).
    fn elementwise(&self, node: &Node) -> Result<Act, String> {
        let hard_sigmoid = |name: &str, keras: f32| {
            node.attrs.iter().any(|a| {
                matches!(a, sepnet_model::export::Attr::Float(n, v) if *n == name && (v - keras).abs() < 1e-6)
            })
        };
        match node.op.as_str() {
            "Sigmoid" => Ok(Act::Sigmoid),
            "Tanh" => Ok(Act::Tanh),
            "HardSwish" => Ok(Act::HardSwish),
            "HardSigmoid" if hard_sigmoid("alpha", 1.0 / 6.0) && hard_sigmoid("beta", 0.5) => {
                Ok(Act::HardSigmoid)
            }
            "HardSigmoid" => Err(format!(
                "`{}`: only HardSigmoid with α = 1/6, β = 1/2 has an int8 form",
                node.output
            )),
            _ => Ok(self.activation(node)?.expect("Relu or Clip")),
        }
    }

    /// The shape of the product `Mul` computes: both inputs of one shape, or one a per-channel
    /// vector `[c, 1, 1]` (squeeze-and-excitation's gate) scaling the other's planes.
    fn product_shape(&self, node: &Node, a: [usize; 3]) -> Result<[usize; 3], String> {
        let b = self.program.shapes[self.input(node, 1)?];
        match (a, b) {
            _ if a == b => Ok(a),
            ([c, 1, 1], [d, _, _]) if c == d => Ok(b),
            ([c, _, _], [d, 1, 1]) if c == d => Ok(a),
            _ => Err(format!(
                "`{}`: a Mul of shapes {a:?} and {b:?} has no int8 form (equal shapes, or one \
                 per-channel vector)",
                node.output
            )),
        }
    }

    fn conv(&self, node: &Node, [c, h, w]: [usize; 3]) -> Result<(OpKind, [usize; 3]), String> {
        let weight = self.weight(&node.inputs[1])?;
        let window = Window::of(node)?;
        let group = node.int("group").unwrap_or(1).max(1) as usize;
        let per_out = (c / group) * window.kernel[0] * window.kernel[1];
        let out = weight.len() / per_out.max(1);
        let bias = match node.inputs.get(2) {
            Some(name) => self.weight(name)?,
            None => vec![0.0; out],
        };
        let [oh, ow] = window.output([h, w]);
        let conv = Conv {
            weight,
            bias,
            out,
            group,
            window,
        };
        Ok((OpKind::Conv(conv), [out, oh, ow]))
    }

    fn dense(&self, node: &Node, shape: [usize; 3]) -> Result<(OpKind, [usize; 3]), String> {
        if node.int("transB") != Some(1) {
            return Err(format!(
                "`{}`: a Gemm without transB has no int8 form",
                node.output
            ));
        }
        let weight = self.weight(&node.inputs[1])?;
        let out = weight.len() / shape.iter().product::<usize>().max(1);
        let bias = match node.inputs.get(2) {
            Some(name) => self.weight(name)?,
            None => vec![0.0; out],
        };
        Ok((OpKind::Dense(Dense { weight, bias, out }), [out, 1, 1]))
    }

    /// `bn(conv(x)) = conv'(x)`: each output channel's kernel scaled by γ/√(σ²+ε), its bias
    /// moved and scaled the same way.
    fn fold(&self, conv: &mut Conv, bn: &Node) -> Result<(), String> {
        let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|i| self.weight(&bn.inputs[i]));
        let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
        let epsilon = bn.float("epsilon").unwrap_or(1e-5);
        let per_out = conv.weight.len() / conv.out;
        for o in 0..conv.out {
            let scale = gamma[o] / (var[o] + epsilon).sqrt();
            for w in &mut conv.weight[o * per_out..(o + 1) * per_out] {
                *w *= scale;
            }
            conv.bias[o] = (conv.bias[o] - mean[o]) * scale + beta[o];
        }
        Ok(())
    }
}
