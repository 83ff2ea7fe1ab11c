//! Where compiled GPU kernels and autotune results persist between runs.
//!
//! CubeCL keeps them, by default, in `target/environment` of the outermost Cargo workspace
//! above the working directory: inside a checkout's build tree (lost to `cargo clean`, and a
//! different cache per checkout), or `~/.cache/cubecl` elsewhere. sepnet keeps them in one
//! place whatever the working directory: `$SEPNET_GPU_CACHE`, else
//! `$XDG_CACHE_HOME/sepnet/gpu`, else `~/.cache/sepnet/gpu`. A `cubecl.toml` (or the
//! `[cubecl]` section of a `burn.toml`) that names a cache path of its own still wins.

use std::path::PathBuf;

use cubecl::config::cache::CacheConfig;
use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// The directory sepnet's GPU cache lives in.
pub fn directory() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("SEPNET_GPU_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("sepnet").join("gpu")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("sepnet").join("gpu")))
        .unwrap_or_else(|| std::env::temp_dir().join("sepnet-gpu"))
}

/// Points CubeCL's cache at [`directory`] unless a configuration file chose a path, before
/// the first device starts (later calls change nothing).
pub fn configure() {
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    if matches!(config.environment.path, CacheConfig::Target) {
        config.environment.path = CacheConfig::Directory(directory());
    }
    CubeClRuntimeConfig::try_set(config);
}
