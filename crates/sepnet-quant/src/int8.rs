//! The quantized network and its integer arithmetic, as ONNX's `QuantizeLinear` and
//! `QLinearConv`/`QLinearMatMul` define it (and ONNX Runtime's MLAS computes it):
//!
//! - a tensor: `q = saturate(round(x / scale) + zero)`, rounding half to even, int8, one scale
//!   and zero point per tensor (asymmetric: the range's ends map to −128 and 127, zero exact);
//! - a weight: symmetric int8 in [−127, 127], zero point 0, one scale per output channel
//!   (per-channel) or per tensor (per-tensor); a bias: int32 at scale `x_scale · w_scale`;
//! - a convolution or dense layer: `acc = Σ (x − x_zero)·w + bias` in int32, exact; then
//!   `y = saturate(round(acc · (x_scale · w_scale / y_scale)) + y_zero)` in f32, clamped to
//!   the fused ReLU's or ReLU6's bounds (the quantized values of 0 and 6);
//! - max pooling and flatten on the int8 values (they keep their input's scale); average
//!   pooling, global average pooling, a residual add and an unfused activation dequantize,
//!   compute in f32 and quantize (what ONNX Runtime does for a QDQ node it does not fuse);
//! - the last dense layer's int32 result dequantized (`acc · x_scale · w_scale`): float logits.

use super::calibrate::Range;
use super::float::{Span, drive, mean};
use super::loops::{Geometry, dot_i8, pool};
use super::program::{Act, Op, OpKind, Program};
use super::shifted::conv_i8;

/// How many scales a weight tensor gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    /// One scale for the whole tensor ("per-layer" in Krishnamoorthi's whitepaper).
    PerTensor,
    /// One scale per output channel.
    PerChannel,
}

impl std::fmt::Display for Granularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Granularity::PerTensor => "per-tensor",
            Granularity::PerChannel => "per-channel",
        })
    }
}

/// A tensor's int8 quantization: `x ≈ (q − zero) · scale`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QParams {
    /// The step between two int8 values.
    pub scale: f32,
    /// The int8 value of 0.0.
    pub zero: i8,
}

impl QParams {
    /// Asymmetric int8 for `range` (which holds 0); a range of only 0 (a dead layer) gets
    /// scale 1, so that every value is exactly 0.
    pub fn of(range: Range) -> QParams {
        let scale = (range.max - range.min) / 255.0;
        if !(scale > 0.0 && scale.is_finite()) {
            return QParams {
                scale: 1.0,
                zero: 0,
            };
        }
        let zero = (-128.0 - range.min / scale)
            .round_ties_even()
            .clamp(-128.0, 127.0);
        QParams {
            scale,
            zero: zero as i8,
        }
    }

    /// `QuantizeLinear`.
    pub fn quantize(&self, x: f32) -> i8 {
        (round_even(x / self.scale) + self.zero as f32).clamp(-128.0, 127.0) as i8
    }

    /// `DequantizeLinear`.
    pub fn dequantize(&self, q: i8) -> f32 {
        (q as i32 - self.zero as i32) as f32 * self.scale
    }
}

/// A convolution's or dense layer's quantized weights.
#[derive(Clone, Debug, PartialEq)]
pub struct QWeights {
    /// int8, in the float weight's layout.
    pub weight: Vec<i8>,
    /// One scale per output channel (the same value repeated, per tensor).
    pub scales: Vec<f32>,
    /// int32, at scale `input scale · scales[o]`.
    pub bias: Vec<i32>,
    /// `Σ weight` per output channel: `Σ (x − z)·w = Σ x·w − z·Σ w`.
    sums: Vec<i32>,
}

/// Biases stay below 2³⁰ so that the int32 accumulator keeps headroom for the products.
const BIAS_LIMIT: f32 = (1u32 << 30) as f32;

