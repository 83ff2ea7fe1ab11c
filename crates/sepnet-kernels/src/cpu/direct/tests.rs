//! The direct kernel against the definition on awkward shapes, at every instruction-set level
//! this CPU has, each level bit for bit equal to the portable one.

use super::*;
use crate::cpu::simd::detected;
use crate::cpu::test_values::{close, f64s, values};

/// `(input, kernel, stride, dilation, pads [top, bottom, left, right], filters)`.
type Case = ([usize; 4], [usize; 2], usize, usize, [usize; 4], usize);

/// Channels and filters off the blocks (3, 17, 21, 33, 40, 112), a kernel larger than the input,
/// asymmetric (TensorFlow `same`) padding, dilation, batch 1, a 1×1 plane, a 1×1 kernel, a
/// rectangular kernel on a rectangular plane, more images than threads. Stride 1 only: the
/// blocked path takes no other ([`applies`]).
const CASES: &[Case] = &[
    ([2, 3, 8, 8], [3, 3], 1, 1, [1, 1, 1, 1], 4),
    ([3, 17, 7, 9], [3, 3], 1, 1, [1, 1, 1, 1], 21),
    ([1, 20, 8, 8], [4, 4], 1, 1, [1, 2, 1, 2], 33),
    ([2, 9, 9, 9], [3, 3], 1, 2, [2, 2, 2, 2], 16),
    ([4, 5, 6, 6], [5, 5], 1, 1, [0, 0, 0, 0], 8),
    ([1, 32, 32, 32], [3, 3], 1, 1, [1, 1, 1, 1], 32),
    ([2, 16, 2, 2], [5, 5], 1, 1, [2, 2, 2, 2], 17),
    ([3, 24, 1, 1], [3, 3], 1, 1, [1, 1, 1, 1], 40),
    ([2, 33, 5, 5], [1, 1], 1, 1, [0, 0, 0, 0], 7),
    ([2, 70, 6, 5], [1, 1], 1, 1, [0, 0, 0, 0], 20),
    ([2, 8, 11, 13], [1, 3], 1, 1, [0, 0, 1, 1], 9),
    ([5, 7, 16, 16], [3, 3], 1, 1, [1, 1, 1, 1], 64),
    ([2, 40, 5, 7], [3, 3], 1, 1, [1, 1, 1, 1], 112),
];

/// Stride 2 (TensorFlow `same` padding, asymmetric in the second): the forward kernel has it,
/// though the blocked runs take stride 1 only for now (the input gradient needs it).
const STRIDE_2: &[Case] = &[
    ([3, 17, 7, 9], [3, 3], 2, 1, [1, 1, 1, 1], 21),
    ([1, 20, 8, 8], [3, 3], 2, 1, [0, 1, 0, 1], 33),
    ([2, 20, 9, 9], [3, 3], 2, 1, [0, 1, 0, 1], 64),
];

fn geometry(&(input, kernel, stride, dilation, pads, _): &Case) -> Geometry {
    Geometry {
        input,
        multiplier: 1,
        kernel,
        stride: [stride; 2],
        dilation: [dilation; 2],
        pads,
    }
}

/// The definition in f64: `y` and, for `dy`, the input gradient.
fn reference(x: &[f32], wt: &[f32], dy: &[f32], g: &Geometry, f: usize) -> [Vec<f64>; 2] {
    let [n, c, h, w] = g.input;
    let [oh, ow] = g.output_hw();
    let [k_h, k_w] = g.kernel;
    let (mut y, mut dx) = (vec![0.0f64; n * f * oh * ow], vec![0.0f64; x.len()]);
    for (yi, out) in y.iter_mut().enumerate() {
        let (j, i, o, b) = (
            yi % ow,
            yi / ow % oh,
            yi / (ow * oh) % f,
            yi / (ow * oh * f),
        );
        for (ci, ki, kj) in
            (0..c).flat_map(|ci| (0..k_h * k_w).map(move |t| (ci, t / k_w, t % k_w)))
        {
            let r = (i * g.stride[0] + ki * g.dilation[0]) as isize - g.pads[0] as isize;
            let s = (j * g.stride[1] + kj * g.dilation[1]) as isize - g.pads[2] as isize;
            if r < 0 || s < 0 || r >= h as isize || s >= w as isize {
                continue;
            }
            let xi = ((b * c + ci) * h + r as usize) * w + s as usize;
            let wv = wt[((o * c + ci) * k_h + ki) * k_w + kj] as f64;
            *out += x[xi] as f64 * wv;
            dx[xi] += dy[yi] as f64 * wv;
        }
    }
    [y, dx]
}

