//! # sepnet-train
//!
//! Training on burn's autodiff for any sepnet model: Adam / AdamW / SGD (momentum, Nesterov,
//! weight decay), constant / step / cosine / one-cycle schedules, label smoothing, gradient
//! clipping; per-epoch metrics; and a run directory ([`run`]) that has one writer, writes
//! every file atomically, keeps the latest and the best checkpoint with their checksums, and
//! resumes bit for bit — from the end of an epoch, or from inside one stopped by Ctrl-C.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sepnet_train::{Run, TrainConfig, Weights, report::{Console, Style}, train};
//! let config = TrainConfig { model: "mnist-hybrid".into(), epochs: 5, ..Default::default() };
//! let dir = std::path::Path::new("runs/mnist-hybrid");
//! let summary = train(&config, dir, &mut Console::new(Style::Human, "mnist-hybrid")).unwrap();
//! println!("test accuracy {:.2}%", 100.0 * summary.test_accuracy);
//! // Later, or in another program: the trained network back in one call.
//! let network = Run::open(dir).unwrap().network(&Device::flex(), Weights::Best).unwrap();
//! # drop(network);
//! ```

#![warn(missing_docs)]

mod adam;
pub mod bench;
mod blueprint;
pub mod checkpoint;
pub mod classify;
pub mod compare;
mod config;
pub mod custom;
pub mod distill;
pub mod distributed;
mod evaluate;
pub mod export;
#[cfg(unix)]
pub mod fuzzing;
mod history;
mod init;
mod launch;
mod learner;
pub mod memory;
mod metrics;
mod optimizer;
pub mod plot;
mod prepare;
pub mod profile;
pub mod quantize;
mod record;
pub mod report;
pub mod resume;
pub mod roofline;
pub mod run;
mod source;
mod step;
pub mod sweep;
pub mod table;
mod teacher;
pub mod tensorboard;
mod trainer;

use std::path::PathBuf;

pub use config::{
    Distillation, InitFrom, OptimizerKind, Schedule, TeacherWeights, TrainConfig, Validation,
};
pub use evaluate::{Evaluation, evaluate};
pub use launch::{resume, resume_with, train, train_with};
pub use metrics::{EpochMetrics, RunSummary};
pub use prepare::{DatasetInfo, Prepared, prepare};
pub use record::{NetworkRecord, OwnModule, RUN_FORMAT, Run, RunConfig, Weights};
pub use resume::ResumeRequest;
pub use source::WeightsRecord;
pub use step::{StepOutput, train_step};
pub use teacher::TeacherSummary;

/// Why training (or opening a run) stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad settings, or a run directory that does not match them.
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
    /// A file of a run is damaged, truncated, of another format or from another run.
    #[error("{}: {problem}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A folder that is not a run directory (or a run without a checkpoint).
    #[error("{0}")]
    NotARun(String),
    /// Another process is writing the run directory.
    #[error("{0}")]
    Busy(String),
    /// A checkpoint or chart could not be made.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The run was asked to stop (Ctrl-C, or the reporter); its checkpoint is complete.
    #[error("{0}")]
    Stopped(String),
    /// The loss became NaN or infinite.
    #[error("{0}")]
    NonFinite(String),
}
