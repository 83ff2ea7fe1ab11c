//! `sepnet compare`: train several models with the same data order and settings, then one
//! table (markdown, CSV, JSON) and two charts. The work is the library's
//! (`sepnet_train::compare`); this command plans, reports progress and prints.

use std::path::PathBuf;

use anyhow::Result;
use sepnet_train::compare::{self, Finished, PlannedRun};
use sepnet_train::plot::Series;
use sepnet_train::report::{Console, Style};

use crate::args::{OutputArgs, TrainArgs, sanitize, split_models};
use crate::stop;

/// Arguments of `sepnet compare`.
#[derive(clap::Args)]
#[command(after_help = "\
Example:
  sepnet compare --models mnist-full,mnist-separable,mnist-hybrid --dataset mnist --epochs 5

Run again with the same flags to pick up where an interrupted compare stopped: finished runs
are reused, interrupted ones resumed.

On a cluster (Slurm), or to run several trainings at once:
  sepnet compare --models ... --repeats 3 --plan sweep/   # writes sweep/plan.json and sweep/sweep.sbatch
  sbatch sweep/sweep.sbatch                               # or: sepnet compare --run-plan sweep/ --workers 2
  sepnet compare --collect sweep/                         # the same table, from the finished runs")]
pub struct Args {
    /// Models to compare, the first being the reference: built-in names separated by commas
    /// (`mnist-full,mnist-hybrid`); specs, which contain commas, separated by `;` or given by
    /// repeating --models.
    #[arg(long, required_unless_present_any = ["run_task", "run_plan", "collect"])]
    models: Vec<String>,
    /// Folder for the runs, the table and the charts.
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// Train each model with K seeds (seed, seed+1, …) and report mean ± std.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    repeats: u64,
    /// Train every model from the start: an existing run in --out is an error, not reused.
    #[arg(long)]
    fresh: bool,
    /// Check everything, then write a sweep plan into DIR (one task per model and seed, and a
    /// Slurm job array in DIR/sweep.sbatch) instead of training.
    #[arg(long, value_name = "DIR", help_heading = "Sweeps")]
    plan: Option<PathBuf>,
    /// Run one task of the sweep plan in DIR (what each Slurm array task does).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["plan", "run_plan", "collect"], help_heading = "Sweeps")]
    run_task: Option<PathBuf>,
    /// The task to run (default: $SLURM_ARRAY_TASK_ID).
    #[arg(long, value_name = "K", requires = "run_task", help_heading = "Sweeps")]
    task: Option<usize>,
    /// Run the unfinished tasks of the sweep plan in DIR on this machine, --workers at a time,
    /// then collect them.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["plan", "collect"], help_heading = "Sweeps")]
    run_plan: Option<PathBuf>,
    /// Trainings at once for --run-plan.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Sweeps")]
    workers: u64,
    /// Build the table and charts of the sweep in DIR from its finished runs, listing each
    /// missing, running or failed one with its log.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "plan",
        help_heading = "Sweeps"
    )]
    collect: Option<PathBuf>,
    /// With --collect: accept a table of the finished runs when some are missing.
    #[arg(long, requires = "collect", help_heading = "Sweeps")]
    partial: bool,
    #[command(flatten)]
    slurm: super::sweep::SlurmArgs,
    #[command(flatten)]
    train: TrainArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// `42 s`, `7 min`, `2.5 h`.
fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

fn plan(args: &Args, models: &[String]) -> Result<Vec<PlannedRun>> {
    let mut runs = Vec::new();
    for model in models {
        for r in 0..args.repeats {
            let seed = args.train.optim.seed + r;
            let root = match &args.plan {
                Some(dir) => super::sweep::runs_root(&std::path::absolute(dir)?),
                None => args.out.clone(),
            };
            let dir = root.join(sanitize(model));
            let dir = if args.repeats == 1 {
                dir
            } else {
                dir.join(format!("seed-{seed}"))
            };
            let config = args.train.config(model, seed)?;
            runs.push(PlannedRun {
                model: model.clone(),
                config,
                dir,
            });
        }
    }
    Ok(runs)
}

/// Prints a comparison's result the way the output flags ask, and where its files went.
pub fn print(style: Style, rows: &[compare::Row], markdown: &str, files: &[PathBuf]) -> Result<()> {
    match style {
        Style::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Style::Human => print!("{markdown}"),
        Style::Quiet => {}
    }
    if style == Style::Human {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        eprintln!("written: {}", names.join(", "));
    }
    Ok(())
}

/// Checks every model, then trains each in turn and writes the comparison — or, with the
/// sweep flags, plans, runs or collects a sweep.
pub fn run(args: Args) -> Result<()> {
    let style = args.output.style();
    if let Some(dir) = &args.run_task {
        return super::sweep::run_task(dir, args.task, style);
    }
    if let Some(dir) = &args.collect {
        return super::sweep::collect(dir, args.partial, style);
    }
    if let Some(dir) = &args.run_plan {
        super::sweep::run_plan(dir, args.workers as usize)?;
        return super::sweep::collect(dir, false, style);
    }
    let models = split_models(&args.models);
    let runs = plan(&args, &models)?;
    let macs = compare::check(&runs)?;
    if let Some(dir) = &args.plan {
        let dir = std::path::absolute(dir)?;
        super::sweep::write_plan(&dir, &models, args.repeats as usize, &runs, &args.slurm)?;
        return Ok(());
    }
    let finished = train_all(&runs, &macs, args.fresh, style)?;
    let repeats = args.repeats as usize;
    let per_model: Vec<(String, Vec<&sepnet_train::RunSummary>)> = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let runs = &finished[i * repeats..(i + 1) * repeats];
            (m.clone(), runs.iter().map(|f| &f.summary).collect())
        })
        .collect();
    let rows = compare::rows(&per_model);
    let title = compare::title(&models, &runs[0].config, repeats);
    let markdown = compare::markdown(&title, &rows);
    let curves: Vec<Series> = models
        .iter()
        .enumerate()
        .map(|(i, m)| Series {
            name: m.chars().take(28).collect(),
            points: finished[i * repeats]
                .history
                .iter()
                .map(|e| (e.epoch as f64, e.val_accuracy))
                .collect(),
        })
        .collect();
    let files = compare::write_outputs(&args.out, &rows, &markdown, &curves)?;
    print(style, &rows, &markdown, &files)
}

/// Trains (or resumes, or reuses) every planned run in turn, saying how long is left.
fn train_all(
    runs: &[PlannedRun],
    macs: &[u64],
    fresh: bool,
    style: Style,
) -> Result<Vec<Finished>> {
    let mut finished: Vec<Finished> = Vec::new();
    for (k, planned) in runs.iter().enumerate() {
        let label = format!("[{}/{}] {}", k + 1, runs.len(), planned.model);
        let mut reporter = Console::new(style, label.clone()).with_stop_flag(stop::flag());
        let done = compare::run_one(planned, fresh, &mut reporter)?;
        let outcome = done.outcome;
        finished.push(done);
        if style == Style::Human {
            let left = compare::remaining_seconds(runs, macs, &finished)
                .filter(|_| k + 1 < runs.len())
                .map(|s| {
                    let left = duration(s);
                    format!("; about {left} left for the other runs (estimated from their MACs)")
                })
                .unwrap_or_default();
            eprintln!("{label}: {outcome:?} — {}{left}", planned.dir.display());
        }
    }
    Ok(finished)
}
