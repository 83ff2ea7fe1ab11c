//! Sweeps: a `compare` written down as a plan of independent tasks — one fully resolved run
//! configuration per (model, seed) — that a scheduler (a Slurm job array) or a local launcher
//! runs, each task into its own run directory, and that `collect` gathers into the same tables
//! as a local `compare`.
//!
//! ```text
//! DIR/
//!   plan.json          the tasks: model, seed, run directory, configuration
//!   sweep.sbatch       a Slurm job array, one task per run
//!   logs/              each task's output
//!   runs/<model>[/seed-<s>]/   each task's run directory
//!   compare.md, .csv, .json, val_accuracy.png, accuracy_vs_macs.png   (after collect)
//! ```

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::{self, Finished, PlannedRun};
use crate::report::Reporter;
use crate::run::{self, read_json};
use crate::{RunSummary, TrainConfig, TrainError};

/// The plan file.
pub const PLAN: &str = "plan.json";
/// The Slurm batch script.
pub const SBATCH: &str = "sweep.sbatch";
/// The folder of the tasks' logs.
pub const LOGS: &str = "logs";

/// One task of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The model as the user named it.
    pub model: String,
    /// Its run directory, relative to the sweep folder.
    pub run: PathBuf,
    /// Its settings (seed included).
    pub config: TrainConfig,
}

/// `plan.json`: the sweep's tasks in order, and how to tabulate them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The models compared, the first being the reference.
    pub models: Vec<String>,
    /// Seeds per model.
    pub repeats: usize,
    /// The tasks, model by model, seed by seed.
    pub tasks: Vec<Task>,
}

impl Plan {
    /// The plan of `runs` (as `compare` plans them, their directories inside `dir`).
    pub fn new(dir: &Path, models: &[String], repeats: usize, runs: &[PlannedRun]) -> Plan {
        let tasks = runs
            .iter()
            .map(|r| Task {
                model: r.model.clone(),
                run: r.dir.strip_prefix(dir).unwrap_or(&r.dir).to_path_buf(),
                config: r.config.clone(),
            })
            .collect();
        Plan {
            models: models.to_vec(),
            repeats,
            tasks,
        }
    }

    /// Task `index` as a run of `dir`.
    pub fn planned(&self, dir: &Path, index: usize) -> Result<PlannedRun, TrainError> {
        let task = self.tasks.get(index).ok_or_else(|| {
            TrainError::Config(format!(
                "task {index}: the plan in {} has tasks 0 to {}",
                dir.display(),
                self.tasks.len().saturating_sub(1)
            ))
        })?;
        Ok(PlannedRun {
            model: task.model.clone(),
            config: task.config.clone(),
            dir: dir.join(&task.run),
        })
    }

    /// Writes the plan into `dir`, refusing a folder that holds a different one (a sweep whose
    /// configuration changed is not mixed with the old one's runs).
    pub fn write(&self, dir: &Path) -> Result<(), TrainError> {
        let path = dir.join(PLAN);
        if path.exists() {
            let old: Plan = read_json(&path)?;
            if old != *self {
                return Err(TrainError::Config(format!(
                    "{} holds a plan with other models, seeds or settings; plan into another folder",
                    dir.display()
                )));
            }
        }
        std::fs::create_dir_all(dir.join(LOGS)).map_err(|e| run::io_error(dir, e))?;
        sepnet_data::atomic::write(&path, run::to_json(self).as_bytes())
            .map_err(|e| run::io_error(&path, e))
    }

    /// Reads `DIR/plan.json`.
    pub fn read(dir: &Path) -> Result<Plan, TrainError> {
        let path = dir.join(PLAN);
        if !path.is_file() {
            return Err(TrainError::NotARun(format!(
                "{} holds no sweep plan (no {PLAN}); `sepnet compare ... --plan DIR` writes one",
                dir.display()
            )));
        }
        read_json(&path)
    }
}

/// Runs task `index` of the sweep in `dir`: trains it, resumes it if it was started before
/// (a requeued or preempted task), or does nothing if it finished.
pub fn run_task(
    dir: &Path,
    index: usize,
    reporter: &mut dyn Reporter,
) -> Result<Finished, TrainError> {
    let plan = Plan::read(dir)?;
    compare::run_one(&plan.planned(dir, index)?, false, reporter)
}

/// Where a task stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Finished: its summary is there.
    Finished(Box<RunSummary>),
    /// A process is writing its run directory now.
    Running,
    /// Started, not running, not finished: stopped, failed, killed or preempted.
    Stopped,
    /// Not started.
    Missing,
}

/// True when a process holds the run directory's lock.
fn is_running(run_dir: &Path) -> bool {
    match File::open(run_dir.join("run.lock")) {
        Ok(lock) => matches!(lock.try_lock_shared(), Err(TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Each task's status.
pub fn status(dir: &Path, plan: &Plan) -> Result<Vec<Status>, TrainError> {
    plan.tasks
        .iter()
        .map(|task| {
            let run_dir = dir.join(&task.run);
            Ok(if is_running(&run_dir) {
                Status::Running
            } else if run_dir.join(run::SUMMARY).is_file() {
                Status::Finished(Box::new(read_json(&run_dir.join(run::SUMMARY))?))
            } else if run_dir.join(run::CONFIG).is_file() {
                Status::Stopped
            } else {
                Status::Missing
            })
        })
        .collect()
}

/// The log files of task `index` (Slurm's `logs/<job>_<index>.out`, the local launcher's
/// `logs/local_<index>.out`).
pub fn logs(dir: &Path, index: usize) -> Vec<PathBuf> {
    let suffix = format!("_{index}.out");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(LOGS))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect();
    found.sort();
    found
}

/// What `sbatch` is asked for besides the array itself.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--time` (e.g. `04:00:00`).
    pub time: String,
    /// `--cpus-per-task`.
    pub cpus_per_task: usize,
    /// `--gpus-per-task` (for `--backend wgpu`).
    pub gpus: Option<usize>,
    /// The `sepnet` executable the tasks run (on the cluster's shared file system).
    pub sepnet: PathBuf,
}

/// The Slurm batch script of a plan: one array task per run, requeued on preemption.
pub fn sbatch_script(dir: &Path, plan: &Plan, options: &SlurmOptions) -> String {
    let name = dir
        .file_name()
        .map_or("sweep".into(), |n| n.to_string_lossy().into_owned());
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=sepnet-{name}"),
        format!("#SBATCH --array=0-{}", plan.tasks.len().saturating_sub(1)),
        format!("#SBATCH --cpus-per-task={}", options.cpus_per_task),
        format!("#SBATCH --time={}", options.time),
        format!("#SBATCH --output={}/{LOGS}/%A_%a.out", dir.display()),
        "#SBATCH --requeue".to_string(),
    ];
    lines.extend(
        options
            .partition
            .iter()
            .map(|p| format!("#SBATCH --partition={p}")),
    );
    lines.extend(
        options
            .account
            .iter()
            .map(|a| format!("#SBATCH --account={a}")),
    );
    lines.extend(
        options
            .gpus
            .iter()
            .map(|g| format!("#SBATCH --gpus-per-task={g}")),
    );
    lines.push(String::new());
    lines.push(
        "# Each task trains (or resumes, or finds finished) one run of the plan.".to_string(),
    );
    lines.push(format!(
        "exec {} compare --run-task {} --task \"$SLURM_ARRAY_TASK_ID\"",
        options.sepnet.display(),
        dir.display()
    ));
    lines.join("\n") + "\n"
}