impl QWeights {
    fn new(weight: &[f32], bias: &[f32], out: usize, x: QParams, scheme: Scheme) -> Self {
        let top = scheme.weight_max();
        let per_out = weight.len() / out;
        let max_abs = |w: &[f32]| w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let whole = max_abs(weight);
        let scales: Vec<f32> = (0..out)
            .map(|o| {
                let m = match scheme.granularity {
                    Granularity::PerTensor => whole,
                    Granularity::PerChannel => max_abs(&weight[o * per_out..(o + 1) * per_out]),
                };
                // A scale so small that the bias would overflow int32 is raised until it fits
                // (the weights lose that channel's precision, not the bias its value).
                let fits = bias[o].abs() / (x.scale * BIAS_LIMIT);
                (m / top)
                    .max(fits)
                    .max(f32::MIN_POSITIVE)
                    .max(if m == 0.0 { 1.0 } else { 0.0 })
            })
            .collect();
        let q: Vec<i8> = weight
            .iter()
            .enumerate()
            .map(|(i, w)| (w / scales[i / per_out]).round_ties_even().clamp(-top, top) as i8)
            .collect();
        let bias = (0..out)
            .map(|o| (bias[o] / (x.scale * scales[o])).round_ties_even() as i32)
            .collect();
        let sums = q
            .chunks_exact(per_out)
            .map(|k| k.iter().map(|&v| v as i32).sum())
            .collect();
        QWeights {
            weight: q,
            scales,
            bias,
            sums,
        }
    }

    /// Output channel `o`'s int32 result for the int8 inputs `row` (of zero point `zero`).
    fn accumulate(&self, o: usize, row: &[i8], zero: i8) -> i32 {
        let len = row.len();
        dot_i8(&self.weight[o * len..(o + 1) * len], row) - zero as i32 * self.sums[o]
            + self.bias[o]
    }
}

/// A network quantized to int8.
#[derive(Clone, Debug)]
pub struct Quantized {
    /// The lowered float program.
    pub program: Program,
    /// Each tensor's quantization (the logits' too, though they are computed in float).
    pub params: Vec<QParams>,
    /// Each op's quantized weights (convolutions and dense layers).
    pub weights: Vec<Option<QWeights>>,
    /// How the weights were quantized.
    pub scheme: Scheme,
}

/// How weights are quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scheme {
    /// One scale per tensor or per output channel.
    pub granularity: Granularity,
    /// 7-bit weights ([−64, 64]).
    pub reduce_range: bool,
}

impl Scheme {
    /// The largest weight magnitude: 127, or 64 with a reduced range.
    pub fn weight_max(&self) -> f32 {
        if self.reduce_range { 64.0 } else { 127.0 }
    }

    /// How quantization-aware training rounds the weights for this scheme.
    ///
    /// ```
    /// use sepnet_quant::{Granularity, Scheme};
    /// let scheme = Scheme { granularity: Granularity::PerTensor, reduce_range: true };
    /// assert_eq!(scheme.fake_quant().weight_max, 64.0);
    /// ```
    pub fn fake_quant(&self) -> sepnet_model::FakeQuant {
        sepnet_model::FakeQuant {
            per_channel: self.granularity == Granularity::PerChannel,
            weight_max: self.weight_max(),
        }
    }
}

impl Quantized {
    /// Quantizes `program` with its tensors' `ranges` (from [`super::calibrate`]). Max pooling
    /// and flatten keep their input's quantization, so that they stay exact on int8.
    ///
    /// `scheme.reduce_range`: x86 CPUs without VNNI multiply int8 pairs with `vpmaddubsw`,
    /// which adds two u8·s8 products into a saturating int16: with weights up to 127 the sum
    /// overflows and ONNX Runtime's int8 kernels there return wrong values without an error.
    /// Weights up to 64 (255·64·2 < 2¹⁵) cannot overflow.
    pub fn new(program: Program, ranges: &[Range], scheme: Scheme) -> Result<Self, String> {
        if !matches!(
            program.ops.last().map(|op| &op.kind),
            Some(OpKind::Dense(_))
        ) {
            return Err("int8 needs the network to end in a dense layer".into());
        }
        let mut params: Vec<QParams> = ranges.iter().map(|&r| QParams::of(r)).collect();
        for op in &program.ops {
            if matches!(op.kind, OpKind::MaxPool(_) | OpKind::Flatten) {
                params[op.output] = params[op.inputs[0]];
            }
        }
        let weights = program
            .ops
            .iter()
            .map(|op| {
                let x = params[op.inputs[0]];
                match &op.kind {
                    OpKind::Conv(c) => Some(QWeights::new(&c.weight, &c.bias, c.out, x, scheme)),
                    OpKind::Dense(d) => Some(QWeights::new(&d.weight, &d.bias, d.out, x, scheme)),
                    _ => None,
                }
            })
            .collect();
        Ok(Quantized {
            program,
            params,
            weights,
            scheme,
        })
    }

