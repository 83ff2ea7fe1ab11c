//! Batch normalisation over channels (NCHW), with running statistics for inference.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{BatchNorm as BurnBatchNorm, BatchNormConfig as BurnBatchNormConfig};
use burn::tensor::{Device, Tensor};

/// Configuration of a [`BatchNorm`]. Defaults are PyTorch's (`epsilon` 1e-5, `momentum` 0.1,
/// i.e. Keras `momentum=0.9`), which settle the running statistics within a short run.
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// Channels normalised.
    pub channels: usize,
    /// Added to the variance for stability.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the current batch in the running statistics.
    #[config(default = 0.1)]
    pub momentum: f64,
}

/// `γ · (x − μ) / sqrt(σ² + ε) + β`; batch statistics while training (on an autodiff device),
/// running statistics otherwise. Parameters: γ, β trainable; μ, σ² non-trainable (as in Keras).
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// burn's implementation, which already follows these semantics.
    pub inner: BurnBatchNorm,
}

impl BatchNormConfig {
    /// Creates γ = 1, β = 0, μ = 0, σ² = 1.
    pub fn init(&self, device: &Device) -> BatchNorm {
        let inner = BurnBatchNormConfig::new(self.channels)
            .with_epsilon(self.epsilon)
            .with_momentum(self.momentum)
            .init(device);
        BatchNorm { inner }
    }
}

impl BatchNorm {
    /// `[batch, channels, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.inner.forward(x)
    }
}
