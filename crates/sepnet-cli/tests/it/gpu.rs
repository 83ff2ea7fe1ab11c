//! `--backend wgpu` end to end (built with `--features wgpu`; it needs a Vulkan device, which
//! CI gets from Debian's lavapipe): a short training on the GPU follows the CPU's step for
//! step, and its run exports like any other.

use std::path::{Path, PathBuf};

use crate::common::{FASHION, ok, sepnet};

/// Full, depthwise, pointwise, BatchNorm and pooling layers, small enough for lavapipe.
const SPEC: &str = "conv:8:3:s=2:nobias,bn,relu,dwsep:16,maxpool:2,flatten,dense:10";

/// Trains `SPEC` for 2 epochs of 6 steps on `backend`; returns each epoch's training and
/// validation loss.
fn losses(dir: &Path, backend: &str) -> Vec<(f64, f64)> {
    let run = dir.join(backend);
    ok(&[
        "train",
        "--model",
        SPEC,
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        FASHION,
        "--backend",
        backend,
        "--epochs",
        "2",
        "--max-steps",
        "6",
        "--batch-size",
        "32",
        "--val-split",
        "1000",
        "--seed",
        "5",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (train, val) = (column("train_loss"), column("val_loss"));
    lines
        .map(|line| {
            let cells: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
            (cells[train], cells[val])
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn training_on_the_gpu_follows_the_cpu_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let cpu = losses(dir.path(), "flex");
    let gpu = losses(dir.path(), "wgpu");
    assert_eq!(gpu.len(), 2, "two epochs");
    // The same weights, batches and order: only the order of float sums differs, and twelve
    // Adam steps keep that within a percent.
    for (epoch, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
        for (what, g, c) in [("training", g.0, c.0), ("validation", g.1, c.1)] {
            assert!(
                (g - c).abs() <= 0.01 * c,
                "epoch {}: {what} loss {g} on the GPU, {c} on the CPU",
                epoch + 1
            );
        }
    }
    let run = dir.path().join("wgpu");
    ok(&[
        "export",
        run.to_str().unwrap(),
        "--format",
        "onnx",
        "--samples",
        "16",
    ]);
    assert!(run.join("model.onnx").metadata().unwrap().len() > 1000);
}

/// Where the tests' `sepnet` keeps its compiled GPU kernels: `$SEPNET_GPU_CACHE` (set by CI),
/// else `$XDG_CACHE_HOME/sepnet/gpu` with the tests' own `XDG_CACHE_HOME` (`common::sepnet`).
fn gpu_cache() -> PathBuf {
    std::env::var_os("SEPNET_GPU_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache_home = std::env::temp_dir().join("sepnet-tests-cache");
            cache_home.join("sepnet").join("gpu")
        })
}

/// `bench` says before the first GPU step that it compiles kernels, and where they are kept;
/// they are kept there (not in a build tree), for the next run.
#[test]
fn bench_on_the_gpu_says_it_compiles_kernels_and_keeps_them() {
    let out = sepnet(&[
        "bench",
        "--backend",
        "wgpu",
        "--models",
        SPEC,
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--warmup",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let cache = gpu_cache();
    assert!(
        stderr.contains("compile and autotune GPU kernels")
            && stderr.contains(&cache.display().to_string()),
        "no first-step note naming {}: {stderr}",
        cache.display()
    );
    let kept = std::fs::read_dir(&cache).map(|mut d| d.next().is_some());
    assert!(kept.unwrap_or(false), "nothing kept in {}", cache.display());
}
