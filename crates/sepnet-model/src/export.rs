//! Export of a built network to ONNX (opset 17) and safetensors, for other runtimes.
//!
//! Each layer kind writes its own ONNX nodes ([`crate::LayerKind::export`]) into a [`Graph`],
//! naming its weights `layers.<i>.<part>.<param>` — the names of the PyTorch twin built by
//! `reference/torch_models.py` from the same spec, with PyTorch's layouts (a dense layer's
//! weight is `[out, in]`). The same tensors make the safetensors file, which that twin loads
//! with `load_state_dict` as it is.

use std::collections::BTreeMap;

use burn::tensor::Tensor;

use crate::Network;
use crate::layers::{BatchNorm, Conv2d, DepthwiseConv2d};
use crate::proto::Message;
use crate::spec::Window;
use crate::spec::{LayerShape, NetworkSpec, Shape, infer_shapes};

/// ONNX's element type for f32.
const FLOAT: i64 = 1;
/// The opset the graphs are written for, and the IR version it needs.
const OPSET: i64 = 17;
const IR_VERSION: i64 = 8;

/// A named weight: PyTorch layout, f32 (or an i64 counter).
#[derive(Clone, Debug)]
pub struct Weight {
    /// `layers.<i>.<part>.<param>`.
    pub name: String,
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Values, f32.
    pub data: Vec<f32>,
}

/// An ONNX node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// One integer.
    Int(&'static str, i64),
    /// A list of integers.
    Ints(&'static str, Vec<i64>),
    /// One float.
    Float(&'static str, f32),
}

/// One ONNX node: an operator reading named tensors and writing one.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The operator (`Conv`, `Gemm`, ...).
    pub op: String,
    /// The names of the tensors it reads: activations, weights, constants.
    pub inputs: Vec<String>,
    /// The name of the tensor it writes.
    pub output: String,
    /// Its attributes.
    pub attrs: Vec<Attr>,
}

impl Node {
    /// The integer attribute `name`, if the node has it.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Int(n, v) if *n == name => Some(*v),
            _ => None,
        })
    }

    /// The integer-list attribute `name`, if the node has it.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Ints(n, v) if *n == name => Some(v.as_slice()),
            _ => None,
        })
    }

    /// The float attribute `name`, if the node has it.
    pub fn float(&self, name: &str) -> Option<f32> {
        self.attrs.iter().find_map(|a| match a {
            Attr::Float(n, v) if *n == name => Some(*v),
            _ => None,
        })
    }

    fn proto(&self) -> Message {
        let mut node = Message::default();
        for input in &self.inputs {
            node = node.string(1, input);
        }
        node = node
            .string(2, &self.output)
            .string(3, &self.output)
            .string(4, &self.op);
        for attr in &self.attrs {
            node = node.message(5, attribute(attr.clone()));
        }
        node
    }
}

/// The ONNX graph under construction, layer by layer.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<Node>,
    weights: Vec<Weight>,
    constants: BTreeMap<String, f32>,
    prefix: String,
    current: String,
    counter: usize,
}

impl Graph {
    /// The name of the activation the next node reads.
    pub fn x(&self) -> String {
        self.current.clone()
    }

    /// Adds the weight `param` of part `part` of the current layer; returns its name.
    pub fn weight<const D: usize>(&mut self, part: &str, param: &str, tensor: Tensor<D>) -> String {
        let dims = tensor.dims().to_vec();
        let data = tensor
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 weights");
        self.push_weight(part, param, dims, data)
    }

    /// Adds a weight given as values.
    pub fn push_weight(
        &mut self,
        part: &str,
        param: &str,
        dims: Vec<usize>,
        data: Vec<f32>,
    ) -> String {
        let name = match part {
            "" => format!("{}.{param}", self.prefix),
            part => format!("{}.{part}.{param}", self.prefix),
        };
        self.weights.push(Weight {
            name: name.clone(),
            dims,
            data,
        });
        name
    }

    /// A scalar constant input (Clip's bounds), shared by every node that uses it.
    pub fn constant(&mut self, value: f32) -> String {
        let name = format!("const_{value}");
        self.constants.insert(name.clone(), value);
        name
    }

