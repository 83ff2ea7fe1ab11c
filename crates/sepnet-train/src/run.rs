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
//!   progress.json    where the last checkpoint stood (a lost state.json is then noticed)
//! ```
//!
//! The writer holds an OS lock on the folder itself (not on a file in it, which could be
//! deleted), and checks before every write that the path still leads to the folder it locked:
//! a run directory moved or deleted while training stops the run with an error.

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
/// The loss chart.
pub const LOSS_PNG: &str = "loss.png";
/// The accuracy chart.
pub const ACCURACY_PNG: &str = "accuracy.png";

/// The files of a run directory, by name (besides the checkpoint folder).
const RUN_FILES: &[&str] = &[
    CONFIG,
    DATASET,
    SUMMARY,
    METRICS_CSV,
    METRICS_JSON,
    LOSS_PNG,
    ACCURACY_PNG,
    crate::tensorboard::EVENTS,
    crate::checkpoint::PROGRESS,
];

/// A run directory held by its one writer. The lock is released when this is dropped, or
/// by the operating system when the process dies, so a killed run never leaves it stale.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// The folder itself, opened and locked; `None` for a follower.
    lock: Option<File>,
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
        let folder = File::open(path).map_err(|e| io_error(path, e))?;
        match folder.try_lock() {
            Ok(()) => Ok(RunDir {
                path: path.to_path_buf(),
                lock: Some(folder),
            }),
            Err(TryLockError::WouldBlock) => Err(TrainError::Busy(format!(
                "{} is being written by another sepnet process; a run directory has one writer \
                 (wait for it, or choose another --out)",
                path.display()
            ))),
            Err(TryLockError::Error(e)) => Err(io_error(path, e)),
        }
    }

    /// The run as a process of a data-parallel job other than rank 0 sees it: it reads the
    /// run (a checkpoint to resume) but writes nothing — every write is rank 0's.
    pub fn follow(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
            lock: None,
        }
    }

    /// Whether this process writes the run (false for a [`RunDir::follow`]er).
    pub fn writes(&self) -> bool {
        self.lock.is_some()
    }

    /// Refuses to go on when the run's path no longer leads to the folder this writer locked
    /// (moved, deleted or replaced while training).
    pub fn check_in_place(&self) -> Result<(), TrainError> {
        let Some(lock) = &self.lock else {
            return Ok(());
        };
        let locked = lock.metadata().map_err(|e| io_error(&self.path, e))?;
        #[cfg(unix)]
        let same = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&self.path).is_ok_and(|now| {
                now.dev() == locked.dev() && now.ino() == locked.ino() && locked.nlink() > 0
            })
        };
        #[cfg(not(unix))]
        let same = locked.is_dir() && self.path.is_dir();
        if same {
            return Ok(());
        }
        Err(TrainError::Io {
            path: self.path.clone(),
            problem: "the run directory was moved or deleted while this process was writing it; \
                      stopped (nothing is written anywhere else)"
                .into(),
        })
    }

    /// Removes the run's records (config, data description, metrics, charts, events) from a
    /// run that never wrote a checkpoint, so the folder can hold a new run. Files this writer
    /// did not make are left.
    pub fn remove_records(&self) {
        if !self.writes() || self.path.join(CHECKPOINT).exists() || self.check_in_place().is_err() {
            return;
        }
        for name in RUN_FILES {
            let _ = std::fs::remove_file(self.path.join(name));
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
        if !self.writes() {
            return Ok(());
        }
        self.check_in_place()?;
        let path = self.file(name);
        if let Some(parent) = path.parent()
            && parent != self.path
        {
            std::fs::create_dir(parent)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Ok(()),
                    _ => Err(e),
                })
                .map_err(|e| io_error(parent, e))?;
        }
        // A folder moved during the write shows as a missing file: say what happened.
        sepnet_data::atomic::write(&path, bytes)
            .map_err(|e| self.check_in_place().err().unwrap_or(io_error(&path, e)))
    }

    /// Writes `name` atomically as pretty JSON.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), TrainError> {
        self.write_bytes(name, to_json(value).as_bytes())
    }
}

