//! # sepnet-train
//!
//! Training on burn's autodiff for any sepnet model: Adam / AdamW / SGD (momentum, Nesterov,
//! weight decay), constant / step / cosine / one-cycle schedules, label smoothing, gradient
//! clipping; per-epoch metrics; a run directory with `config.json`, `metrics.csv`/`.json`,
//! `summary.json` (per-class accuracy, confusion matrix), PNG curves and an atomic checkpoint
//! every epoch from which `resume` continues exactly.
//!
//! ```no_run
//! use sepnet_train::{TrainConfig, report::{Console, Style}, train};
//! let config = TrainConfig { model: "mnist-hybrid".into(), dataset: "mnist".into(), epochs: 5, ..Default::default() };
//! let summary = train(&config, "runs/mnist-hybrid".as_ref(), false, &mut Console::new(Style::Human, "mnist-hybrid")).unwrap();
//! println!("test accuracy {:.2}%", 100.0 * summary.test_accuracy);
//! ```

#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
mod config;
mod evaluate;
mod metrics;
mod optimizer;
pub mod plot;
pub mod report;
mod trainer;

use std::path::{Path, PathBuf};

pub use config::{OptimizerKind, Schedule, TrainConfig};
pub use evaluate::{Evaluation, evaluate};
pub use metrics::{EpochMetrics, RunSummary};
pub use trainer::{DatasetInfo, Prepared, prepare, read_json, train, write_json};

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad flags or a run directory that does not match them.
    #[error("{0}")]
    Config(String),
    /// The dataset could not be found or read.
    #[error(transparent)]
    Data(#[from] sepnet_data::DataError),
    /// A file could not be written or read.
    #[error("{}: {problem}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// A checkpoint could not be written or read.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The reporter asked to stop; the checkpoint of the last epoch is complete.
    #[error("{0}")]
    Stopped(String),
    /// The loss became NaN or infinite.
    #[error("{0}")]
    NonFinite(String),
}

pub(crate) fn io_error(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}
