//! vgg-full's 3×3 convolutions at batch 128: sepnet's direct kernels in the blocked layout
//! (forward with bias and ReLU, input gradient, weight gradient) against the NCHW `gemm`
//! path's, median of 5 calls each, ms and GFLOP/s. Run with
//! `cargo run --release -p sepnet-kernels --example direct_bench`; add `1` for the same
//! shapes as 1×1 convolutions (vgg-separable's pointwise halves).
//!
//! Each call allocates its output afresh, and glibc maps a 32 MiB block (a 64-channel 32×32
//! batch) straight from the kernel, so every call page-faults through it: 64 → 64 at 32×32
//! then measures 13.5 ms for a 1×1 forward pass that takes 6 ms. A training step reuses its
//! heap and hardly faults; `MALLOC_TOP_PAD_=1000000000` makes the example do the same.

use std::time::Instant;

use sepnet_kernels::cpu::dense;
use sepnet_kernels::cpu::direct::{self, Epilogue, blocked};
use sepnet_kernels::{Fused, Geometry};

/// `(channels, filters, plane)` of vgg-full's convolutions.
const LAYERS: &[(usize, usize, usize)] = &[
    (3, 64, 32),
    (64, 64, 32),
    (64, 128, 16),
    (128, 128, 16),
    (128, 256, 8),
    (256, 256, 8),
];

/// Median seconds of 5 calls.
fn median(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[2]
}

fn main() {
    let (batch, lanes) = (128, direct::lanes());
    let k = match std::env::args().nth(1).as_deref() {
        Some("1") => 1,
        _ => 3,
    };
    let pad = k / 2;
    for &(c, f, hw) in LAYERS {
        let pads = [(pad, pad), (pad, pad)];
        let g = Geometry::new([batch, c, hw, hw], [k, k], [1, 1], [1, 1], pads);
        let x: Vec<f32> = (0..batch * c * hw * hw)
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let dy: Vec<f32> = (0..batch * f * hw * hw)
            .map(|i| (i % 3) as f32 * 0.1)
            .collect();
        let w: Vec<f32> = (0..f * c * k * k).map(|i| (i % 5) as f32 * 0.1).collect();
        let bias = vec![0.1f32; f];
        let blocking = |dims| blocked::Blocking { dims, lanes };
        let xb = blocked::to_blocked(&x, blocking(g.input));
        let dyb = blocked::to_blocked(&dy, blocking([batch, f, hw, hw]));
        let e = Epilogue {
            bias: &bias,
            activation: Fused::Relu,
        };
        let fwd = median(|| drop(std::hint::black_box(direct::forward(&xb, &w, e, &g, lanes))));
        let dx = median(|| drop(direct::backward_input(&w, &dyb, &g, lanes)));
        let dw = median(|| drop(direct::backward_weight(&xb, &dyb, &g, f, lanes)));
        let gemm = median(|| drop(std::hint::black_box(dense::forward(&x, &w, &g, f))));
        let gemm_dx = median(|| drop(dense::backward_input(&w, &dy, &g, f)));
        let gemm_dw = median(|| drop(dense::backward_weight(&x, &dy, &g, f)));
        let flops = 2.0 * (batch * f * c * k * k * hw * hw) as f64;
        let cell = |s: f64| format!("{:5.1} ms {:4.0}", s * 1e3, flops / s / 1e9);
        println!(
            "{c:>3} → {f:>3}, {hw:>2}×{hw:<2}  direct: forward {}, dx {}, dW {}   gemm: forward {}, dx {}, dW {}",
            cell(fwd),
            cell(dx),
            cell(dw),
            cell(gemm),
            cell(gemm_dx),
            cell(gemm_dw)
        );
    }
}