/// The key under which a record carries the SHA-256 of the rest of itself.
pub const SEAL: &str = "sha256";

/// SHA-256 of an object's compact JSON text, its seal left out.
fn seal_of(object: &serde_json::Map<String, serde_json::Value>) -> String {
    let text = serde_json::to_string(object).expect("JSON values serialise");
    crate::checkpoint::sha256(text.as_bytes())
}

/// Pretty JSON of a value sepnet defines (they always serialise). An object is sealed: its
/// last key is the SHA-256 of the rest, which [`read_json`] checks, so a hand edit or a flipped
/// bit in a record is refused instead of silently changing a run.
pub fn to_json<T: Serialize>(value: &T) -> String {
    let mut json = serde_json::to_value(value).expect("sepnet's records serialise");
    if let Some(object) = json.as_object_mut() {
        object.remove(SEAL);
        let seal = seal_of(object);
        object.insert(SEAL.into(), serde_json::Value::String(seal));
    }
    serde_json::to_string_pretty(&json).expect("sepnet's records serialise")
}

/// Checks and removes the seal of a record read from `path` (see [`to_json`]).
pub fn unseal(path: &Path, mut json: serde_json::Value) -> Result<serde_json::Value, TrainError> {
    let damaged = |problem: &str| TrainError::Damaged {
        path: path.to_path_buf(),
        problem: problem.into(),
    };
    let Some(object) = json.as_object_mut() else {
        return Err(damaged("is not a sepnet record (a JSON object)"));
    };
    let Some(serde_json::Value::String(seal)) = object.remove(SEAL) else {
        return Err(damaged(
            "has no checksum (`sha256`): it was not written by this sepnet, or was edited; \
             sepnet does not trust it",
        ));
    };
    if seal != seal_of(object) {
        return Err(damaged(
            "was changed after sepnet wrote it (its checksum does not match): a hand edit or a \
             damaged disk. Settings change through flags (`--resume` takes --epochs and \
             --data-dir); start a new run for others",
        ));
    }
    Ok(json)
}

