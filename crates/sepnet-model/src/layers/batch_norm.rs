//! Batch normalisation over channels (NCHW), with running statistics for inference.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{BatchNorm as BurnBatchNorm, BatchNormConfig as BurnBatchNormConfig};
use burn::tensor::{Device, Tensor};

use super::Activation;
use crate::kernels;

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
        self.forward_activated(x, Activation::Linear)
    }

    /// Inference as `x · scale + shift` per channel, from the running statistics.
    pub(crate) fn inference_affine(&self, device: &Device) -> (Tensor<1>, Tensor<1>) {
        let bn = &self.inner;
        let var = bn.running_var.value().to_device(device);
        let scale = bn.gamma.val() / (var + bn.epsilon).sqrt();
        let mean = bn.running_mean.value().to_device(device);
        let shift = bn.beta.val() - mean * scale.clone();
        (scale, shift)
    }

    /// Whether `x` is an inference input on sepnet's CPU kernels, where the running
    /// statistics fold into the convolution before ([`BatchNorm::fold`]), with at least an
    /// image per thread: folding costs a few small tensor operations per call, and
    /// MobileNet-v2's batch-1 forward pass went from 5.0 to 5.8 ms with them.
    pub(crate) fn folds_at(&self, x: &Tensor<4>) -> bool {
        let inference = !(x.device().is_autodiff() && self.inner.training.is_enabled());
        inference && kernels::applies_to(x) && kernels::direct::batch_pays(x.dims()[0])
    }

    /// The convolution before folded in: its `weight [out, …]` scaled per output channel and
    /// its `bias` (none: zero) become those of `BatchNorm(conv(x))` at inference.
    pub(crate) fn fold(
        &self,
        weight: Tensor<4>,
        bias: Option<Tensor<1>>,
    ) -> (Tensor<4>, Tensor<1>) {
        let (scale, shift) = self.inference_affine(&weight.device());
        let n = scale.dims()[0];
        let shift = match bias {
            Some(bias) => bias * scale.clone() + shift,
            None => shift,
        };
        (weight * scale.reshape([n, 1, 1, 1]), shift)
    }

    /// `activation(BatchNorm(x))`; on sepnet's CPU kernels the activation costs no pass of
    /// its own (it is applied as the normalised values are written, and its mask is
    /// recomputed in the backward pass).
    pub fn forward_activated(&self, x: Tensor<4>, activation: Activation) -> Tensor<4> {
        if !kernels::applies_to(&x) {
            return activation.apply(self.inner.forward(x));
        }
        let bn = &self.inner;
        if !(x.device().is_autodiff() && bn.training.is_enabled()) {
            // Inference: the running statistics fold into one scale and shift per channel;
            // the shift and the activation go in one more pass.
            let channels = bn.gamma.dims()[0];
            let (scale, shift) = self.inference_affine(&x.device());
            let scaled = x * scale.reshape([1, channels, 1, 1]);
            let (fused, after) = activation.split();
            return after.apply(kernels::bias_activation(scaled, shift, fused));
        }
        // burn's training step on sepnet's fused kernel: batch statistics normalise, and the
        // running statistics move toward them by `momentum` (biased variance, as burn does).
        let (fused, after) = activation.split();
        let (output, mean, variance) =
            kernels::batch_norm_train(x, bn.gamma.val(), bn.beta.val(), bn.epsilon, fused);
        let output = after.apply(output);
        let keep = 1.0 - bn.momentum;
        let running_mean = bn.running_mean.value_sync().to_device(&mean.device()) * keep
            + mean.detach() * bn.momentum;
        let running_var = bn.running_var.value_sync().to_device(&variance.device()) * keep
            + variance.detach() * bn.momentum;
        bn.running_mean.update(running_mean.detach());
        bn.running_var.update(running_var.detach());
        output
    }
}
