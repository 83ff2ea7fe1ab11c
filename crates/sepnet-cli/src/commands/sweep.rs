//! `sepnet compare` as a sweep: `--plan DIR` writes the tasks and a Slurm job array,
//! `--run-task DIR --task K` runs one (what each array task does), `--run-plan DIR --workers N`
//! runs them on this machine, and `--collect DIR` gathers whatever has finished into the
//! comparison's tables.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use sepnet_train::compare::{self, Finished, Outcome, PlannedRun};
use sepnet_train::plot::Series;
use sepnet_train::report::{Console, Style};
use sepnet_train::sweep::{self, Plan, SlurmOptions, Status};
use sepnet_train::{Run, RunSummary};

use crate::stop;

/// How the Slurm job array is asked for.
#[derive(clap::Args, Clone, Debug)]
pub struct SlurmArgs {
    /// Slurm partition for the job array.
    #[arg(long, help_heading = "Sweeps")]
    partition: Option<String>,
    /// Slurm account to charge.
    #[arg(long, help_heading = "Sweeps")]
    account: Option<String>,
    /// Time limit per task (Slurm's HH:MM:SS); a task stopped by it resumes when requeued.
    #[arg(long, default_value = "04:00:00", help_heading = "Sweeps")]
    time: String,
    /// CPUs per task.
    #[arg(long, default_value_t = 2, help_heading = "Sweeps")]
    cpus_per_task: usize,
    /// GPUs per task (with --backend wgpu).
    #[arg(long, help_heading = "Sweeps")]
    gpus: Option<usize>,
}

/// Writes the plan of `runs` and its batch script into `dir`.
pub fn write_plan(
    dir: &Path,
    models: &[String],
    repeats: usize,
    runs: &[PlannedRun],
    slurm: &SlurmArgs,
) -> Result<Plan> {
    let plan = Plan::new(dir, models, repeats, runs);
    plan.write(dir)?;
    let options = SlurmOptions {
        partition: slurm.partition.clone(),
        account: slurm.account.clone(),
        time: slurm.time.clone(),
        cpus_per_task: slurm.cpus_per_task,
        gpus: slurm.gpus,
        sepnet: std::env::current_exe().context("cannot find the sepnet executable")?,
    };
    let script = dir.join(sweep::SBATCH);
    sepnet_data::atomic::write(
        &script,
        sweep::sbatch_script(dir, &plan, &options).as_bytes(),
    )
    .with_context(|| format!("{}: cannot write the batch script", script.display()))?;
    eprintln!(
        "planned {} tasks in {}: submit with `sbatch {}`, or run here with \
         `sepnet compare --run-plan {} --workers N`; then `sepnet compare --collect {}`",
        plan.tasks.len(),
        dir.display(),
        script.display(),
        dir.display(),
        dir.display()
    );
    Ok(plan)
}

/// Runs task `task` (default: `$SLURM_ARRAY_TASK_ID`) of the plan in `dir`.
pub fn run_task(dir: &Path, task: Option<usize>, style: Style) -> Result<()> {
    let index = match task {
        Some(k) => k,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .context("give --task K (or run inside a Slurm job array)")?,
    };
    let label = format!("task {index}");
    let mut reporter = Console::new(style, label.clone()).with_stop_flag(stop::flag());
    let done = sweep::run_task(dir, index, &mut reporter)?;
    if style != Style::Quiet {
        eprintln!("{label}: {:?}", done.outcome);
    }
    Ok(())
}

fn spawn_task(dir: &Path, index: usize) -> Result<Child> {
    let log = dir.join(sweep::LOGS).join(format!("local_{index}.out"));
    let out = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
    Ok(Command::new(std::env::current_exe()?)
        .args(["compare", "--run-task"])
        .arg(dir)
        .args(["--task", &index.to_string()])
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()?)
}