/// True when a process holds the lock of the run directory `dir` now.
pub fn is_being_written(dir: &Path) -> bool {
    match File::open(dir) {
        Ok(folder) => matches!(folder.try_lock_shared(), Err(TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Why `path` must not be written by a command's `--out`, if it must not: a file of a run
/// directory (its records, metrics, charts, events, anything in its checkpoint folder) or of
/// a sweep folder (its plan and batch script). Those belong to the run; replacing one would
/// leave it unusable.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("config.json"), "{}").unwrap();
/// let reason = sepnet_train::run::protected_file(&dir.path().join("config.json"));
/// assert!(reason.unwrap().contains("a file of the run"));
/// assert!(sepnet_train::run::protected_file(&dir.path().join("model.onnx")).is_none());
/// ```
pub fn protected_file(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let is_run = |dir: &Path| dir.join(CONFIG).is_file();
    if is_run(parent) && RUN_FILES.contains(&name) {
        return Some(format!(
            "{} is a file of the run in {}",
            path.display(),
            parent.display()
        ));
    }
    if parent.file_name().is_some_and(|n| n == CHECKPOINT) && parent.parent().is_some_and(is_run) {
        return Some(format!(
            "{} is in the checkpoint folder of a run",
            path.display()
        ));
    }
    let sweep_files = [
        crate::sweep::PLAN,
        crate::sweep::SBATCH,
        crate::sweep::SUBMIT,
    ];
    if parent.join(crate::sweep::PLAN).is_file() && sweep_files.contains(&name) {
        return Some(format!(
            "{} is a file of the sweep in {}",
            path.display(),
            parent.display()
        ));
    }
    None
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

/// Reads a JSON file sepnet wrote, checking its seal, naming the file in any error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let raw = read_raw_json(path)?;
    serde_json::from_value(unseal(path, raw)?).map_err(|e| TrainError::Damaged {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

/// Reads a JSON file as it is, seal unchecked (to say which format it is before anything).
pub fn read_raw_json(path: &Path) -> Result<serde_json::Value, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    read_raw_json_bytes(path, &bytes)
}

/// Parses the bytes of the JSON file `path`, seal unchecked.
pub fn read_raw_json_bytes(path: &Path, bytes: &[u8]) -> Result<serde_json::Value, TrainError> {
    serde_json::from_slice(bytes).map_err(|e| TrainError::Damaged {
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
    fn the_lock_is_on_the_folder_and_survives_deleting_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        let first = RunDir::create(&path).unwrap();
        first.write_json(CONFIG, &1).unwrap();
        for entry in std::fs::read_dir(&path).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        assert!(is_being_written(&path));
        assert!(matches!(RunDir::open(&path), Err(TrainError::NotARun(_))));
        let second = RunDir::create(&path).unwrap_err();
        assert!(matches!(second, TrainError::Busy(_)), "{second}");
        drop(first);
        assert!(!is_being_written(&path));
    }

    #[test]
    fn a_moved_or_deleted_run_directory_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        let run = RunDir::create(&path).unwrap();
        run.write_json(CONFIG, &1).unwrap();
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        let err = run.write_json(METRICS_JSON, &2).unwrap_err().to_string();
        assert!(err.contains("moved or deleted"), "{err}");
        assert!(!path.exists(), "the folder was not made again");
        std::fs::remove_dir_all(dir.path().join("moved")).unwrap();
        let err = run.write_bytes("checkpoint/x.bpk", b"x").unwrap_err();
        assert!(err.to_string().contains("moved or deleted"), "{err}");
    }

    #[test]
    fn files_of_runs_and_sweeps_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        std::fs::write(run.join(CONFIG), "{}").unwrap();
        std::fs::create_dir(run.join(CHECKPOINT)).unwrap();
        for name in RUN_FILES {
            assert!(protected_file(&run.join(name)).is_some(), "{name}");
        }
        assert!(protected_file(&run.join("checkpoint/state.json")).is_some());
        assert!(protected_file(&run.join("checkpoint/anything")).is_some());
        assert!(protected_file(&run.join("model.onnx")).is_none());
        let sweep = tempfile::tempdir().unwrap();
        std::fs::write(sweep.path().join(crate::sweep::PLAN), "{}").unwrap();
        assert!(protected_file(&sweep.path().join(crate::sweep::SBATCH)).is_some());
        assert!(protected_file(&sweep.path().join("compare.md")).is_none());
    }

    #[test]
    fn records_are_sealed_and_any_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let value = serde_json::json!({"lr": 0.001, "seed": 42, "nested": {"x": [1.5, 2]}});
        std::fs::write(&path, to_json(&value)).unwrap();
        let back: serde_json::Value = read_json(&path).unwrap();
        assert_eq!(back, value);
        let text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in [("42", "43"), ("0.001", "0.01"), ("1.5", "1.25")] {
            std::fs::write(&path, text.replace(from, to)).unwrap();
            let err = read_json::<serde_json::Value>(&path)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("changed after sepnet wrote it"),
                "{from}: {err}"
            );
        }
        std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
        let err = read_json::<serde_json::Value>(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no checksum"), "{err}");
        // Every single bit flip is refused or unreadable, never accepted.
        for at in 0..text.len() {
            for bit in 0..8 {
                let mut bytes = text.clone().into_bytes();
                bytes[at] ^= 1 << bit;
                std::fs::write(&path, &bytes).unwrap();
                if let Ok(read) = read_json::<serde_json::Value>(&path) {
                    assert_eq!(read, value, "byte {at} bit {bit} changed the record");
                }
            }
        }
    }

    #[test]
    fn floats_round_trip_through_records_bit_for_bit() {
        let mut x = 0.123_456_789_f64;
        let values: Vec<f64> = (0..2000)
            .map(|i| {
                x = (x * 3.987_654_321 + i as f64 * 1e-7).fract();
                x * 10f64.powi(i % 17 - 8)
            })
            .collect();
        let back: Vec<f64> = serde_json::from_str(&to_json(&values)).unwrap();
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));
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
