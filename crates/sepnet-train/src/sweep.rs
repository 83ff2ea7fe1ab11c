//! Sweeps: a `compare` written down as a plan of independent tasks — one fully resolved run
//! configuration per (model, seed) — that a scheduler (a Slurm job array) or a local launcher
//! runs, each task into its own run directory, and that `collect` gathers into the same tables
//! as a local `compare`.
//!
//! ```text
//! DIR/
//!   plan.json          the tasks: model, seed, run directory, configuration
//!   sweep.sbatch       a Slurm job array, one task per run
//!   submit.sh          with a teacher: submits its tasks, then the students' after them
//!   logs/              each task's output
//!   runs/<model>[/seed-<s>]/   each task's run directory
//!   compare.md, .csv, .json, val_accuracy.png, accuracy_vs_macs.png   (after collect)
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::{self, Finished, PlannedRun};
use crate::distributed::Collective;
use crate::report::Reporter;
use crate::run::{self, read_json};
use crate::{RunSummary, TrainConfig, TrainError};

/// The plan file.
pub const PLAN: &str = "plan.json";
/// The Slurm batch script.
pub const SBATCH: &str = "sweep.sbatch";
/// With a teacher, the script that submits the job array in two parts.
pub const SUBMIT: &str = "submit.sh";
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
    /// The tasks, model by model, seed by seed; with a teacher, then each student's distilled
    /// runs, model by model, seed by seed.
    pub tasks: Vec<Task>,
    /// The teacher (`compare --distill-from`), the first of `models`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill_from: Option<String>,
    /// Processes that train each task together (data-parallel over MPI; `compare --ntasks`).
    #[serde(default = "one_task", skip_serializing_if = "is_one")]
    pub ntasks: usize,
}

fn one_task() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Plan {
    /// The plan of `runs` (as `compare` plans them, their directories inside `dir`), whose
    /// students learn from `distill_from` when given.
    pub fn new(
        dir: &Path,
        models: &[String],
        repeats: usize,
        runs: &[PlannedRun],
        distill_from: Option<&str>,
    ) -> Plan {
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
            distill_from: distill_from.map(String::from),
            ntasks: 1,
        }
    }

    /// The tasks that train the teacher (none without one): the students' tasks wait for them.
    pub fn teacher_tasks(&self) -> std::ops::Range<usize> {
        0..if self.distill_from.is_some() {
            self.repeats
        } else {
            0
        }
    }

    /// The model task `k` must train and whether it is distilled, for a plan whose tasks are
    /// those of `compare`.
    fn expected_task(&self, k: usize) -> (String, bool) {
        let plain = self.models.len() * self.repeats;
        if k < plain {
            return (self.models[k / self.repeats].clone(), false);
        }
        let student = &self.models[1 + (k - plain) / self.repeats];
        (compare::distilled_label(student), true)
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
        let plan: Plan = read_json(&path)?;
        plan.check().map_err(|problem| TrainError::Damaged {
            path,
            problem: format!("{problem}; plan the sweep again with `sepnet compare ... --plan`"),
        })?;
        Ok(plan)
    }

    /// Refuses a plan sepnet could not have written (a hand edit, a damaged file): tasks that
    /// do not list each model `repeats` times in order, or run folders outside the sweep.
    pub fn check(&self) -> Result<(), String> {
        if self.models.is_empty() || self.repeats == 0 {
            return Err("it lists no model, or 0 repeats".into());
        }
        if self.ntasks == 0 {
            return Err("its tasks train on 0 processes".into());
        }
        if self
            .distill_from
            .as_ref()
            .is_some_and(|t| *t != self.models[0])
        {
            return Err("its teacher is not the first of its models".into());
        }
        let students = if self.distill_from.is_some() {
            self.models.len() - 1
        } else {
            0
        };
        let expected = (self.models.len() + students).checked_mul(self.repeats);
        if expected != Some(self.tasks.len()) {
            let distilled = if students > 0 {
                format!(" and {students} distilled")
            } else {
                String::new()
            };
            return Err(format!(
                "{} tasks for {} models{distilled} × {} repeats",
                self.tasks.len(),
                self.models.len(),
                self.repeats
            ));
        }
        for (k, task) in self.tasks.iter().enumerate() {
            let (model, distilled) = self.expected_task(k);
            if task.model != model || task.config.distill.is_some() != distilled {
                return Err(format!("task {k} trains `{}`, not `{model}`", task.model));
            }
            let inside = task
                .run
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside || task.run.as_os_str().is_empty() {
                return Err(format!(
                    "task {k}'s run folder `{}` is not a folder inside the sweep",
                    task.run.display()
                ));
            }
            if self.tasks[..k].iter().any(|t| t.run == task.run) {
                return Err(format!(
                    "task {k} shares its run folder with an earlier task"
                ));
            }
            task.config
                .validate()
                .map_err(|e| format!("task {k}: {e}"))?;
        }
        Ok(())
    }
}

