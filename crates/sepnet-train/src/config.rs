//! Everything that defines a training run; written to `config.json` in the run directory.

use sepnet_data::InputScaling;
use sepnet_model::layers::DepthwiseFans;
use serde::{Deserialize, Serialize};

/// Which optimizer updates the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent (with `momentum`, optionally Nesterov).
    Sgd,
    /// Adam (Kingma & Ba); `weight_decay` is L2 added to the gradient.
    Adam,
    /// AdamW: decoupled weight decay.
    AdamW,
}

/// How the learning rate moves over the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor applied at each decay.
        gamma: f64,
    },
    /// Cosine decay from the base rate to 0 over the run.
    Cosine,
    /// Linear warm-up over `warmup` of the steps, then cosine decay (one-cycle).
    OneCycle {
        /// Fraction of all steps spent warming up.
        warmup: f64,
    },
}

impl Schedule {
    /// The learning rate at `step` of `total` steps (`steps_per_epoch` to locate epochs).
    pub fn lr(&self, base: f64, step: usize, total: usize, steps_per_epoch: usize) -> f64 {
        let progress = step as f64 / total.max(1) as f64;
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => {
                base * gamma.powi((step / (steps_per_epoch * every.max(1)).max(1)) as i32)
            }
            Schedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            Schedule::OneCycle { warmup } => {
                if progress < warmup {
                    base * (step + 1) as f64 / (warmup * total as f64).max(1.0)
                } else {
                    let rest = (progress - warmup) / (1.0 - warmup).max(1e-9);
                    base * 0.5 * (1.0 + (std::f64::consts::PI * rest).cos())
                }
            }
        }
    }
}

/// A complete, reproducible description of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Built-in model name or architecture spec.
    pub model: String,
    /// MobileNet width multiplier.
    pub alpha: f64,
    /// Initialisation fans for every depthwise kernel (`None`: as the model says).
    #[serde(default)]
    pub depthwise_fans: Option<DepthwiseFans>,
    /// `mnist`, `fashion-mnist`, `cifar10`, or an image folder path.
    pub dataset: String,
    /// Folder holding the dataset files (else the usual search order).
    pub data_dir: Option<String>,
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// SGD momentum (0 = plain SGD).
    pub momentum: f64,
    /// Nesterov momentum for SGD.
    pub nesterov: bool,
    /// Weight decay (L2 for SGD/Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// Cross-entropy label smoothing in [0, 1).
    pub label_smoothing: f64,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Seeds initialisation, shuffling, augmentation and dropout.
    pub seed: u64,
    /// Training images held out for validation (0: validate on the test split).
    pub val_split: usize,
    /// Random crop (4-pixel padding) and horizontal flip.
    pub augment: bool,
    /// How pixels are scaled before the network sees them (runs written before this field
    /// existed standardised, the default).
    #[serde(default)]
    pub input_scaling: InputScaling,
    /// Stop each epoch after this many steps (for smoke tests); `None` = whole epoch.
    pub max_steps_per_epoch: Option<usize>,
    /// `flex` or `wgpu`.
    pub backend: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: "mnist-full".into(),
            alpha: 1.0,
            depthwise_fans: None,
            dataset: "mnist".into(),
            data_dir: None,
            epochs: 5,
            batch_size: 128,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            schedule: Schedule::Constant,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            label_smoothing: 0.0,
            grad_clip: None,
            seed: 42,
            val_split: 0,
            augment: false,
            input_scaling: InputScaling::Standardize,
            max_steps_per_epoch: None,
            backend: "flex".into(),
        }
    }
}

impl TrainConfig {
    /// Checks the numbers a user typed before any work starts.
    pub fn validate(&self) -> Result<(), String> {
        let problems = [
            (self.epochs == 0, "--epochs must be at least 1"),
            (self.batch_size == 0, "--batch-size must be at least 1"),
            (
                !(self.lr > 0.0 && self.lr.is_finite()),
                "--lr must be a positive number",
            ),
            (
                !(0.0..1.0).contains(&self.label_smoothing),
                "--label-smoothing must be in [0, 1)",
            ),
            (
                !(0.0..1.0).contains(&self.momentum),
                "--momentum must be in [0, 1)",
            ),
            (
                self.weight_decay < 0.0,
                "--weight-decay must not be negative",
            ),
            (
                self.grad_clip.is_some_and(|c| c <= 0.0),
                "--grad-clip must be positive",
            ),
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, message)) => Err(message.to_string()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_directories_written_before_input_scaling_and_fans_still_resume() {
        let mut old = serde_json::to_value(TrainConfig::default()).unwrap();
        let fields = old.as_object_mut().unwrap();
        fields.remove("input_scaling").unwrap();
        fields.remove("depthwise_fans").unwrap();
        let loaded: TrainConfig = serde_json::from_value(old).unwrap();
        assert_eq!(loaded, TrainConfig::default());
        assert_eq!(loaded.input_scaling, InputScaling::Standardize);
    }

    #[test]
    fn scaling_and_fans_are_written_by_name() {
        let config = TrainConfig {
            input_scaling: InputScaling::Raw,
            depthwise_fans: Some(DepthwiseFans::Keras),
            ..Default::default()
        };
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["input_scaling"], "raw");
        assert_eq!(json["depthwise_fans"], "keras");
    }
}