    /// The logits, `[n, classes]`, of `n` images (NCHW, as the network takes them), computed
    /// in int8 arithmetic.
    pub fn forward(&self, images: &[f32], n: usize) -> Vec<f32> {
        use rayon::prelude::*;
        let input = self.params[0];
        let q: Vec<i8> = images.iter().map(|&x| input.quantize(x)).collect();
        let (last, body) = self.program.ops.split_last().expect("a program has ops");
        let span = Span {
            ops: body,
            result: last.inputs[0],
        };
        let features = drive(
            &self.program,
            span,
            q,
            n,
            |_, _| {},
            |op, inputs, shapes| self.image_op(op, inputs, shapes),
        );
        let weights = self
            .weights
            .last()
            .and_then(Option::as_ref)
            .expect("the last op is dense");
        let x = self.params[last.inputs[0]];
        let classes = weights.bias.len();
        let len = features.len() / n.max(1);
        features
            .par_chunks(len.max(1))
            .flat_map_iter(|row| {
                (0..classes).map(move |o| {
                    last.act.apply(
                        weights.accumulate(o, row, x.zero) as f32 * (x.scale * weights.scales[o]),
                    )
                })
            })
            .collect()
    }

    pub(super) fn image_op(&self, op: &Op, inputs: &[&[i8]], shapes: &[[usize; 3]]) -> Vec<i8> {
        let (x, y) = (self.params[op.inputs[0]], self.params[op.output]);
        let [c, h, w] = shapes[0];
        let mut out = Vec::with_capacity(shapes[shapes.len() - 1].iter().product());
        let weights = self.weights[op.output - 1].as_ref();
        let float = |v: &mut dyn Iterator<Item = f32>| y.quantize(mean(v));
        match &op.kind {
            OpKind::Conv(conv) => {
                let [_, oh, ow] = shapes[shapes.len() - 1];
                let geometry = Geometry {
                    input: shapes[0],
                    output: [oh, ow],
                    group_channels: c / conv.group,
                    window: conv.window,
                };
                let q = weights.expect("a convolution has weights");
                self.conv(op, q, &geometry, conv.group, inputs[0], &mut out);
            }
            OpKind::Dense(_) => {
                let q = weights.expect("a dense layer has weights");
                let bounds = bounds(op.act, y);
                out.extend((0..q.bias.len()).map(|o| {
                    requantize(
                        q.accumulate(o, inputs[0], x.zero),
                        x.scale * q.scales[o] / y.scale,
                        y.zero,
                        bounds,
                    )
                }));
            }
            OpKind::MaxPool(window) => {
                for plane in inputs[0].chunks_exact(h * w) {
                    pool(plane, [h, w], window, &mut out, |p| {
                        p.max().unwrap_or(x.zero)
                    });
                }
            }
            OpKind::AvgPool(window) => {
                for plane in inputs[0].chunks_exact(h * w) {
                    pool(plane, [h, w], window, &mut out, |p| {
                        float(&mut p.map(|q| x.dequantize(q)))
                    });
                }
            }
            OpKind::GlobalAvgPool => out.extend(
                inputs[0]
                    .chunks_exact(h * w)
                    .map(|p| float(&mut p.iter().map(|&q| x.dequantize(q)))),
            ),
            OpKind::Flatten => out.extend_from_slice(inputs[0]),
            OpKind::Add => {
                let b = self.params[op.inputs[1]];
                out.extend(
                    inputs[0]
                        .iter()
                        .zip(inputs[1])
                        .map(|(&p, &q)| y.quantize(x.dequantize(p) + b.dequantize(q))),
                );
            }
            OpKind::Mul => {
                let b = self.params[op.inputs[1]];
                out.extend(
                    super::float::broadcast(inputs, shapes)
                        .map(|(p, q)| y.quantize(x.dequantize(p) * b.dequantize(q))),
                );
            }
            OpKind::Activation => {
                out.extend(
                    inputs[0]
                        .iter()
                        .map(|&q| y.quantize(op.act.apply(x.dequantize(q)))),
                );
            }
        }
        out
    }

