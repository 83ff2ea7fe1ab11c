//! Checkpoints: the model and optimizer files are written under new names, each with its
//! SHA-256, then the small `state.json` that points at them replaces the old one. A run killed
//! at any instant keeps its previous complete checkpoint; a damaged, truncated or foreign file
//! is refused on load, naming it.
//!
//! Two checkpoints are kept: the latest (to resume) and the best validation epoch's model.

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::TrainError;
use crate::metrics::EpochMetrics;
use crate::run::{CHECKPOINT, RunDir, read_json};

/// A file of the checkpoint folder and the SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Name inside `checkpoint/`.
    pub file: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// Where an interrupted epoch stood when it was stopped between two steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// Steps of this epoch already taken.
    pub steps_done: usize,
    /// Images those steps saw.
    pub seen: usize,
    /// Running sum of `loss × images` (the exact f32 the device held).
    pub loss_sum: f32,
    /// Running count of correct predictions.
    pub correct_sum: f32,
    /// Seconds of training spent in this epoch so far.
    pub seconds: f64,
    /// Of those, seconds in the gradient all-reduce (data-parallel runs).
    #[serde(default)]
    pub allreduce_seconds: f64,
}

/// The running training loss and accuracy at one step (logged every few steps, for the
/// TensorBoard curves).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Running mean loss of the epoch.
    pub loss: f64,
    /// Running accuracy of the epoch.
    pub accuracy: f64,
    /// Training seconds since the run started.
    pub seconds: f64,
}

/// The best validation epoch so far, whose model is kept beside the latest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// 1-based epoch.
    pub epoch: usize,
    /// Its validation accuracy.
    pub val_accuracy: f64,
    /// Its model weights.
    pub model: FileRef,
}

/// Where training stands: `checkpoint/state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// The run this checkpoint belongs to (as in its `config.json`).
    pub run_id: String,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Per-epoch metrics so far.
    pub history: Vec<EpochMetrics>,
    /// The running loss and accuracy every few steps.
    #[serde(default)]
    pub steps_log: Vec<StepRecord>,
    /// Set when the run was stopped inside epoch `epochs_done + 1`.
    pub partial: Option<PartialEpoch>,
    /// Model weights after the last step.
    pub model: FileRef,
    /// Optimizer state after the last step.
    pub optimizer: FileRef,
    /// The best validation epoch's model.
    pub best: Option<Best>,
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn in_folder(name: &str) -> String {
    format!("{CHECKPOINT}/{name}")
}

fn record_error(what: &str, e: impl std::fmt::Debug) -> TrainError {
    TrainError::Checkpoint(format!("cannot serialise the {what}: {e:?}"))
}

/// Writes `bytes` as `name` in the checkpoint folder and returns its reference.
fn write_file(run: &RunDir, name: String, bytes: &[u8]) -> Result<FileRef, TrainError> {
    run.write_bytes(&in_folder(&name), bytes)?;
    Ok(FileRef {
        file: name,
        sha256: sha256(bytes),
    })
}

/// The model's weights as burnpack bytes.
pub fn model_bytes<M: Module>(model: &M) -> Result<Vec<u8>, TrainError> {
    // Through `valid()`: burn keeps a BatchNorm's newest running statistics pending per thread
    // until something syncs them, and a record taken straight from the training model would
    // hold them one step behind (a resumed run's evaluations would then differ).
    let bytes = model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| record_error("model", e))?;
    Ok(bytes.to_vec())
}

/// Writes the model and optimizer files for `tag` (e.g. `epoch3`, `epoch3-step120`).
pub fn write_files(
    run: &RunDir,
    tag: &str,
    model: &[u8],
    optimizer: &ModuleOptimizer,
) -> Result<(FileRef, FileRef), TrainError> {
    let optim = optimizer
        .into_bytes()
        .map_err(|e| record_error("optimizer", e))?;
    Ok((
        write_file(run, format!("model-{tag}.bpk"), model)?,
        write_file(run, format!("optimizer-{tag}.bpk"), &optim)?,
    ))
}

/// A record in the run's root that a checkpoint was committed, and where training stood: a
/// run whose `checkpoint/state.json` is lost is then refused instead of started again.
pub const PROGRESS: &str = "progress.json";

