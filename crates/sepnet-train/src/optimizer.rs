//! burn optimizers configured from a [`TrainConfig`].

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::adam::Adam;
use crate::config::{OptimizerKind, TrainConfig};

/// The optimizer a config asks for (PyTorch's conventions: SGD dampening 0, Adam ε 1e-8).
pub fn build(config: &TrainConfig) -> ModuleOptimizer {
    let clip = config
        .grad_clip
        .map(|c| GradientClippingConfig::Norm(c as f32));
    let decay =
        (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
    match config.optimizer {
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum((config.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(config.momentum)
                    .with_dampening(0.0)
                    .with_nesterov(config.nesterov)
            }))
            .with_weight_decay(decay)
            .with_gradient_clipping(clip)
            .init(),
        // Without weight decay, sepnet's one-pass Adam (the same arithmetic as burn's).
        OptimizerKind::Adam if decay.is_none() => {
            let optim = ModuleOptimizer::from(Adam::new());
            match clip {
                Some(clip) => optim.with_grad_clipping(clip.init()),
                None => optim,
            }
        }
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .with_grad_clipping(clip)
            .init(),
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(config.weight_decay as f32)
            .with_grad_clipping(clip)
            .init(),
    }
}