    /// Adds a node reading `inputs`; its output becomes the current activation.
    pub fn node(&mut self, op: &str, inputs: &[String], attrs: Vec<Attr>) -> String {
        self.counter += 1;
        let output = format!(
            "{}.{}{}",
            self.prefix,
            op.to_ascii_lowercase(),
            self.counter
        );
        self.nodes.push(Node {
            op: op.into(),
            inputs: inputs.to_vec(),
            output: output.clone(),
            attrs,
        });
        self.current = output.clone();
        output
    }

    /// The nodes, in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The weights the nodes read.
    pub fn weights(&self) -> &[Weight] {
        &self.weights
    }

    /// The scalar constants the nodes read, by name.
    pub fn constants(&self) -> &BTreeMap<String, f32> {
        &self.constants
    }

    /// The activation as ONNX (opset 17) nodes: `Relu`; `relu6` as Clip to [0, 6]; `Sigmoid`,
    /// `Tanh`, `HardSwish`; SiLU as `x · Sigmoid(x)`; hard sigmoid as `HardSigmoid` with Keras's
    /// slope 1/6 (ONNX's default is 0.2); GELU as `x · (1 + Erf(x / √2)) / 2` (opset 17 has no
    /// Gelu); nothing for `linear`.
    pub fn activation(&mut self, activation: crate::Activation) {
        use crate::Activation as A;
        let x = self.x();
        match activation {
            A::Linear => {}
            A::Relu => _ = self.node("Relu", &[x], vec![]),
            A::Relu6 => {
                let (lo, hi) = (self.constant(0.0), self.constant(6.0));
                self.node("Clip", &[x, lo, hi], vec![]);
            }
            A::Sigmoid => _ = self.node("Sigmoid", &[x], vec![]),
            A::Tanh => _ = self.node("Tanh", &[x], vec![]),
            A::Hardswish => _ = self.node("HardSwish", &[x], vec![]),
            A::Hardsigmoid => {
                let attrs = vec![Attr::Float("alpha", 1.0 / 6.0), Attr::Float("beta", 0.5)];
                self.node("HardSigmoid", &[x], attrs);
            }
            A::Silu => {
                let gate = self.node("Sigmoid", std::slice::from_ref(&x), vec![]);
                self.node("Mul", &[x, gate], vec![]);
            }
            A::Gelu => {
                let root2 = self.constant(std::f32::consts::SQRT_2);
                let scaled = self.node("Div", &[x.clone(), root2], vec![]);
                let erf = self.node("Erf", &[scaled], vec![]);
                let one = self.constant(1.0);
                let shifted = self.node("Add", &[erf, one], vec![]);
                let half = self.constant(0.5);
                let halved = self.node("Mul", &[shifted, half], vec![]);
                self.node("Mul", &[x, halved], vec![]);
            }
        }
    }
}

impl Graph {
    /// A full convolution as part `part` (weights `part.weight`, `part.bias`).
    pub fn conv(&mut self, part: &str, conv: &Conv2d, window: &Window, input: [usize; 2]) {
        let mut inputs = vec![self.x(), self.weight(part, "weight", conv.weight.val())];
        if let Some(bias) = &conv.bias {
            inputs.push(self.weight(part, "bias", bias.val()));
        }
        self.node("Conv", &inputs, window_attrs(window, input, Some(1)));
    }

    /// A depthwise convolution as part `part`: one group per input channel.
    pub fn depthwise(
        &mut self,
        part: &str,
        dw: &DepthwiseConv2d,
        window: &Window,
        input: [usize; 2],
    ) {
        let mut inputs = vec![self.x(), self.weight(part, "weight", dw.weight.val())];
        if let Some(bias) = &dw.bias {
            inputs.push(self.weight(part, "bias", bias.val()));
        }
        self.node(
            "Conv",
            &inputs,
            window_attrs(window, input, Some(dw.channels)),
        );
    }

    /// BatchNorm in inference form as part `part` (its running statistics).
    pub fn batch_norm(&mut self, part: &str, bn: &BatchNorm) {
        let bn = &bn.inner;
        let inputs = [
            self.x(),
            self.weight(part, "weight", bn.gamma.val()),
            self.weight(part, "bias", bn.beta.val()),
            self.weight(part, "running_mean", bn.running_mean.value()),
            self.weight(part, "running_var", bn.running_var.value()),
        ];
        let epsilon = Attr::Float("epsilon", bn.epsilon as f32);
        self.node("BatchNormalization", &inputs, vec![epsilon]);
    }
}

