//! Helpers shared by the tests: running the `sepnet` binary and reading its answers.

use std::process::{Command, Output};

/// Debian's Fashion-MNIST.
pub const FASHION: &str = "/usr/share/datasets/fashion-mnist";
/// A small spec that trains in a second.
pub const TINY: &str = "conv:8:3:relu,pool,flatten,dense:10";

/// Runs `sepnet` with `args` (its caches in a folder of the tests' own, not the user's).
pub fn sepnet(args: &[&str]) -> Output {
    sepnet_env(&[], args)
}

/// [`sepnet`] with the environment variables `env` set.
pub fn sepnet_env(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepnet"))
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("sepnet-tests-cache"),
        )
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("the sepnet binary runs")
}

/// Runs `sepnet`, expects success, returns its stdout.
pub fn ok(args: &[&str]) -> String {
    ok_env(&[], args)
}

/// [`ok`] with the environment variables `env` set.
pub fn ok_env(env: &[(&str, &str)], args: &[&str]) -> String {
    let out = sepnet_env(env, args);
    assert!(
        out.status.success(),
        "sepnet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sepnet`, expects a clean failure (no panic), returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = sepnet(args);
    assert!(!out.status.success(), "sepnet {args:?} should fail");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains("panicked"),
        "sepnet {args:?} panicked: {stderr}"
    );
    // 1: sepnet refused the input; 2: clap refused a flag. Never a panic (101) or an abort.
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "sepnet {args:?} exited with {:?}: {stderr}",
        out.status.code()
    );
    stderr
}

/// Reads a JSON file.
pub fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A real Fashion-MNIST test image (the first), as a 28×28 grayscale PNG in `dir`.
pub fn test_image(dir: &std::path::Path) -> std::path::PathBuf {
    let d = sepnet_data::mnist::load(std::path::Path::new(FASHION), "fashion-mnist").unwrap();
    let png = dir.join("item.png");
    image::GrayImage::from_raw(28, 28, d.test.images[..784].to_vec())
        .unwrap()
        .save(&png)
        .unwrap();
    png
}
