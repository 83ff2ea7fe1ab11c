//! Which compute backend runs a network, chosen at run time (`--backend`).

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// A compute backend sepnet can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-flex: pure-Rust CPU kernels, SIMD + multi-threaded. The default.
    #[default]
    #[cfg_attr(feature = "cli", value(alias = "cpu"))]
    Flex,
    /// wgpu (Vulkan / Metal / DX12) on the default GPU; needs the `wgpu` cargo feature.
    #[cfg_attr(feature = "cli", value(alias = "gpu"))]
    Wgpu,
}

impl Backend {
    /// The backends this build can run.
    pub fn compiled_in() -> Vec<Backend> {
        let mut backends = vec![Backend::Flex];
        if cfg!(feature = "wgpu") {
            backends.push(Backend::Wgpu);
        }
        backends
    }

    /// The device for inference (no autodiff); [`Device::autodiff`] turns it into a training one.
    pub fn device(&self) -> Result<Device, String> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => {
                crate::kernels::gpu::cache::configure();
                Ok(Device::wgpu(Default::default()))
            }
            #[cfg(not(feature = "wgpu"))]
            Backend::Wgpu => Err(
                "this sepnet was built without the GPU backend; rebuild with `--features wgpu` \
                 (e.g. `cargo build --release --features wgpu`)"
                    .into(),
            ),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
        })
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flex" | "cpu" => Ok(Backend::Flex),
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            other => Err(format!(
                "unknown backend `{other}`; expected `flex` (CPU) or `wgpu` (GPU)"
            )),
        }
    }
}
