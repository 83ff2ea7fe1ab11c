//! `sepnet compare` as a sweep: `--plan DIR` writes the tasks and a Slurm job array,
//! `--run-task DIR --task K` runs one (what each array task does), `--run-plan DIR --workers N`
//! runs them on this machine, and `--collect DIR` gathers whatever has finished into the
//! comparison's tables.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

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
    #[arg(long, value_parser = sweep::slurm_name, help_heading = "Sweeps")]
    partition: Option<String>,
    /// Slurm account to charge.
    #[arg(long, value_parser = sweep::slurm_name, help_heading = "Sweeps")]
    account: Option<String>,
    /// Time limit per task, in one of Slurm's forms (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM,
    /// D-HH:MM:SS); a task stopped by it resumes when requeued.
    #[arg(long, default_value = "04:00:00", value_parser = sweep::slurm_time, help_heading = "Sweeps")]
    time: String,
    /// CPUs per task.
    #[arg(long, default_value_t = 2, value_parser = crate::args::positive, help_heading = "Sweeps")]
    cpus_per_task: usize,
    /// GPUs per task (with --backend wgpu).
    #[arg(long, value_parser = crate::args::positive, help_heading = "Sweeps")]
    gpus: Option<usize>,
}

/// Writes the plan of `runs` — of `models` × `repeats`, distilled from a teacher when one is
/// named — and its batch script (with a teacher, and the script that submits it) into `dir`.
pub fn write_plan(
    dir: &Path,
    (models, repeats, teacher): (&[String], usize, Option<&str>),
    runs: &[PlannedRun],
    (slurm, ntasks): (&SlurmArgs, usize),
) -> Result<Plan> {
    sweep::check_script_path(dir)?;
    crate::args::refuse_run_directory("--plan", dir)?;
    let plan = Plan {
        ntasks,
        ..Plan::new(dir, models, repeats, runs, teacher)
    };
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
    let submit = match sweep::submit_script(dir, &plan) {
        None => format!("sbatch {}", script.display()),
        Some(text) => {
            let path = dir.join(sweep::SUBMIT);
            sepnet_data::atomic::write(&path, text.as_bytes())
                .with_context(|| format!("{}: cannot write the script", path.display()))?;
            format!("sh {} (the teacher first)", path.display())
        }
    };
    eprintln!(
        "planned {} tasks in {}: submit with `{submit}`, or run here with \
         `sepnet compare --run-plan {} --workers N`; then `sepnet compare --collect {}`",
        plan.tasks.len(),
        dir.display(),
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
    let world = crate::world::open(crate::world::Distributed::Auto)?;
    let style = if world.rank() == 0 {
        style
    } else {
        Style::Quiet
    };
    let label = format!("task {index}");
    let mut reporter = Console::new(style, label.clone()).with_stop_flag(stop::flag());
    let done = sweep::run_task(dir, index, &mut reporter, world.as_ref()).map_err(Into::into);
    let done = crate::world::end_job_on_failure(world.as_ref(), done)?;
    if let Some(done) = done.filter(|_| style != Style::Quiet) {
        eprintln!("{label}: {:?}", done.outcome);
    }
    Ok(())
}

fn spawn_task(dir: &Path, index: usize, ntasks: usize) -> Result<Child> {
    let log = dir.join(sweep::LOGS).join(format!("local_{index}.out"));
    sepnet_data::atomic::check_replaceable(&log)?;
    let out = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
    let mut command = crate::world::launcher(ntasks)?;
    // A group of its own: a Ctrl-C at the terminal reaches this launcher only, which passes
    // one SIGTERM on (a second signal would end a task before its checkpoint).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    Ok(command
        .args(["compare", "--run-task"])
        .arg(dir)
        .args(["--task", &index.to_string()])
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()?)
}

