//! The quantized network as an ONNX model in QDQ form — what ONNX Runtime's `quantize_static`
//! writes and what it runs with int8 kernels: each activation passes through
//! `QuantizeLinear` → `DequantizeLinear` with its scale and zero point; weights are int8 and
//! biases int32 initializers, each behind a `DequantizeLinear` (with `axis = 0` and one scale
//! per output channel, per-channel); the float ops between them are those of the float export.

use super::int8::{QParams, QWeights, Quantized};
use super::program::{Act, Op, OpKind};
use sepnet_model::export::{Attr, Initializer, Node, model};
use sepnet_model::proto::Message;
use sepnet_model::spec::NetworkSpec;

/// The ONNX model of `quantized` (built from `spec`): input `images` (float), output
/// `logits` (float), `metadata` as its metadata properties.
pub fn onnx(
    quantized: &Quantized,
    spec: &NetworkSpec,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let mut writer = Writer {
        quantized,
        nodes: Vec::new(),
        initializers: Vec::new(),
        dq: Vec::new(),
        constants: Vec::new(),
    };
    let images = writer.requantize(0, "images".into());
    writer.dq.push(images);
    let program = &quantized.program;
    for (i, op) in program.ops.iter().enumerate() {
        let result = writer.op(op);
        let result = writer.activation(op.act, result, &program.names[op.output]);
        let last = i + 1 == program.ops.len();
        let dq = if last {
            result
        } else {
            writer.requantize(op.output, result)
        };
        writer.dq.push(dq);
    }
    let last = writer.dq.last().expect("the images at least").clone();
    model(spec, &writer.nodes, &last, writer.initializers, metadata)
}

struct Writer<'a> {
    quantized: &'a Quantized,
    nodes: Vec<Node>,
    initializers: Vec<Message>,
    /// The dequantized name of each tensor written so far.
    dq: Vec<String>,
    /// The scalar constants written so far.
    constants: Vec<String>,
}