fn levels() -> Vec<Level> {
    [Level::Portable, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|l| *l <= detected())
        .collect()
}

/// `forward` at `level`'s lanes on NCHW values: in and out through the blocked layout.
fn forward_nchw(level: Level, x: &[f32], wt: &[f32], e: Epilogue, g: &Geometry) -> Vec<f32> {
    let lanes = microkernel::lanes(level);
    let [n, f, oh, ow] = [g.input[0], e.bias.len(), g.output_hw()[0], g.output_hw()[1]];
    let xb = blocked::to_blocked(
        x,
        Blocking {
            dims: g.input,
            lanes,
        },
    );
    let out = Blocking {
        dims: [n, f, oh, ow],
        lanes,
    };
    let yb = forward_at(level, &xb, wt, e, g);
    blocked::from_blocked(&yb, out)
}

#[test]
fn forward_matches_the_definition_at_every_level_bit_for_bit_alike() {
    for case in CASES.iter().chain(STRIDE_2) {
        let (g, f) = (geometry(case), case.5);
        let [n, c, h, w] = g.input;
        let x = values(n * c * h * w, 1);
        let wt = values(f * c * g.kernel[0] * g.kernel[1], 2);
        let dy = values(g.output_hw().iter().product::<usize>() * n * f, 3);
        let bias = values(f, 4);
        let [y, _] = reference(&x, &wt, &dy, &g, f);
        let plane = g.output_hw().iter().product::<usize>();
        for activation in [Fused::Linear, Fused::Relu, Fused::Relu6] {
            let e = Epilogue {
                bias: &bias,
                activation,
            };
            let expected: Vec<f64> = y
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let v = v + bias[i / plane % f] as f64;
                    match activation {
                        Fused::Linear => v,
                        Fused::Relu => v.max(0.0),
                        Fused::Relu6 => v.clamp(0.0, 6.0),
                    }
                })
                .collect();
            let portable = forward_nchw(Level::Portable, &x, &wt, e, &g);
            for level in levels() {
                let ours = forward_nchw(level, &x, &wt, e, &g);
                close(
                    &ours,
                    &expected,
                    &format!("{g:?} {activation:?} at {level:?}"),
                );
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&ours), bits(&portable), "{g:?}: {level:?} differs");
            }
        }
    }
}

#[test]
fn gradients_match_the_definition_at_every_level() {
    for case in CASES {
        let (g, f) = (geometry(case), case.5);
        let [n, c, h, w] = g.input;
        let [oh, ow] = g.output_hw();
        let x = values(n * c * h * w, 4);
        let wt = values(f * c * g.kernel[0] * g.kernel[1], 5);
        let dy = values(oh * ow * n * f, 6);
        let [_, dx] = reference(&x, &wt, &dy, &g, f);
        let dw = crate::cpu::dense::backward_weight(&x, &dy, &g, f);
        let mut first = None;
        for level in levels() {
            let lanes = microkernel::lanes(level);
            let xb = blocked::to_blocked(
                &x,
                Blocking {
                    dims: g.input,
                    lanes,
                },
            );
            let dyb = blocked::to_blocked(
                &dy,
                Blocking {
                    dims: [n, f, oh, ow],
                    lanes,
                },
            );
            let ours = backward_input_at(level, &wt, &dyb, &g);
            let ours = blocked::from_blocked(
                &ours,
                Blocking {
                    dims: g.input,
                    lanes,
                },
            );
            close(&ours, &dx, &format!("dx of {g:?} at {level:?}"));
            let ours = weight_grad::backward_weight(level, &xb, &dyb, &g, f);
            close(&ours, &f64s(&dw), &format!("dW of {g:?} at {level:?}"));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            match &first {
                None => first = Some(bits(&ours)),
                Some(b) => assert_eq!(&bits(&ours), b, "dW of {g:?}: {level:?} differs"),
            }
        }
    }
}
