//! A run directory: the one place that knows its file names, locks it for its one writer and
//! writes every file atomically.
//!
//! ```text
//! runs/mnist-hybrid/
//!   config.json      what was asked for and the network as built (RunConfig)
//!   dataset.json     classes, image shape, normalisation, split sizes, content digest
//!   checkpoint/      state.json + model and optimizer files, each with its SHA-256
//!   metrics.csv      one row per epoch (also metrics.json)
//!   loss.png, accuracy.png
//!   summary.json     the finished run (test accuracy, per-class accuracy, confusion)
//!   run.lock         held by the process writing the run (an OS lock: it dies with it)
//! ```

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::TrainError;

/// The configuration file.
pub const CONFIG: &str = "config.json";
/// What the model was trained on.
pub const DATASET: &str = "dataset.json";
/// The finished run's results.
pub const SUMMARY: &str = "summary.json";
/// Per-epoch metrics.
pub const METRICS_CSV: &str = "metrics.csv";
/// Per-epoch metrics as JSON.
pub const METRICS_JSON: &str = "metrics.json";
/// The checkpoint folder.
pub const CHECKPOINT: &str = "checkpoint";
const LOCK: &str = "run.lock";

/// A run directory held by its one writer. The lock is released when this is dropped, or
/// by the operating system when the process dies, so a killed run never leaves it stale.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: File,
}

impl RunDir {
    /// Creates `path` (and its parents) for a new run and takes its lock. Refuses a folder
    /// that already holds a run, naming the flag that continues it.
    pub fn create(path: &Path) -> Result<RunDir, TrainError> {
        std::fs::create_dir_all(path).map_err(|e| io_error(path, e))?;
        let run = RunDir::lock(path)?;
        if path.join(CONFIG).exists() {
            return Err(TrainError::Config(format!(
                "{} already holds a run; continue it with `sepnet train --resume {}`, or choose another --out",
                path.display(),
                path.display()
            )));
        }
        Ok(run)
    }

    /// Opens an existing run for writing (to resume it).
    pub fn open(path: &Path) -> Result<RunDir, TrainError> {
        check_is_run(path)?;
        RunDir::lock(path)
    }

    fn lock(path: &Path) -> Result<RunDir, TrainError> {
        let lock_path = path.join(LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(RunDir {
                path: path.to_path_buf(),
                _lock: file,
            }),
            Err(TryLockError::WouldBlock) => Err(TrainError::Busy(format!(
                "{} is being written by another sepnet process; a run directory has one writer \
                 (wait for it, or choose another --out)",
                path.display()
            ))),
            Err(TryLockError::Error(e)) => Err(io_error(&lock_path, e)),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` inside the run.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` (a path relative to the run) atomically from `bytes`.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let path = self.file(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        sepnet_data::atomic::write(&path, bytes).map_err(|e| io_error(&path, e))
    }

    /// Writes `name` atomically as pretty JSON.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), TrainError> {
        self.write_bytes(name, to_json(value).as_bytes())
    }
}

/// Pretty JSON of a value sepnet defines (they always serialise).
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("sepnet's records serialise")
}

/// The error for a folder that is not (or not yet) a run directory, said one way.
pub fn check_is_run(path: &Path) -> Result<(), TrainError> {
    if path.join(CONFIG).is_file() {
        return Ok(());
    }
    let why = if !path.exists() {
        "no such folder".to_string()
    } else if !path.is_dir() {
        "not a folder".to_string()
    } else {
        format!("no {CONFIG} in it")
    };
    Err(TrainError::NotARun(format!(
        "{} is not a sepnet run directory ({why}); `sepnet train --out DIR` makes one",
        path.display()
    )))
}

/// Reads a JSON file sepnet wrote, naming the file in any error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Damaged {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

/// An I/O error naming its file.
pub fn io_error(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_has_one_writer_and_the_lock_dies_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        let first = RunDir::create(&path).unwrap();
        let second = RunDir::create(&path).unwrap_err();
        assert!(matches!(second, TrainError::Busy(_)), "{second}");
        assert!(second.to_string().contains("one writer"), "{second}");
        drop(first);
        let again = RunDir::create(&path).unwrap();
        again.write_json(CONFIG, &1).unwrap();
        drop(again);
        let taken = RunDir::create(&path).unwrap_err().to_string();
        assert!(taken.contains("--resume"), "{taken}");
        assert!(RunDir::open(&path).is_ok());
    }

    #[test]
    fn a_folder_that_is_not_a_run_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let text = check_is_run(dir.path()).unwrap_err().to_string();
        assert!(text.contains("no config.json"), "{text}");
        let text = check_is_run(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(text.contains("no such folder"), "{text}");
    }
}
