//! The lowered program in float: what calibration observes, and the reference the int8
//! arithmetic is measured against.

use super::loops::{Geometry, dot_f32, pool};
use super::program::{Op, OpKind, Program};

/// Runs `program` on `n` images (NCHW, as the network takes them), the ops of each image in
/// parallel over images; calls `observe(tensor, values)` with every tensor of the batch as it
/// is computed (the images first); returns the logits, `[n, classes]`.
pub fn forward(
    program: &Program,
    images: &[f32],
    n: usize,
    observe: impl FnMut(usize, &[f32]),
) -> Vec<f32> {
    let everything = Span {
        ops: &program.ops,
        result: program.output(),
    };
    drive(program, everything, images.to_vec(), n, observe, image_op)
}

/// The ops a [`drive`] runs, and the tensor it returns.
pub(crate) struct Span<'a> {
    pub ops: &'a [Op],
    pub result: usize,
}

/// Runs the ops of `span` on a batch: `image_op(op, inputs, shapes)` computes one op of one
/// image (`shapes`: its inputs' and its output's `[c, h, w]`); tensors are dropped after their
/// last reader.
pub(crate) fn drive<T: Clone + Send + Sync>(
    program: &Program,
    span: Span,
    images: Vec<T>,
    n: usize,
    mut observe: impl FnMut(usize, &[T]),
    image_op: impl Fn(&Op, &[&[T]], &[[usize; 3]]) -> Vec<T> + Sync,
) -> Vec<T> {
    use rayon::prelude::*;
    let last = last_reads(program, &span);
    let mut tensors: Vec<Option<Vec<T>>> = vec![None; program.shapes.len()];
    observe(0, &images);
    tensors[0] = Some(images);
    for (i, op) in span.ops.iter().enumerate() {
        let mut shapes: Vec<[usize; 3]> = op.inputs.iter().map(|&t| program.shapes[t]).collect();
        shapes.push(program.shapes[op.output]);
        let inputs: Vec<&[T]> = op
            .inputs
            .iter()
            .map(|&t| {
                tensors[t]
                    .as_deref()
                    .expect("a tensor is computed before it is read")
            })
            .collect();
        let lens: Vec<usize> = op.inputs.iter().map(|&t| program.len(t)).collect();
        let per_image: Vec<Vec<T>> = (0..n)
            .into_par_iter()
            .map(|b| {
                let own: Vec<&[T]> = inputs
                    .iter()
                    .zip(&lens)
                    .map(|(x, &len)| &x[b * len..(b + 1) * len])
                    .collect();
                image_op(op, &own, &shapes)
            })
            .collect();
        let out: Vec<T> = per_image.concat();
        observe(op.output, &out);
        tensors[op.output] = Some(out);
        for &t in &op.inputs {
            if last[t] == i {
                tensors[t] = None;
            }
        }
    }
    tensors[span.result]
        .take()
        .expect("the span computes its result")
}

/// For each tensor, the index of the last op of `span` that reads it (its result: past the end).
fn last_reads(program: &Program, span: &Span) -> Vec<usize> {
    let mut last = vec![0; program.shapes.len()];
    for (i, op) in span.ops.iter().enumerate() {
        for &t in &op.inputs {
            last[t] = i;
        }
    }
    last[span.result] = span.ops.len();
    last
}

fn image_op(op: &Op, inputs: &[&[f32]], shapes: &[[usize; 3]]) -> Vec<f32> {
    let x = inputs[0];
    let [c, h, w] = shapes[0];
    let [_, oh, ow] = shapes[shapes.len() - 1];
    let mut out = Vec::with_capacity(shapes[shapes.len() - 1].iter().product());
    match &op.kind {
        OpKind::Conv(conv) => {
            let geometry = Geometry {
                input: shapes[0],
                output: [oh, ow],
                group_channels: c / conv.group,
                window: conv.window,
            };
            let (len, per_group) = (geometry.row_len(), conv.out / conv.group);
            let mut rows = Vec::new();
            out.resize(conv.out * geometry.rows(), 0.0);
            for g in 0..conv.group {
                geometry.im2col(x, g, 0.0, &mut rows);
                for o in g * per_group..(g + 1) * per_group {
                    let kernel = &conv.weight[o * len..(o + 1) * len];
                    let plane = &mut out[o * geometry.rows()..(o + 1) * geometry.rows()];
                    for (y, row) in plane.iter_mut().zip(rows.chunks_exact(len)) {
                        *y = op.act.apply(conv.bias[o] + dot_f32(kernel, row));
                    }
                }
            }
        }
        OpKind::Dense(dense) => {
            let len = x.len();
            out.extend((0..dense.out).map(|o| {
                op.act
                    .apply(dense.bias[o] + dot_f32(&dense.weight[o * len..(o + 1) * len], x))
            }));
        }
        OpKind::MaxPool(window) => {
            for plane in x.chunks_exact(h * w) {
                pool(plane, [h, w], window, &mut out, |p| {
                    p.fold(f32::NEG_INFINITY, f32::max)
                });
            }
        }
        OpKind::AvgPool(window) => {
            for plane in x.chunks_exact(h * w) {
                pool(plane, [h, w], window, &mut out, mean);
            }
        }
        OpKind::GlobalAvgPool => {
            out.extend(x.chunks_exact(h * w).map(|p| mean(&mut p.iter().copied())))
        }
        OpKind::Flatten => out.extend_from_slice(x),
        OpKind::Add => out.extend(x.iter().zip(inputs[1]).map(|(a, b)| a + b)),
        OpKind::Mul => out.extend(broadcast(inputs, shapes).map(|(a, b)| a * b)),
        OpKind::Activation => out.extend(x.iter().map(|&v| op.act.apply(v))),
    }
    out
}

/// The mean of the values (a pooling window's real pixels).
pub(crate) fn mean(values: &mut dyn Iterator<Item = f32>) -> f32 {
    let (sum, count) = values.fold((0.0f32, 0usize), |(s, n), v| (s + v, n + 1));
    sum / count.max(1) as f32
}

/// The pairs of values a `Mul` multiplies: its two inputs element by element, or each plane
/// of one with its channel's value in the other (a `[c, 1, 1]` vector).
pub(super) fn broadcast<'a, T: Copy>(
    inputs: &'a [&'a [T]],
    shapes: &[[usize; 3]],
) -> impl Iterator<Item = (T, T)> + 'a {
    let (a, b) = (inputs[0], inputs[1]);
    let [c, h, w] = shapes[shapes.len() - 1];
    let plane = h * w;
    let at = move |values: &'a [T], i: usize| {
        if values.len() == c * plane {
            values[i]
        } else {
            values[i / plane]
        }
    };
    (0..c * plane).map(move |i| (at(a, i), at(b, i)))
}