/// Runs task `index` of the sweep in `dir`: trains it, resumes it if it was started before
/// (a requeued or preempted task), or does nothing if it finished.
///
/// Under an MPI launcher (`srun` in the batch script of a plan with `ntasks` above 1) it is one
/// process of the task's data-parallel job: rank 0 returns the finished run, the others `None`.
pub fn run_task(
    dir: &Path,
    index: usize,
    reporter: &mut dyn Reporter,
    world: &dyn Collective,
) -> Result<Option<Finished>, TrainError> {
    let plan = Plan::read(dir)?;
    if world.size() != plan.ntasks {
        return Err(TrainError::Config(format!(
            "the plan in {} trains each task on {} process(es), but this job has {}: run the \
             batch script it wrote (or `sepnet compare --run-plan`)",
            dir.display(),
            plan.ntasks,
            world.size()
        )));
    }
    compare::run_one_with(&plan.planned(dir, index)?, false, None, reporter, world)
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
    /// Its folder holds a run that is not this task's (other settings, or a damaged record):
    /// never tabled.
    Foreign(String),
}

/// Why the run in `run_dir` is not `task`'s, if it is not.
fn foreign(run_dir: &Path, task: &Task) -> Option<String> {
    match crate::RunConfig::read(run_dir) {
        Err(e) => Some(e.to_string()),
        Ok(saved) => {
            let differences = compare::config_differences(&task.config, &saved.config);
            (!differences.is_empty()).then(|| {
                format!(
                    "holds a run with other settings than the plan's: {}",
                    differences.join(", ")
                )
            })
        }
    }
}

