//! This machine's two roofs, measured: peak `f32` arithmetic (a tight loop of independent
//! fused multiply-adds on every thread, in the widest vector instructions the CPU has) and
//! streaming memory bandwidth (a sum over a buffer far larger than the caches, on every
//! thread). A layer whose arithmetic intensity (FLOP per byte moved) lies below
//! `peak / bandwidth` can at best reach `bandwidth × intensity`: it is memory-bound, and
//! fewer multiply-adds buy it less time than the MAC count promises.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

/// Peak arithmetic and bandwidth of the CPU this process runs on.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Roofs {
    /// Peak `f32` throughput of all threads, GFLOP/s (a multiply-add counts as two).
    pub peak_gflops: f64,
    /// Streaming read bandwidth of all threads, GB/s.
    pub bandwidth_gbs: f64,
    /// The instructions the peak was measured with: `avx512`, `avx2+fma` or `portable`.
    pub isa: &'static str,
    /// Threads used (rayon's pool, as the kernels use).
    pub threads: usize,
}

impl Roofs {
    /// Measures both roofs (about half a second). Best of three runs each.
    pub fn measure() -> Roofs {
        let threads = rayon::current_num_threads();
        let (isa, fma_loop) = fma_loop();
        const ITERS: u64 = 2_000_000;
        let peak = best_of_3(|| {
            let started = Instant::now();
            let sink: f32 = (0..threads).into_par_iter().map(|_| fma_loop(ITERS)).sum();
            std::hint::black_box(sink);
            (ITERS * FMA_CHAINS * 16 * 2 * threads as u64) as f64 / started.elapsed().as_secs_f64()
        });
        let buffer = vec![1.0f32; 64 << 20]; // 256 MiB: far beyond any cache
        let bandwidth = best_of_3(|| {
            let started = Instant::now();
            let sum: f32 = buffer.par_chunks(1 << 16).map(lanes_sum).sum();
            std::hint::black_box(sum);
            (buffer.len() * 4) as f64 / started.elapsed().as_secs_f64()
        });
        Roofs {
            peak_gflops: peak / 1e9,
            bandwidth_gbs: bandwidth / 1e9,
            isa,
            threads,
        }
    }

    /// The best throughput (GFLOP/s) a kernel of this arithmetic intensity can reach.
    pub fn attainable_gflops(&self, flop_per_byte: f64) -> f64 {
        self.peak_gflops.min(self.bandwidth_gbs * flop_per_byte)
    }

    /// Intensity (FLOP per byte) below which a kernel is memory-bound.
    pub fn ridge(&self) -> f64 {
        self.peak_gflops / self.bandwidth_gbs
    }
}

fn best_of_3(mut run: impl FnMut() -> f64) -> f64 {
    (0..3).map(|_| run()).fold(0.0, f64::max)
}

/// Sum in sixteen independent lanes, so the loop is limited by loads, not by one add chain.
fn lanes_sum(chunk: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    for block in chunk.chunks_exact(16) {
        for (lane, x) in lanes.iter_mut().zip(block) {
            *lane += x;
        }
    }
    lanes.iter().sum()
}

/// Independent accumulator chains per thread: enough to cover the FMA latency on two ports.
const FMA_CHAINS: u64 = 12;

/// The widest FMA loop this CPU runs; each counts `ITERS × 12 chains × 16 lanes` FMAs
/// (the AVX2 loop runs twice as many 8-lane instructions, the portable one 16 scalar lanes).
fn fma_loop() -> (&'static str, fn(u64) -> f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return ("avx512", |n| unsafe { x86::fma_avx512(n) });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return ("avx2+fma", |n| unsafe { x86::fma_avx2(n) });
        }
    }
    ("portable", portable_fma)
}

fn portable_fma(iters: u64) -> f32 {
    let mut acc = [[0.0f32; 16]; FMA_CHAINS as usize];
    for _ in 0..iters {
        for chain in &mut acc {
            for x in chain.iter_mut() {
                *x = x.mul_add(0.999_999, 1e-7);
            }
        }
    }
    acc.iter().flatten().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::FMA_CHAINS;

    #[target_feature(enable = "avx512f")]
    pub(super) fn fma_avx512(iters: u64) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_setzero_ps(); FMA_CHAINS as usize];
        for _ in 0..iters {
            for x in &mut acc {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fma_avx2(iters: u64) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_setzero_ps(); FMA_CHAINS as usize];
        for _ in 0..2 * iters {
            for x in &mut acc {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut lanes = [0.0f32; 8];
        acc.iter().fold(0.0, |sum, &x| {
            // SAFETY: `lanes` holds the eight floats the store writes.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), x) };
            sum + lanes.iter().sum::<f32>()
        })
    }
}
