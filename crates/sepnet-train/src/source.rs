//! Another finished run whose weights a run uses — the teacher of a distilled run, or the
//! starting point of a fine-tuned one: opened only when finished and not being written,
//! never the run itself, and recorded by SHA-256 so that a resume uses the same weights.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::checkpoint::FileRef;
use crate::config::TeacherWeights;
use crate::record::Run;
use crate::run::is_being_written;

/// Which weights of another run a run uses (in its `config.json`): a resume refuses weights
/// that have changed since.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightsRecord {
    /// That run's id (its `config.json`).
    pub run_id: String,
    /// SHA-256 of the weights file.
    pub weights_sha256: String,
    /// The epoch those weights come from.
    pub epoch: usize,
}

impl WeightsRecord {
    /// The first 12 hex digits of the weights' SHA-256, for a message.
    fn short_sha(&self) -> &str {
        self.weights_sha256
            .get(..12)
            .unwrap_or(&self.weights_sha256)
    }
}

/// The error about the run `dir` given to `flag`.
pub(crate) fn refuse(flag: &str, dir: &Path, problem: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("{flag} {}: {problem}", dir.display()))
}

/// Opens the finished run `dir` (given to `flag`) for the run being written in `own`.
pub(crate) fn open_finished(flag: &str, dir: &Path, own: &Path) -> Result<Run, TrainError> {
    let same = |a: &Path, b: &Path| {
        a.canonicalize()
            .ok()
            .is_some_and(|a| b.canonicalize().ok() == Some(a))
    };
    if same(dir, own) {
        return Err(refuse(
            flag,
            dir,
            "this is the run being written: a run cannot learn from itself",
        ));
    }
    if is_being_written(dir) {
        return Err(refuse(
            flag,
            dir,
            "the run is still being written by another sepnet process; wait until it finishes",
        ));
    }
    let run = Run::open(dir).map_err(|e| refuse(flag, dir, e))?;
    if run.summary()?.is_none() {
        return Err(refuse(
            flag,
            dir,
            format!(
                "the run has not finished (no summary.json); finish it first with `sepnet train --resume {}`",
                dir.display()
            ),
        ));
    }
    Ok(run)
}

/// The weights file of `run` that `which` asks for, and its record.
pub(crate) fn chosen_weights(
    flag: &str,
    run: &Run,
    which: TeacherWeights,
) -> Result<(FileRef, WeightsRecord), TrainError> {
    let state = run
        .state()?
        .ok_or_else(|| refuse(flag, &run.dir, "the run has no checkpoint"))?;
    let (file, epoch) = match (which, &state.best) {
        (TeacherWeights::Best, Some(best)) => (best.model.clone(), best.epoch),
        _ => (state.model.clone(), state.epochs_done),
    };
    let record = WeightsRecord {
        run_id: run.config.run_id.clone(),
        weights_sha256: file.sha256.clone(),
        epoch,
    };
    Ok((file, record))
}

/// Refuses weights (`found`) other than those the run used so far (`recorded`).
pub(crate) fn check_unchanged(
    flag: &str,
    dir: &Path,
    recorded: &WeightsRecord,
    found: &WeightsRecord,
) -> Result<(), TrainError> {
    if found == recorded {
        return Ok(());
    }
    Err(refuse(
        flag,
        dir,
        format!(
            "these are not the weights this run learnt from (run {} epoch {} with weights {}; \
             found run {} epoch {} with weights {}): a resumed run would learn from others",
            recorded.run_id,
            recorded.epoch,
            recorded.short_sha(),
            found.run_id,
            found.epoch,
            found.short_sha(),
        ),
    ))
}