/// Runs every unfinished task of the plan in `dir`, `workers` at a time.
pub fn run_plan(dir: &Path, workers: usize) -> Result<()> {
    let plan = Plan::read(dir)?;
    let statuses = sweep::status(dir, &plan)?;
    let mut pending: Vec<usize> = (0..plan.tasks.len())
        .filter(|&k| !matches!(statuses[k], Status::Finished(_)))
        .rev()
        .collect();
    let mut running: Vec<(usize, Child)> = Vec::new();
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < workers.max(1)
            && let Some(k) = pending.pop()
        {
            eprintln!("task {k}: started ({})", plan.tasks[k].model);
            running.push((k, spawn_task(dir, k)?));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (k, mut child) in running {
            match child.try_wait()? {
                Some(status) => eprintln!("task {k}: {status}"),
                None => still.push((k, child)),
            }
        }
        running = still;
    }
    Ok(())
}

/// The finished runs' summaries and histories, and a line per unfinished task.
fn gather(dir: &Path, plan: &Plan) -> Result<(Vec<Option<Finished>>, Vec<String>)> {
    let statuses = sweep::status(dir, plan)?;
    let mut finished = Vec::new();
    let mut missing = Vec::new();
    for (k, status) in statuses.into_iter().enumerate() {
        let task = &plan.tasks[k];
        let run_dir = dir.join(&task.run);
        match status {
            Status::Finished(summary) => {
                let history = Run::open(&run_dir)?
                    .state()?
                    .map(|s| s.history)
                    .unwrap_or_default();
                let (outcome, summary) = (Outcome::Reused, *summary);
                finished.push(Some(Finished {
                    outcome,
                    summary,
                    history,
                }));
            }
            other => {
                let logs: Vec<String> = sweep::logs(dir, k)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                let logs = if logs.is_empty() {
                    "no log yet".into()
                } else {
                    logs.join(", ")
                };
                missing.push(format!(
                    "task {k} ({}, seed {}): {other:?} — {}; log: {logs}",
                    task.model,
                    task.config.seed,
                    run_dir.display()
                ));
                finished.push(None);
            }
        }
    }
    Ok((finished, missing))
}

/// Builds the comparison from the finished runs of the sweep in `dir`; lists what is missing
/// and fails unless `partial` accepts a table of the finished runs alone.
pub fn collect(dir: &Path, partial: bool, style: Style) -> Result<()> {
    let plan = Plan::read(dir)?;
    let (finished, missing) = gather(dir, &plan)?;
    for line in &missing {
        eprintln!("{line}");
    }
    if !missing.is_empty() && !partial {
        bail!(
            "{} of {} tasks have not finished (listed above); collect again when they have, \
             or pass --partial for a table of the finished ones",
            missing.len(),
            plan.tasks.len()
        );
    }
    let repeats = plan.repeats.max(1);
    let mut per_model: Vec<(String, Vec<&RunSummary>)> = Vec::new();
    let mut curves = Vec::new();
    for (i, model) in plan.models.iter().enumerate() {
        let runs: Vec<&Finished> = finished[i * repeats..(i + 1) * repeats]
            .iter()
            .flatten()
            .collect();
        if let Some(first) = runs.first() {
            per_model.push((model.clone(), runs.iter().map(|f| &f.summary).collect()));
            let points = first
                .history
                .iter()
                .map(|e| (e.epoch as f64, e.val_accuracy))
                .collect();
            curves.push(Series {
                name: model.chars().take(28).collect(),
                points,
            });
        }
    }
    if per_model.is_empty() {
        bail!("no task of the sweep in {} has finished yet", dir.display());
    }
    let rows = compare::rows(&per_model);
    let title = compare::title(&plan.models, &plan.tasks[0].config, repeats);
    let markdown = compare::markdown(&title, &rows);
    let files = compare::write_outputs(dir, &rows, &markdown, &curves)?;
    super::compare::print(style, &rows, &markdown, &files)
}

/// The sweep folder's run directory root.
pub fn runs_root(dir: &Path) -> PathBuf {
    dir.join("runs")
}