/// Asks the running tasks to stop (each checkpoints and exits), waits for them, and says so.
fn stop_tasks(running: Vec<(usize, Child)>, pending: usize) -> Result<()> {
    for (k, child) in &running {
        eprintln!("task {k}: asked to stop");
        // SAFETY: kill(2) with a child's pid, which is ours until we wait for it.
        #[cfg(unix)]
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    for (k, mut child) in running {
        let status = child.wait()?;
        eprintln!("task {k}: {status}");
    }
    Err(sepnet_train::TrainError::Stopped(format!(
        "stopped by a signal: the running tasks checkpointed, {pending} were not started; \
         `sepnet compare --run-plan` again continues them"
    ))
    .into())
}

/// Runs every unfinished task of the plan in `dir`, `workers` at a time, until all are done
/// or a signal asks to stop (then no task is started, and the running ones checkpoint). With
/// a teacher, its tasks run first, and the students' only once all of them have succeeded.
pub fn run_plan(dir: &Path, workers: usize) -> Result<()> {
    let plan = Plan::read(dir)?;
    let statuses = sweep::status(dir, &plan)?;
    let unfinished = |k: &usize| !matches!(statuses[*k], Status::Finished(_));
    let teachers: Vec<usize> = plan.teacher_tasks().filter(unfinished).collect();
    let failed = run_tasks(dir, &plan, teachers, workers)?;
    if !failed.is_empty() {
        bail!(
            "the teacher's task {} failed (see its log in {}); its students were not started",
            failed.join(", "),
            dir.join(sweep::LOGS).display()
        );
    }
    let rest: Vec<usize> = (plan.teacher_tasks().end..plan.tasks.len())
        .filter(unfinished)
        .collect();
    run_tasks(dir, &plan, rest, workers).map(|_| ())
}

/// Runs `tasks` of `plan`, `workers` at a time; returns those that failed.
fn run_tasks(dir: &Path, plan: &Plan, tasks: Vec<usize>, workers: usize) -> Result<Vec<String>> {
    let mut pending: Vec<usize> = tasks.into_iter().rev().collect();
    let mut failed = Vec::new();
    let mut running: Vec<(usize, Child)> = Vec::new();
    while !pending.is_empty() || !running.is_empty() {
        if stop::requested() {
            return stop_tasks(running, pending.len()).map(|()| failed);
        }
        while running.len() < workers.max(1)
            && let Some(k) = pending.pop()
        {
            eprintln!("task {k}: started ({})", plan.tasks[k].model);
            running.push((k, spawn_task(dir, k, plan.ntasks)?));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (k, mut child) in running {
            match child.try_wait()? {
                Some(status) => {
                    eprintln!("task {k}: {status}");
                    if !status.success() {
                        failed.push(k.to_string());
                    }
                }
                None => still.push((k, child)),
            }
        }
        running = still;
    }
    Ok(failed)
}

/// The finished runs' summaries and histories, and a line per unfinished task.
fn gather(dir: &Path, plan: &Plan) -> Result<(Vec<Option<Finished>>, Vec<String>)> {
    let statuses = sweep::status(dir, plan)?;
    let mut finished = Vec::new();
    let mut missing = Vec::new();
    let mut data: Option<(usize, String)> = None;
    for (k, status) in statuses.into_iter().enumerate() {
        let task = &plan.tasks[k];
        let run_dir = dir.join(&task.run);
        match status {
            Status::Finished(summary) => {
                let run = Run::open(&run_dir)?;
                let checksum = &run.dataset.checksum;
                match &data {
                    None => data = Some((k, checksum.clone())),
                    Some((first, seen)) if seen != checksum => bail!(
                        "task {k} ({}) was trained on other data than task {first} (checksum {checksum}, \
                         not {seen}): its results cannot share a table",
                        run_dir.display()
                    ),
                    Some(_) => {}
                }
                let history = run.state()?.map(|s| s.history).unwrap_or_default();
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
    let models = plan.models.len();
    // Tasks come in groups of `repeats` seeds: each model's, then each student's distilled.
    let (mut per_model, mut distilled, mut curves) = (Vec::new(), Vec::new(), Vec::new());
    let mut curve_of_model = vec![None; models];
    for (g, group) in finished.chunks(repeats).enumerate() {
        let runs: Vec<&Finished> = group.iter().flatten().collect();
        let Some(first) = runs.first() else { continue };
        let variant_of = match g.checked_sub(models) {
            None => {
                curve_of_model[g] = Some(curves.len());
                None
            }
            Some(student) => curve_of_model[1 + student],
        };
        let summaries: Vec<&RunSummary> = runs.iter().map(|f| &f.summary).collect();
        if g < models {
            per_model.push((plan.models[g].clone(), summaries));
        } else {
            distilled.push((plan.models[1 + g - models].clone(), summaries));
        }
        curves.push(Series {
            name: match g.checked_sub(models) {
                None => compare::legend_name(&plan.models[g], false),
                Some(student) => compare::legend_name(&plan.models[1 + student], true),
            },
            points: first
                .history
                .iter()
                .map(|e| (e.epoch as f64, e.val_accuracy))
                .collect(),
            variant_of,
        });
    }
    if per_model.is_empty() {
        bail!("no task of the sweep in {} has finished yet", dir.display());
    }
    let mut table = compare::Table::new(&plan.models, repeats, &plan.tasks[0].config, &per_model);
    let how = plan
        .tasks
        .get(models * repeats)
        .and_then(|t| t.config.distill.as_ref());
    if let (Some(teacher), Some(how)) = (&plan.distill_from, how) {
        table = table.with_distilled(teacher, how, &distilled);
    }
    let markdown = compare::markdown(&table.title, &table.rows);
    let files = compare::write_outputs(dir, &table, &markdown, &curves)?;
    super::compare::print(style, &table.rows, &markdown, &files)
}

/// The sweep folder's run directory root.
pub fn runs_root(dir: &Path) -> PathBuf {
    dir.join("runs")
}