    fn conv(
        &self,
        op: &Op,
        q: &QWeights,
        geometry: &Geometry,
        group: usize,
        x: &[i8],
        out: &mut Vec<i8>,
    ) {
        let (xp, y) = (self.params[op.inputs[0]], self.params[op.output]);
        let pixels = geometry.rows();
        let per_group = q.bias.len() / group;
        let bounds = bounds(op.act, y);
        out.resize(q.bias.len() * pixels, 0);
        for g in 0..group {
            conv_i8(
                geometry,
                x,
                xp.zero,
                &q.weight,
                (g, per_group),
                |o, sums| {
                    let multiplier = xp.scale * q.scales[o] / y.scale;
                    let offset = q.bias[o] - xp.zero as i32 * q.sums[o];
                    let plane = &mut out[o * pixels..(o + 1) * pixels];
                    requantize_plane(plane, sums, offset, multiplier, y.zero, bounds);
                },
            );
        }
    }
}

/// The int8 bounds of an activation on a tensor quantized as `y`.
fn bounds(act: Act, y: QParams) -> (i8, i8) {
    match act {
        Act::Linear => (-128, 127),
        Act::Relu => (y.zero, 127),
        Act::Relu6 => (y.zero, y.quantize(6.0)),
        // Never fused: ops of their own, quantized after the float function.
        Act::Sigmoid | Act::Tanh | Act::HardSigmoid | Act::HardSwish => (-128, 127),
    }
}

/// `saturate(round(acc · multiplier) + zero)` within `(lo, hi)`.
#[inline(always)]
fn requantize(acc: i32, multiplier: f32, zero: i8, (lo, hi): (i8, i8)) -> i8 {
    (round_even(acc as f32 * multiplier) + zero as f32).clamp(lo as f32, hi as f32) as i8
}

sepnet_model::multiversion! {
    /// `out = requantize(sums + offset)`, a plane at a time (so that it vectorises).
    fn requantize_plane(
        out: &mut [i8],
        sums: &[i32],
        offset: i32,
        multiplier: f32,
        zero: i8,
        bounds: (i8, i8),
    ) {
        for (v, &sum) in out.iter_mut().zip(sums) {
            *v = requantize(sum + offset, multiplier, zero, bounds);
        }
    }
}

/// From this magnitude up [`round_even`] returns `±2²²`.
const EXACT_BELOW: f32 = (1u32 << 22) as f32;

/// `x.round_ties_even()`, exact for `|x| < 2²²`, by the float adder itself (it rounds to
/// nearest, ties to even, once `x` is shifted where the last bit is the unit): x86-64's
/// baseline has no rounding instruction, and the library call took a sixth of int8
/// evaluation. Larger values come back as `±2²²` (no branch, so loops of it vectorise), and
/// every caller saturates them to int8 anyway.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const SHIFT: f32 = 1.5 * (1u32 << 23) as f32;
    (x.clamp(-EXACT_BELOW, EXACT_BELOW) + SHIFT) - SHIFT
}

#[cfg(test)]
mod rounding {
    use super::{EXACT_BELOW, round_even};

    #[test]
    fn rounding_by_the_adder_is_rounding_half_to_even() {
        let ties = [
            0.5f32,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            127.5,
            -128.5,
            4_194_302.5,
        ];
        let mut state = 0x2545_f491_u32;
        let random = (0..100_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32 - 0.5) * 2e3
        });
        for x in ties
            .into_iter()
            .chain(random)
            .chain([0.0, -0.0, 1e-30, -1e-30])
        {
            assert_eq!(round_even(x), x.round_ties_even(), "{x}");
        }
        for x in [EXACT_BELOW + 0.5, 3e9, f32::MAX, f32::INFINITY] {
            assert_eq!(round_even(x), EXACT_BELOW, "{x}");
            assert_eq!(round_even(-x), -EXACT_BELOW, "{x}");
        }
        assert!(round_even(f32::NAN).is_nan());
    }
}