fn attribute(attr: Attr) -> Message {
    const FLOAT_ATTR: i64 = 1;
    const INT_ATTR: i64 = 2;
    const INTS_ATTR: i64 = 7;
    match attr {
        Attr::Int(name, v) => Message::default()
            .string(1, name)
            .int(3, v)
            .int(20, INT_ATTR),
        Attr::Float(name, v) => Message::default()
            .string(1, name)
            .float(2, v)
            .int(20, FLOAT_ATTR),
        Attr::Ints(name, vs) => vs
            .into_iter()
            .fold(Message::default().string(1, name), |m, v| m.int(8, v))
            .int(20, INTS_ATTR),
    }
}

/// The attributes of a convolution (or pooling, without `group` and `dilations`) with
/// `window` on an `[h, w]` input.
pub fn window_attrs(window: &Window, input: [usize; 2], group: Option<usize>) -> Vec<Attr> {
    let ints = |v: [usize; 2]| v.map(|x| x as i64).to_vec();
    let mut attrs = vec![
        Attr::Ints("kernel_shape", ints(window.kernel)),
        Attr::Ints("strides", ints(window.stride)),
        Attr::Ints("pads", pads(window, input)),
    ];
    if let Some(group) = group {
        attrs.push(Attr::Ints("dilations", ints(window.dilation)));
        attrs.push(Attr::Int("group", group as i64));
    }
    attrs
}

/// `pads` for ONNX (`[top, left, bottom, right]`) of a window on a `[h, w]` input.
pub fn pads(window: &Window, [h, w]: [usize; 2]) -> Vec<i64> {
    let [(top, bottom), (left, right)] =
        window
            .padding
            .pads_2d([h, w], window.kernel, window.stride, window.dilation);
    [top, left, bottom, right].map(|p| p as i64).to_vec()
}

/// A shape's `[h, w]` (`[1, 1]` for a flat one).
pub fn plane(shape: Shape) -> [usize; 2] {
    match shape {
        Shape::Spatial([h, w, _]) => [h, w],
        Shape::Flat(_) => [1, 1],
    }
}

fn tensor_proto(name: &str, dims: &[usize], data_type: i64, raw: Vec<u8>) -> Message {
    let proto = dims
        .iter()
        .fold(Message::default(), |m, &d| m.int(1, d as i64));
    proto.int(2, data_type).string(8, name).bytes(9, &raw)
}

fn value_info(name: &str, dims: &[Option<usize>]) -> Message {
    let shape = dims.iter().fold(Message::default(), |m, d| {
        let dim = match d {
            Some(v) => Message::default().int(1, *v as i64),
            None => Message::default().string(2, "batch"),
        };
        m.message(1, dim)
    });
    let tensor_type = Message::default().int(1, FLOAT).message(2, shape);
    let kind = Message::default().message(1, tensor_type);
    Message::default().string(1, name).message(2, kind)
}

/// Every layer of `network` (built from `spec`) into one graph: its nodes and weights.
pub fn graph(spec: &NetworkSpec, network: &Network) -> Result<Graph, String> {
    let shapes: Vec<LayerShape> = infer_shapes(spec).map_err(|e| e.message)?;
    let mut g = Graph {
        current: "images".into(),
        ..Default::default()
    };
    for (i, ((layer, module), shape)) in spec
        .layers
        .iter()
        .zip(&network.layers)
        .zip(&shapes)
        .enumerate()
    {
        g.prefix = format!("layers.{i}");
        layer.export(module, shape, &mut g)?;
    }
    Ok(g)
}

/// The ONNX model: input `images` `[batch, c, h, w]`, output `logits` `[batch, classes]`,
/// `metadata` as the model's metadata properties.
pub fn onnx(
    spec: &NetworkSpec,
    network: &Network,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let g = graph(spec, network)?;
    let mut initializers: Vec<Message> = g
        .weights
        .iter()
        .map(|w| Initializer::F32(&w.data).proto(&w.name, &w.dims))
        .collect();
    for (name, value) in &g.constants {
        initializers.push(Initializer::F32(&[*value]).proto(name, &[]));
    }
    model(spec, &g.nodes, &g.current, initializers, metadata)
}

