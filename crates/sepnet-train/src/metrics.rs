//! Per-epoch metrics and the run summary.

use serde::{Deserialize, Serialize};

/// What one epoch did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Training accuracy over the epoch (with augmentation and dropout, as trained).
    pub train_accuracy: f64,
    /// Validation loss (held-out train images, or the test split without `--val-split`).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Wall-clock seconds of the training part of the epoch.
    pub train_seconds: f64,
    /// Training throughput.
    pub images_per_second: f64,
    /// Of the training seconds, those spent summing gradients over the processes of a
    /// data-parallel run (0 on one process).
    #[serde(default)]
    pub allreduce_seconds: f64,
}

/// `metrics.csv`: a header row, then one row per epoch.
pub fn to_csv(history: &[EpochMetrics]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for m in history {
        writer.serialize(m).expect("epoch metrics serialise");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

/// `summary.json` of a finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Model name or spec.
    pub model: String,
    /// The architecture spec that rebuilds it.
    pub spec: String,
    /// Dataset name.
    pub dataset: String,
    /// Total parameters.
    pub params: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Epochs trained (fewer than asked for when early stopping ended the run).
    pub epochs: usize,
    /// Accuracy on the test split after the last epoch.
    pub test_accuracy: f64,
    /// The epoch with the best validation accuracy (its model is kept in the checkpoint).
    pub best_epoch: usize,
    /// Test accuracy of that epoch's model.
    pub test_accuracy_at_best_epoch: f64,
    /// Test loss after the last epoch.
    pub test_loss: f64,
    /// Best validation accuracy over the epochs.
    pub best_val_accuracy: f64,
    /// Seconds spent training (all epochs, evaluation excluded).
    pub train_seconds: f64,
    /// Inference throughput on the test split (images/s).
    pub inference_images_per_second: f64,
    /// Test accuracy per class.
    pub per_class_accuracy: Vec<f64>,
    /// Test confusion matrix `[true][predicted]`.
    pub confusion_matrix: Vec<Vec<u64>>,
    /// Class names.
    pub classes: Vec<String>,
    /// Backend that ran it.
    pub backend: sepnet_model::Backend,
    /// The teacher of a distilled run, and how closely the student follows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<crate::TeacherSummary>,
    /// The processes of a data-parallel run (absent for one process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<crate::distributed::DistributedSummary>,
}
