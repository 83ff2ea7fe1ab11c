//! `sepnet compare`: train several models with the same data order and settings, then one
//! table (markdown, CSV, JSON) and two charts. The work is the library's
//! (`sepnet_train::compare`); this command plans, reports progress and prints.

use std::path::PathBuf;

use anyhow::{Result, bail};
use sepnet_quant::Granularity;
use sepnet_train::compare::{self, Finished, PlannedRun};
use sepnet_train::plot::Series;
use sepnet_train::report::{Console, Style};

use crate::args::{DistillArgs, OutputArgs, TrainArgs, sanitize, split_models};
use crate::stop;
use crate::world;
use sepnet_train::distributed::Collective;

/// The most seeds per model: a thousand trainings of each is already a large sweep, and the
/// plan of each is held in memory.
const MAX_REPEATS: u64 = 1000;

/// Arguments of `sepnet compare`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  sepnet compare --models mnist-full,mnist-separable,mnist-hybrid --dataset mnist --epochs 5
  sepnet compare --models mnist-separable,mnist-hybrid --distill-from mnist-full --dataset mnist --repeats 3
                                        # each student alone and taught by mnist-full, side by side
  sepnet compare --models vgg-full,vgg-separable --dataset cifar10 --int8
                                        # + int8 accuracy per-tensor and per-channel, int8 size

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
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_REPEATS))]
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
    /// Distil: train MODEL first (it becomes the table's reference), then every other model
    /// twice — alone and taught by MODEL's run of the same seed — and add the distilled
    /// accuracy, its gain, the agreement with the teacher and the time per epoch to the table.
    #[arg(long, value_name = "MODEL", help_heading = "Distillation")]
    distill_from: Option<String>,
    /// int8: quantize every model's runs (their last weights) with these weight scales —
    /// per-tensor, per-channel or both (the default) — and add the int8 test accuracies and
    /// the int8 model's size to the table, and the int8 points to the accuracy-vs-MACs chart.
    /// Each run keeps its model.int8-GRANULARITY.onnx and quantization-GRANULARITY.json.
    #[arg(
        long,
        value_name = "GRANULARITIES",
        value_enum,
        value_delimiter = ',',
        num_args = 0..=1,
        default_missing_values = ["per-tensor", "per-channel"],
        help_heading = "int8"
    )]
    int8: Option<Vec<Granularity>>,
    /// Processes that train each run together (data-parallel over MPI, each taking its share
    /// of every --batch-size batch; needs a sepnet built with --features mpi): here under
    /// `mpirun -np N`, with --plan under `srun` in the batch script (one Slurm job of N tasks
    /// per run).
    #[arg(long, default_value_t = 1, value_parser = crate::args::positive, value_name = "N")]
    ntasks: usize,
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

/// The run directory of `folder` (a model's sanitised name) with `seed`.
fn run_dir(args: &Args, folder: &str, seed: u64) -> Result<PathBuf> {
    let root = match &args.plan {
        Some(dir) => super::sweep::runs_root(&std::path::absolute(dir)?),
        None => args.out.clone(),
    };
    let dir = root.join(folder);
    Ok(if args.repeats == 1 {
        dir
    } else {
        dir.join(format!("seed-{seed}"))
    })
}

/// Every run, model by model and seed by seed; with a teacher, then each student's distilled
/// runs, taught by the teacher's run of the same seed.
fn plan(args: &Args, models: &[String]) -> Result<Vec<PlannedRun>> {
    let mut runs = Vec::new();
    let seeds = || (0..args.repeats).map(|r| args.train.optim.seed + r);
    for model in models {
        for seed in seeds() {
            runs.push(PlannedRun {
                model: model.clone(),
                config: args.train.config(model, seed)?,
                dir: run_dir(args, &sanitize(model), seed)?,
            });
        }
    }
    let Some(teacher) = &args.distill_from else {
        return Ok(runs);
    };
    for model in models.iter().filter(|m| *m != teacher) {
        for seed in seeds() {
            let mut config = args.train.config(model, seed)?;
            let teacher_dir = run_dir(args, &sanitize(teacher), seed)?;
            config.distill = Some(args.train.distill.from(&teacher_dir)?);
            runs.push(PlannedRun {
                model: compare::distilled_label(model),
                config,
                dir: run_dir(
                    args,
                    &format!("{}-{}", sanitize(model), compare::DISTILLED),
                    seed,
                )?,
            });
        }
    }
    Ok(runs)
}