/// Each task's status.
pub fn status(dir: &Path, plan: &Plan) -> Result<Vec<Status>, TrainError> {
    plan.tasks
        .iter()
        .map(|task| {
            let run_dir = dir.join(&task.run);
            Ok(if run::is_being_written(&run_dir) {
                Status::Running
            } else if !run_dir.join(run::CONFIG).is_file() {
                Status::Missing
            } else if let Some(problem) = foreign(&run_dir, task) {
                Status::Foreign(problem)
            } else if run_dir.join(run::SUMMARY).is_file() {
                Status::Finished(Box::new(read_json(&run_dir.join(run::SUMMARY))?))
            } else {
                Status::Stopped
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

/// A partition or account name for `#SBATCH`: letters, digits, `_`, `-`, `.`, `,` (a
/// comma separates several partitions); anything else would change the batch script.
///
/// ```
/// use sepnet_train::sweep::slurm_name;
/// assert!(slurm_name("gpu,debug").is_ok());
/// assert!(slurm_name("gpu\n#SBATCH --exclusive").is_err());
/// ```
pub fn slurm_name(text: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "_-.,".contains(c);
    if !text.is_empty() && text.chars().all(ok) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{}` is not a Slurm name (letters, digits, _ - . and , only)",
            text.escape_debug()
        ))
    }
}

/// A Slurm time limit: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS`.
///
/// ```
/// use sepnet_train::sweep::slurm_time;
/// for ok in ["30", "30:00", "04:00:00", "2-0", "1-12:00", "1-00:30:00"] {
///     assert!(slurm_time(ok).is_ok(), "{ok}");
/// }
/// for bad in ["banana", "", "1:2:3:4", "-5", "04:00:00\n#SBATCH", "1-", "0"] {
///     assert!(slurm_time(bad).is_err(), "{bad}");
/// }
/// ```
pub fn slurm_time(text: &str) -> Result<String, String> {
    let numbers = |part: &str, max: usize| {
        let fields: Vec<&str> = part.split(':').collect();
        fields.len() <= max
            && fields
                .iter()
                .all(|f| !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()))
    };
    let valid = match text.split_once('-') {
        Some((days, rest)) => numbers(days, 1) && numbers(rest, 3),
        None => numbers(text, 3),
    };
    let nonzero = text.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if valid && nonzero {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{}` is not a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, \
             above zero)",
            text.escape_debug()
        ))
    }
}

/// A value in an `#SBATCH` line: double-quoted with `\` escapes, as sbatch reads them.
fn sbatch_quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A word for bash: single-quoted.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Refuses a sweep folder whose path a batch script cannot hold: a line break (it would end
/// the `#SBATCH` line) or text that is not UTF-8.
pub fn check_script_path(dir: &Path) -> Result<(), TrainError> {
    match dir.to_str() {
        Some(text) if !text.contains(['\n', '\r', '\0']) => Ok(()),
        _ => Err(TrainError::Config(format!(
            "--plan {}: a batch script cannot name this folder (a line break, or not UTF-8); \
             choose another",
            dir.display()
        ))),
    }
}

/// The Slurm batch script of a plan: one array task per run, requeued on preemption. Paths
/// are quoted (and `%` kept literal in the log pattern), so any folder name works.
pub fn sbatch_script(dir: &Path, plan: &Plan, options: &SlurmOptions) -> String {
    let name = dir
        .file_name()
        .map_or("sweep".into(), |n| n.to_string_lossy().into_owned());
    let logs = format!("{}/{LOGS}/", dir.display()).replace('%', "%%");
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "#SBATCH --job-name={}",
            sbatch_quoted(&format!("sepnet-{name}"))
        ),
        format!("#SBATCH --array=0-{}", plan.tasks.len().saturating_sub(1)),
        format!("#SBATCH --cpus-per-task={}", options.cpus_per_task),
        format!("#SBATCH --time={}", options.time),
        format!(
            "#SBATCH --output={}",
            sbatch_quoted(&format!("{logs}%A_%a.out"))
        ),
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
    if plan.ntasks > 1 {
        lines.push(format!("#SBATCH --ntasks={}", plan.ntasks));
    }
    lines.push(String::new());
    lines.push(
        "# Each task trains (or resumes, or finds finished) one run of the plan.".to_string(),
    );
    // A task of several processes is one MPI job that srun starts (PMIx: what Debian's Open
    // MPI and Slurm agree on); each process takes its share of every batch.
    let launch = match plan.ntasks {
        1 => String::new(),
        _ => "srun --mpi=pmix ".into(),
    };
    lines.push(format!(
        "exec {launch}{} compare --run-task {} --task \"$SLURM_ARRAY_TASK_ID\"",
        shell_quoted(&options.sepnet.display().to_string()),
        shell_quoted(&dir.display().to_string())
    ));
    lines.join("\n") + "\n"
}

/// With a teacher, the script that submits the plan: the teacher's tasks, then the students'
/// tasks, which Slurm starts only once every teacher task has succeeded (`afterok`). `None`
/// without a teacher (`sbatch sweep.sbatch` submits the whole array).
pub fn submit_script(dir: &Path, plan: &Plan) -> Option<String> {
    let teachers = plan.teacher_tasks();
    if teachers.is_empty() {
        return None;
    }
    let script = shell_quoted(&dir.join(SBATCH).display().to_string());
    let lines = [
        "#!/bin/sh".to_string(),
        "# The teacher's tasks first; the students' start once every one of them has succeeded."
            .to_string(),
        "set -eu".to_string(),
        format!(
            "teacher=$(sbatch --parsable --array=0-{} \"$@\" {script})",
            teachers.end - 1
        ),
        format!(
            "sbatch --dependency=afterok:\"${{teacher%%;*}}\" --array={}-{} \"$@\" {script}",
            teachers.end,
            plan.tasks.len() - 1
        ),
    ];
    Some(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(tasks: usize) -> Plan {
        let task = |k: usize| Task {
            model: "m".into(),
            run: PathBuf::from(format!("runs/m/seed-{k}")),
            config: TrainConfig::default(),
        };
        Plan {
            models: vec!["m".into()],
            repeats: tasks,
            tasks: (0..tasks).map(task).collect(),
            distill_from: None,
            ntasks: 1,
        }
    }

    /// Teacher `t` and student `s`, two seeds: t, t, s, s, s distilled ×2.
    fn distilled_plan() -> Plan {
        let task = |model: &str, k: usize, distilled: bool| Task {
            model: model.into(),
            run: PathBuf::from(format!("runs/{}/seed-{k}", model.replace(' ', "-"))),
            config: TrainConfig {
                distill: distilled.then(|| crate::Distillation::new("/sweep/runs/t".into())),
                ..Default::default()
            },
        };
        let mut tasks = vec![task("t", 0, false), task("t", 1, false)];
        tasks.extend([task("s", 0, false), task("s", 1, false)]);
        tasks.extend([task("s distilled", 0, true), task("s distilled", 1, true)]);
        Plan {
            models: vec!["t".into(), "s".into()],
            repeats: 2,
            tasks,
            distill_from: Some("t".into()),
            ntasks: 1,
        }
    }

    #[test]
    fn a_distilled_plan_lists_the_teacher_first_and_its_students_last() {
        let good = distilled_plan();
        assert_eq!(good.check(), Ok(()));
        assert_eq!(good.teacher_tasks(), 0..2);
        let mut teacher_not_first = distilled_plan();
        teacher_not_first.distill_from = Some("s".into());
        assert!(teacher_not_first.check().unwrap_err().contains("first"));
        let mut undistilled = distilled_plan();
        undistilled.tasks[5].config.distill = None;
        assert!(undistilled.check().unwrap_err().contains("task 5"));
        let mut short = distilled_plan();
        short.tasks.pop();
        assert!(short.check().unwrap_err().contains("and 1 distilled"));

        let submit = submit_script(Path::new("/my sweep"), &good).unwrap();
        let lines: Vec<&str> = submit.lines().collect();
        assert_eq!(
            lines[3],
            "teacher=$(sbatch --parsable --array=0-1 \"$@\" '/my sweep/sweep.sbatch')"
        );
        assert_eq!(
            lines[4],
            "sbatch --dependency=afterok:\"${teacher%%;*}\" --array=2-5 \"$@\" '/my sweep/sweep.sbatch'"
        );
        assert_eq!(submit_script(Path::new("/x"), &plan(2)), None);
    }

    #[test]
    fn a_plan_sepnet_could_not_have_written_is_refused() {
        assert!(plan(2).check().is_ok());
        let mut empty = plan(2);
        empty.tasks.clear();
        assert!(empty.check().unwrap_err().contains("0 tasks"));
        let mut fewer = plan(3);
        fewer.repeats = 2;
        assert!(
            fewer
                .check()
                .unwrap_err()
                .contains("3 tasks for 1 models × 2")
        );
        let mut no_models = plan(1);
        no_models.models.clear();
        assert!(no_models.check().is_err());
        let mut zero = plan(1);
        zero.repeats = 0;
        assert!(zero.check().is_err());
        let mut outside = plan(2);
        outside.tasks[1].run = PathBuf::from("../../elsewhere");
        assert!(outside.check().unwrap_err().contains("not a folder inside"));
        let mut absolute = plan(2);
        absolute.tasks[0].run = PathBuf::from("/tmp/x");
        assert!(absolute.check().is_err());
        let mut shared = plan(2);
        shared.tasks[1].run = shared.tasks[0].run.clone();
        assert!(shared.check().unwrap_err().contains("shares"));
        let mut other_model = plan(2);
        other_model.tasks[1].model = "x".into();
        assert!(other_model.check().unwrap_err().contains("trains `x`"));
        let mut bad_config = plan(2);
        bad_config.tasks[0].config.lr = f64::NAN;
        assert!(bad_config.check().unwrap_err().contains("--lr"));
    }

    #[test]
    fn the_batch_script_quotes_every_path() {
        let dir = Path::new("/data/my sweep/$HOME/it's 100%");
        let options = SlurmOptions {
            time: "01:00:00".into(),
            cpus_per_task: 2,
            sepnet: PathBuf::from("/opt/se pnet"),
            ..Default::default()
        };
        let script = sbatch_script(dir, &plan(2), &options);
        let lines: Vec<&str> = script.lines().collect();
        assert!(
            lines.contains(&"#SBATCH --job-name=\"sepnet-it's 100%\""),
            "{script}"
        );
        assert!(
            lines.contains(&"#SBATCH --output=\"/data/my sweep/$HOME/it's 100%%/logs/%A_%a.out\""),
            "{script}"
        );
        let exec = lines.last().unwrap();
        assert_eq!(
            *exec,
            "exec '/opt/se pnet' compare --run-task '/data/my sweep/$HOME/it'\\''s 100%' \
             --task \"$SLURM_ARRAY_TASK_ID\""
        );
        assert!(check_script_path(Path::new("/a\nb")).is_err());
        assert!(check_script_path(dir).is_ok());
    }

    /// A plan whose tasks train on several processes asks Slurm for them and starts each task
    /// as one MPI job with srun; one process per task keeps the plain script.
    #[test]
    fn tasks_of_several_processes_are_started_by_srun() {
        let options = SlurmOptions {
            time: "01:00:00".into(),
            cpus_per_task: 4,
            sepnet: PathBuf::from("/opt/sepnet"),
            ..Default::default()
        };
        let mut parallel = plan(2);
        parallel.ntasks = 4;
        let script = sbatch_script(Path::new("/sweep"), &parallel, &options);
        let lines: Vec<&str> = script.lines().collect();
        assert!(lines.contains(&"#SBATCH --ntasks=4"), "{script}");
        assert!(lines.contains(&"#SBATCH --cpus-per-task=4"), "{script}");
        assert_eq!(
            *lines.last().unwrap(),
            "exec srun --mpi=pmix '/opt/sepnet' compare --run-task '/sweep' --task \"$SLURM_ARRAY_TASK_ID\""
        );
        let single = sbatch_script(Path::new("/sweep"), &plan(2), &options);
        assert!(
            !single.contains("--ntasks") && !single.contains("srun"),
            "{single}"
        );
        parallel.ntasks = 0;
        assert!(parallel.check().unwrap_err().contains("0 processes"));
    }
}
