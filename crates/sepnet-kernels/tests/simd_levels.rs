//! Every instruction-set level computes the same bits (its own test binary: it switches the
//! process-wide level, which must not race other tests).
//!
//! sepnet's own kernel loops are compiled for AVX-512, AVX2 and the baseline target and
//! chosen at run time (`kernels::simd`). A training run resumed on another machine, or with
//! `SEPNET_SIMD` capped, must continue bit for bit, so no level may reorder or fuse the
//! arithmetic.

use sepnet_kernels::Fused;
use sepnet_kernels::simd::{Level, set_level};
use sepnet_kernels::{Geometry, batch_norm, bias_act, depthwise, pool};

/// Deterministic values with a spread of magnitudes and signs.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0
        })
        .collect()
}

/// Everything the multiversioned loops compute, as bit patterns.
fn all_outputs() -> Vec<Vec<u32>> {
    let mut outputs = Vec::new();
    let mut keep = |v: &[f32]| outputs.push(v.iter().map(|x| x.to_bits()).collect());
    // Stride 1 (the wide layout), stride 2 (row by row) and a depth multiplier.
    for (stride, multiplier, hw) in [(1, 1, 13), (2, 1, 12), (1, 2, 5), (2, 2, 9)] {
        let g = Geometry {
            multiplier,
            ..Geometry::new(
                [3, 4, hw, hw],
                [3, 3],
                [stride; 2],
                [1, 1],
                [(1, 1), (1, 1)],
            )
        };
        let x = values(g.input.iter().product(), 1);
        let w = values(g.weight().iter().product(), 2);
        let dy = values(g.output().iter().product(), 3);
        keep(&depthwise::forward(&x, &w, &g));
        keep(&depthwise::backward_input(&w, &dy, &g));
        keep(&depthwise::backward_weight(&x, &dy, &g));
    }
    let d = batch_norm::Dims {
        batch: 3,
        channels: 5,
        pixels: 70,
    };
    let x = values(3 * 5 * 70, 4);
    let (gamma, beta, dy) = (values(5, 5), values(5, 6), values(x.len(), 7));
    for activation in [Fused::Linear, Fused::Relu, Fused::Relu6] {
        let p = batch_norm::Affine {
            gamma: &gamma,
            beta: &beta,
            epsilon: 1e-3,
            activation,
        };
        let n = batch_norm::forward(&x, p, d);
        let g = batch_norm::backward(&x, p, &n.mean, &n.variance, &dy, d);
        for v in [&n.output, &n.mean, &n.variance, &g.x, &g.gamma, &g.beta] {
            keep(v);
        }
    }
    // 17 windows a row (16 in AVX-512 lanes, one scalar), an odd width; then ties and NaNs.
    let pooled = Geometry::new([1, 1, 30, 35], [2, 2], [2, 2], [1, 1], [(0, 0), (0, 0)]);
    let ties: Vec<f32> = (x.iter().enumerate())
        .map(|(i, v)| {
            if i % 97 == 0 {
                f32::NAN
            } else {
                (v * 3.0).round()
            }
        })
        .collect();
    for x in [&x, &ties] {
        keep(&pool::forward(x, &pooled));
        keep(&pool::backward(x, &dy[..255], &pooled));
    }
    let d = bias_act::Dims {
        batch: 3,
        channels: 5,
        pixels: 70,
    };
    for activation in [Fused::Linear, Fused::Relu, Fused::Relu6] {
        let mut y = x.clone();
        bias_act::forward_in_place(&mut y, &beta, activation, d);
        let (dx, db) = bias_act::backward(&y, &dy, activation, d);
        for v in [&y, &dx, &db] {
            keep(v);
        }
    }
    outputs
}

#[test]
fn every_level_computes_the_same_bits() {
    let best = set_level(Level::Avx512);
    let reference = all_outputs();
    for level in [Level::Portable, Level::Avx2, Level::Avx512] {
        let chosen = set_level(level);
        assert_eq!(all_outputs(), reference, "{chosen:?} differs from {best:?}");
    }
}