/// The models in table order: with a teacher, the teacher first (the reference of the ratios
/// and the run its students wait for); refuses a teacher with no student.
fn ordered_models(args: &Args) -> Result<Vec<String>> {
    let mut models = split_models(&args.models);
    crate::args::check_distinct(&models)?;
    if let Some(teacher) = &args.distill_from {
        models.retain(|m| m != teacher);
        if models.is_empty() {
            bail!("--distill-from {teacher}: name the students to distil it into with --models");
        }
        models.insert(0, teacher.clone());
    }
    Ok(models)
}

/// Refuses an `--out` that is not a folder (or not yet one), or that is a run directory.
fn check_out_folder(out: &std::path::Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: not a folder", out.display());
    }
    crate::args::refuse_run_directory("--out", out)
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

/// The flags each sweep action takes besides the output flags; any other flag given with it
/// would be ignored (the plan fixes every setting), so it is refused.
fn check_sweep_flags(args: &Args, given: &[String]) -> Result<()> {
    let (action, allowed): (&str, &[&str]) = if args.run_task.is_some() {
        ("--run-task", &["run_task", "task"])
    } else if args.run_plan.is_some() {
        ("--run-plan", &["run_plan", "workers"])
    } else if args.collect.is_some() {
        ("--collect", &["collect", "partial"])
    } else {
        return Ok(());
    };
    let ignored: Vec<String> = given
        .iter()
        .filter(|id| !allowed.contains(&id.as_str()) && !["json", "quiet"].contains(&id.as_str()))
        .map(|id| crate::args::flag_name(id))
        .collect();
    if ignored.is_empty() {
        return Ok(());
    }
    bail!(
        "{} with {action}: the sweep's plan.json fixes the models and every setting; \
         leave {} out (or plan a new sweep with --plan)",
        ignored.join(", "),
        if ignored.len() == 1 { "it" } else { "them" }
    )
}

/// Checks every model, then trains each in turn and writes the comparison — or, with the
/// sweep flags, plans, runs or collects a sweep. `given` are the clap ids of the flags given.
pub fn run(args: Args, given: &[String]) -> Result<()> {
    check_sweep_flags(&args, given)?;
    crate::args::check_given(given, &args.train.optim)?;
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
    DistillArgs::check_used(given, "--distill-from MODEL", args.distill_from.is_some())?;
    let models = ordered_models(&args)?;
    check_out_folder(&args.out)?;
    if args.int8.is_some() && args.plan.is_some() {
        bail!(
            "--int8 with --plan: a sweep's runs are quantized after it, one by one \
             (`sepnet quantize RUN --weights last`)"
        );
    }
    let runs = plan(&args, &models)?;
    let (macs, data) = compare::check(&runs)?;
    if let Some(dir) = &args.plan {
        let dir = std::path::absolute(dir)?;
        let planned = (
            &models[..],
            args.repeats as usize,
            args.distill_from.as_deref(),
        );
        super::sweep::write_plan(&dir, planned, &runs, (&args.slurm, args.ntasks))?;
        return Ok(());
    }
    let world = world::join(args.ntasks)?;
    let style = if world.rank() == 0 {
        style
    } else {
        Style::Quiet
    };
    let result = train_all(&runs, (&macs, &data), args.fresh, style, world.as_ref());
    let finished = world::end_job_on_failure(world.as_ref(), result)?;
    let Some(finished) = finished else {
        return Ok(());
    };
    let mut table = table(&args, &models, &runs, &finished);
    if let Some(granularities) = &args.int8 {
        let plain = &runs[..models.len() * args.repeats as usize];
        table = table.with_int8(&quantize_all(plain, granularities, style)?);
    }
    let markdown = compare::markdown(&table.title, &table.rows);
    let repeats = args.repeats as usize;
    // The first seed's validation curve of each model, then of each student distilled (in
    // its plain curve's colour: students are models 1, 2, …).
    let curves: Vec<Series> = (0..runs.len() / repeats)
        .map(|g| Series {
            name: match g.checked_sub(models.len()) {
                None => compare::legend_name(&models[g], false),
                Some(student) => compare::legend_name(&models[1 + student], true),
            },
            points: finished[g * repeats]
                .history
                .iter()
                .map(|e| (e.epoch as f64, e.val_accuracy))
                .collect(),
            variant_of: (g >= models.len()).then(|| 1 + g - models.len()),
        })
        .collect();
    let files = compare::write_outputs(&args.out, &table, &markdown, &curves)?;
    print(style, &table.rows, &markdown, &files)
}