impl Writer<'_> {
    fn node(&mut self, op: &str, inputs: Vec<String>, output: String, attrs: Vec<Attr>) -> String {
        self.nodes.push(Node {
            op: op.into(),
            inputs,
            output: output.clone(),
            attrs,
        });
        output
    }

    /// The scalar constant `value`, written once.
    fn constant(&mut self, value: f32) -> String {
        let name = format!("const_{value}");
        if !self.constants.contains(&name) {
            self.initializers
                .push(Initializer::F32(&[value]).proto(&name, &[]));
            self.constants.push(name.clone());
        }
        name
    }

    /// `QuantizeLinear` → `DequantizeLinear` of tensor `t` (computed as `value`); returns the
    /// dequantized name.
    fn requantize(&mut self, t: usize, value: String) -> String {
        let name = &self.quantized.program.names[t];
        let QParams { scale, zero } = self.quantized.params[t];
        let (s, z) = (format!("{name}.scale"), format!("{name}.zero_point"));
        self.initializers
            .push(Initializer::F32(&[scale]).proto(&s, &[]));
        self.initializers
            .push(Initializer::I8(&[zero]).proto(&z, &[]));
        let q = self.node(
            "QuantizeLinear",
            vec![value, s.clone(), z.clone()],
            format!("{name}.quantized"),
            vec![],
        );
        self.node(
            "DequantizeLinear",
            vec![q, s, z],
            format!("{name}.dequantized"),
            vec![],
        )
    }

    fn op(&mut self, op: &Op) -> String {
        let name = self.quantized.program.names[op.output].clone();
        let mut inputs: Vec<String> = op.inputs.iter().map(|&t| self.dq[t].clone()).collect();
        let (onnx_op, attrs) = match &op.kind {
            OpKind::Conv(conv) => {
                let [c, _, _] = self.quantized.program.shapes[op.inputs[0]];
                let [kh, kw] = conv.window.kernel;
                let dims = [conv.out, c / conv.group, kh, kw];
                inputs.extend(self.weights(op, &name, &dims));
                ("Conv", op.node.attrs.clone())
            }
            OpKind::Dense(dense) => {
                let dims = [dense.out, self.quantized.program.len(op.inputs[0])];
                inputs.extend(self.weights(op, &name, &dims));
                ("Gemm", vec![Attr::Int("transB", 1)])
            }
            OpKind::MaxPool(_) => ("MaxPool", op.node.attrs.clone()),
            OpKind::AvgPool(_) => ("AveragePool", op.node.attrs.clone()),
            OpKind::GlobalAvgPool => ("GlobalAveragePool", vec![]),
            OpKind::Flatten => ("Flatten", vec![Attr::Int("axis", 1)]),
            OpKind::Add => ("Add", vec![]),
            OpKind::Mul => ("Mul", vec![]),
            OpKind::Activation => return inputs.remove(0),
        };
        self.node(
            onnx_op,
            inputs,
            format!("{name}.{}", onnx_op.to_ascii_lowercase()),
            attrs,
        )
    }

    /// The activation's op on `x` (`Relu`, `Clip(0, 6)`, `Sigmoid`, ...), or `x` itself.
    fn activation(&mut self, act: Act, x: String, name: &str) -> String {
        let (op, mut inputs, attrs) = match act {
            Act::Linear => return x,
            Act::Relu => ("Relu", vec![], vec![]),
            Act::Relu6 => ("Clip", vec![self.constant(0.0), self.constant(6.0)], vec![]),
            Act::Sigmoid => ("Sigmoid", vec![], vec![]),
            Act::Tanh => ("Tanh", vec![], vec![]),
            Act::HardSwish => ("HardSwish", vec![], vec![]),
            Act::HardSigmoid => (
                "HardSigmoid",
                vec![],
                vec![Attr::Float("alpha", 1.0 / 6.0), Attr::Float("beta", 0.5)],
            ),
        };
        let suffix = match act {
            Act::Relu6 => "relu6".to_string(),
            _ => op.to_ascii_lowercase(),
        };
        inputs.insert(0, x);
        self.node(op, inputs, format!("{name}.{suffix}"), attrs)
    }

    /// The dequantized weight and bias of `op`, as initializers behind `DequantizeLinear`.
    fn weights(&mut self, op: &Op, name: &str, dims: &[usize]) -> [String; 2] {
        let q: &QWeights = self.quantized.weights[op.output - 1]
            .as_ref()
            .expect("weights");
        let out = dims[0];
        let per_channel = q.scales.iter().any(|&s| s != q.scales[0]);
        let x_scale = self.quantized.params[op.inputs[0]].scale;
        let bias_scales: Vec<f32> = q.scales.iter().map(|s| x_scale * s).collect();
        let scale_dims: &[usize] = if per_channel { &[out] } else { &[] };
        let weight_scales = if per_channel {
            &q.scales[..]
        } else {
            &q.scales[..1]
        };
        let axis = vec![Attr::Int("axis", 0)];
        let mut dequantized = |part: &str,
                               values: Initializer,
                               scales: &[f32],
                               zeros: Initializer,
                               dims: &[usize],
                               sdims: &[usize]| {
            let base = format!("{name}.{part}");
            let [v, s, z] = ["quantized", "scale", "zero_point"].map(|k| format!("{base}_{k}"));
            self.initializers.push(values.proto(&v, dims));
            self.initializers
                .push(Initializer::F32(scales).proto(&s, sdims));
            self.initializers.push(zeros.proto(&z, sdims));
            self.node("DequantizeLinear", vec![v, s, z], base, axis.clone())
        };
        let zeros8 = vec![0i8; weight_scales.len()];
        let zeros32 = vec![0i32; out];
        let weight = dequantized(
            "weight",
            Initializer::I8(&q.weight),
            weight_scales,
            Initializer::I8(&zeros8),
            dims,
            scale_dims,
        );
        let bias = dequantized(
            "bias",
            Initializer::I32(&q.bias),
            &bias_scales,
            Initializer::I32(&zeros32),
            &[out],
            &[out],
        );
        [weight, bias]
    }
}