/// `progress.json`.
#[derive(Serialize)]
struct Progress {
    epochs_done: usize,
    steps: usize,
}

/// Commits `state` (its files already written) and removes files no state refers to.
pub fn commit(run: &RunDir, state: &TrainState) -> Result<(), TrainError> {
    if !run.writes() {
        return Ok(());
    }
    run.write_json(&in_folder("state.json"), state)?;
    let progress = Progress {
        epochs_done: state.epochs_done,
        steps: state.steps,
    };
    run.write_json(PROGRESS, &progress)?;
    let keep: Vec<&str> = [&state.model, &state.optimizer]
        .into_iter()
        .chain(state.best.as_ref().map(|b| &b.model))
        .map(|f| f.file.as_str())
        .collect();
    let folder = run.file(CHECKPOINT);
    for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "state.json" && !keep.contains(&name.as_str()) {
            // A file left behind only costs disk; the next commit tries again.
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// What shows that a run without `checkpoint/state.json` had trained, if anything does.
fn evidence_of_training(run_dir: &std::path::Path) -> Option<&'static str> {
    use crate::run::{METRICS_JSON, SUMMARY};
    if run_dir.join(PROGRESS).exists() {
        return Some("its progress.json records a checkpoint");
    }
    if run_dir.join(SUMMARY).exists() {
        return Some("it has a summary.json");
    }
    let epochs = std::fs::read(run_dir.join(METRICS_JSON))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).ok())
        .map_or(0, |h| h.len());
    (epochs > 0).then_some("its metrics.json lists finished epochs")
}

/// Reads `checkpoint/state.json` of a run, if there is one, and checks it belongs to `run_id`.
/// A run that has trained but lost it is refused (it would silently start again).
pub fn load_state(
    run_dir: &std::path::Path,
    run_id: &str,
) -> Result<Option<TrainState>, TrainError> {
    let path = run_dir.join(in_folder("state.json"));
    if !path.exists() {
        return match evidence_of_training(run_dir) {
            None => Ok(None),
            Some(evidence) => Err(TrainError::Damaged {
                path,
                problem: format!(
                    "is missing, but the run has trained ({evidence}): sepnet will not start it \
                     again from the first step. Restore the file, or start a new run"
                ),
            }),
        };
    }
    let state: TrainState = read_json(&path)?;
    if state.run_id != run_id {
        return Err(TrainError::Damaged {
            path,
            problem: format!(
                "belongs to run {}, not to this run ({run_id}): a checkpoint from another run directory",
                state.run_id
            ),
        });
    }
    Ok(Some(state))
}

/// Reads a checkpoint file and checks its SHA-256.
pub fn read_file(run_dir: &std::path::Path, file: &FileRef) -> Result<Vec<u8>, TrainError> {
    let path = run_dir.join(in_folder(&file.file));
    let bytes = std::fs::read(&path).map_err(|e| crate::run::io_error(&path, e))?;
    let actual = sha256(&bytes);
    if actual != file.sha256 {
        return Err(TrainError::Damaged {
            path,
            problem: format!(
                "its SHA-256 is {actual}, not the {} state.json recorded: the file is damaged or from elsewhere",
                file.sha256
            ),
        });
    }
    Ok(bytes)
}

/// Loads checkpointed weights into a freshly built `model` of the same architecture.
pub fn load_model<M: Module>(
    run_dir: &std::path::Path,
    file: &FileRef,
    model: M,
) -> Result<M, TrainError> {
    let bytes = read_file(run_dir, file)?;
    let path = run_dir.join(in_folder(&file.file));
    ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .and_then(|record| model.try_load_record(record))
        .map_err(|e| TrainError::Damaged {
            path,
            problem: format!("does not hold this network's weights ({e:?})"),
        })
}

/// Loads the checkpointed optimizer state.
pub fn load_optimizer(
    run_dir: &std::path::Path,
    file: &FileRef,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, TrainError> {
    let bytes = read_file(run_dir, file)?;
    let path = run_dir.join(in_folder(&file.file));
    optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| TrainError::Damaged {
            path,
            problem: format!("does not hold this run's optimizer state ({e:?})"),
        })
}