/// The table of the finished runs, planned by [`plan`]: the models' runs, then the distilled.
fn table(
    args: &Args,
    models: &[String],
    runs: &[PlannedRun],
    finished: &[Finished],
) -> compare::Table {
    let repeats = args.repeats as usize;
    let group = |k: usize, name: &str| {
        let runs = &finished[k * repeats..(k + 1) * repeats];
        (name.to_string(), runs.iter().map(|f| &f.summary).collect())
    };
    let per_model: Vec<(String, Vec<&sepnet_train::RunSummary>)> = models
        .iter()
        .enumerate()
        .map(|(k, m)| group(k, m))
        .collect();
    let table = compare::Table::new(models, repeats, &runs[0].config, &per_model);
    let Some(teacher) = &args.distill_from else {
        return table;
    };
    let distilled: Vec<(String, Vec<&sepnet_train::RunSummary>)> = models[1..]
        .iter()
        .enumerate()
        .map(|(k, m)| group(models.len() + k, m))
        .collect();
    let how = runs[models.len() * repeats].config.distill.clone();
    table.with_distilled(
        teacher,
        &how.expect("distilled runs are planned"),
        &distilled,
    )
}

/// Quantizes every run in `runs` with each granularity; the reports by model, in order.
fn quantize_all(
    runs: &[PlannedRun],
    granularities: &[Granularity],
    style: Style,
) -> Result<Vec<(String, Vec<sepnet_train::quantize::QuantizationReport>)>> {
    let data = sepnet_train::Run::open(&runs[0].dir)?.load_dataset(None, None, false)?;
    let mut reports: Vec<(String, Vec<_>)> = Vec::new();
    for planned in runs {
        if reports
            .last()
            .is_none_or(|(model, _)| model != &planned.model)
        {
            reports.push((planned.model.clone(), Vec::new()));
        }
        for &granularity in granularities {
            let report = compare::int8::quantize_run(&planned.dir, &data, granularity)?;
            if style == Style::Human {
                eprintln!(
                    "{} int8 {granularity}: {:.2}% (float {:.2}%)",
                    planned.dir.display(),
                    100.0 * report.int8.test_accuracy,
                    100.0 * report.float.test_accuracy
                );
            }
            reports.last_mut().expect("pushed above").1.push(report);
        }
    }
    Ok(reports)
}

/// Trains (or resumes, or reuses) every planned run in turn, saying how long is left; as one
/// process of `world`, whose rank 0 alone gets the finished runs (the others `None`).
fn train_all(
    runs: &[PlannedRun],
    (macs, data): (&[u64], &sepnet_train::DatasetInfo),
    fresh: bool,
    style: Style,
    world: &dyn Collective,
) -> Result<Option<Vec<Finished>>> {
    let mut finished: Vec<Finished> = Vec::new();
    for (k, planned) in runs.iter().enumerate() {
        let label = format!("[{}/{}] {}", k + 1, runs.len(), planned.model);
        let mut reporter = Console::new(style, label.clone()).with_stop_flag(stop::flag());
        let done = compare::run_one_with(planned, fresh, Some(data), &mut reporter, world)?;
        let Some(done) = done else { continue };
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
    Ok((world.rank() == 0).then_some(finished))
}