/// The values of an initializer (a constant tensor of the graph).
pub enum Initializer<'a> {
    /// float32.
    F32(&'a [f32]),
    /// int8 (quantized weights, zero points).
    I8(&'a [i8]),
    /// int32 (quantized biases).
    I32(&'a [i32]),
}

impl Initializer<'_> {
    /// The `TensorProto` named `name` with dimensions `dims` (none for a scalar).
    pub fn proto(&self, name: &str, dims: &[usize]) -> Message {
        const INT8: i64 = 3;
        const INT32: i64 = 6;
        let (data_type, raw): (i64, Vec<u8>) = match self {
            Initializer::F32(v) => (FLOAT, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Initializer::I8(v) => (INT8, v.iter().map(|&x| x as u8).collect()),
            Initializer::I32(v) => (INT32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        tensor_proto(name, dims, data_type, raw)
    }
}

/// An ONNX model of `nodes` for `spec`'s input and classes: input `images`, output `logits`
/// (the tensor `last`, renamed), the `initializers`, `metadata` as metadata properties.
pub fn model(
    spec: &NetworkSpec,
    nodes: &[Node],
    last: &str,
    initializers: Vec<Message>,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let [h, w, c] = spec.input;
    let classes = spec
        .classes()
        .ok_or("the network does not end in a dense layer")?;
    let mut graph = Message::default();
    for node in nodes {
        graph = graph.message(1, node.proto());
    }
    graph = graph.string(2, &spec.name);
    for initializer in initializers {
        graph = graph.message(5, initializer);
    }
    graph = graph.message(11, value_info("images", &[None, Some(c), Some(h), Some(w)]));
    // The last node's output, renamed: an Identity keeps every layer's own names.
    let output = Message::default()
        .string(1, last)
        .string(2, "logits")
        .string(3, "logits")
        .string(4, "Identity");
    graph = graph.message(1, output);
    graph = graph.message(12, value_info("logits", &[None, Some(classes)]));
    let opset = Message::default().string(1, "").int(2, OPSET);
    let mut model = Message::default()
        .int(1, IR_VERSION)
        .string(2, "sepnet")
        .string(3, env!("CARGO_PKG_VERSION"))
        .message(7, graph)
        .message(8, opset);
    for (key, value) in metadata {
        model = model.message(14, Message::default().string(1, key).string(2, value));
    }
    Ok(model.into_bytes())
}

/// One tensor of a safetensors file.
pub struct Entry {
    /// Its name.
    pub name: String,
    /// `F32` or `I64`.
    pub dtype: &'static str,
    /// Its dimensions.
    pub dims: Vec<usize>,
    /// Its little-endian bytes.
    pub bytes: Vec<u8>,
}

impl Entry {
    /// An f32 tensor.
    pub fn f32(name: &str, dims: Vec<usize>, values: &[f32]) -> Entry {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Entry {
            name: name.into(),
            dtype: "F32",
            dims,
            bytes,
        }
    }

    /// An i64 tensor.
    pub fn i64(name: &str, dims: Vec<usize>, values: &[i64]) -> Entry {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Entry {
            name: name.into(),
            dtype: "I64",
            dims,
            bytes,
        }
    }
}

/// A safetensors file: an 8-byte header length, the JSON header (padded with spaces to a
/// multiple of 8 bytes), then the tensors' bytes.
pub fn safetensors_file(entries: &[Entry]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for e in entries {
        let start = data.len();
        data.extend_from_slice(&e.bytes);
        let info = serde_json::json!({"dtype": e.dtype, "shape": e.dims, "data_offsets": [start, data.len()]});
        header.insert(e.name.clone(), info);
    }
    let mut json = serde_json::to_vec(&header).expect("a header serialises");
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    out
}

/// The weights as a safetensors file, named and laid out as the PyTorch twin's `state_dict`
/// (BatchNorm's `num_batches_tracked` included, so that it loads strictly).
pub fn safetensors(spec: &NetworkSpec, network: &Network) -> Result<Vec<u8>, String> {
    let g = graph(spec, network)?;
    let mut entries = Vec::new();
    for weight in &g.weights {
        entries.push(Entry::f32(&weight.name, weight.dims.clone(), &weight.data));
        if let Some(bn) = weight.name.strip_suffix(".running_var") {
            entries.push(Entry::i64(
                &format!("{bn}.num_batches_tracked"),
                vec![],
                &[0],
            ));
        }
    }
    Ok(safetensors_file(&entries))
}
