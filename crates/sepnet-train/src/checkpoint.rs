//! Checkpoints written atomically: model and optimizer files under new names, then the small
//! `state.json` that points at them is renamed into place. A run killed at any instant leaves
//! the previous complete checkpoint.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use sepnet_model::Network;
use serde::{Deserialize, Serialize};

use crate::metrics::EpochMetrics;
use crate::{TrainError, io_error};

/// Where training stands after a completed epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Per-epoch metrics so far.
    pub history: Vec<EpochMetrics>,
    /// Model weights file, relative to the checkpoint folder.
    pub model_file: String,
    /// Optimizer state file, relative to the checkpoint folder.
    pub optimizer_file: String,
}

/// The checkpoint folder of a run directory.
pub fn folder(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoint")
}

fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// Saves model, optimizer and state; removes the files of older checkpoints.
pub fn save(
    run_dir: &Path,
    model: &Network,
    optimizer: &ModuleOptimizer,
    state: &TrainState,
) -> Result<(), TrainError> {
    let dir = folder(run_dir);
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    write_atomic(&dir.join(&state.model_file), |tmp| {
        model
            .clone()
            .save_file(tmp)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", tmp.display())))
    })?;
    write_atomic(&dir.join(&state.optimizer_file), |tmp| {
        optimizer
            .save(tmp)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", tmp.display())))
    })?;
    write_atomic(&dir.join("state.json"), |tmp| {
        let json = serde_json::to_string_pretty(state).expect("state serialises");
        std::fs::write(tmp, json).map_err(|e| io_error(tmp, e))
    })?;
    for entry in std::fs::read_dir(&dir)
        .map_err(|e| io_error(&dir, e))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "state.json" && name != state.model_file && name != state.optimizer_file {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Reads `state.json` of a run directory.
pub fn load_state(run_dir: &Path) -> Result<TrainState, TrainError> {
    let path = folder(run_dir).join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// Loads the checkpointed weights into a freshly built `model`.
pub fn load_model(
    run_dir: &Path,
    state: &TrainState,
    model: Network,
) -> Result<Network, TrainError> {
    let path = folder(run_dir).join(&state.model_file);
    model
        .try_load_file(&path)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// Loads the checkpointed optimizer state.
pub fn load_optimizer(
    run_dir: &Path,
    state: &TrainState,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, TrainError> {
    let path = folder(run_dir).join(&state.optimizer_file);
    optimizer
        .load(&path)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}
