//! `sepnet train`: train one model on one dataset into a run directory, or resume one.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use sepnet_train::distributed::Collective;
use sepnet_train::report::{Console, Style};
use sepnet_train::{ResumeRequest, RunSummary, resume_with, train_with};

use crate::args::{DistillArgs, OutputArgs, TrainArgs, config_key, sanitize};
use crate::stop;
use crate::world::{self, Distributed};

/// Arguments of `sepnet train`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  sepnet train --model mnist-hybrid --epochs 5
  sepnet train --model \"conv:32:3:relu,pool,sep:64:3:relu,pool,flatten,dense:10\" --dataset fashion-mnist
  sepnet train --resume runs/mnist-hybrid --epochs 10     # continue, with more epochs
  sepnet train --model mnist-separable --teacher runs/mnist-full --out runs/mnist-separable-kd
                                                          # distil a finished run into a student
  mpirun -np 4 sepnet train --model mobilenet --dataset cifar10 --batch-size 512
                                                          # one run on 4 processes (built with
                                                          # --features mpi), 128 images each

Ctrl-C stops at the next step with a checkpoint; --resume continues bit for bit.")]
pub struct Args {
    /// Built-in model name or architecture spec (see `sepnet models`).
    #[arg(long, required_unless_present = "resume")]
    model: Option<String>,
    /// Run directory (config, metrics, plots, checkpoint, summary) [default: runs/<model>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in DIR. Only --epochs, --dataset and --data-dir may change; any other
    /// setting given must equal the run's own.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "out"])]
    resume: Option<PathBuf>,
    /// Distil: a finished run (trained on the same data) whose outputs, softened by
    /// --temperature, the student learns from besides the labels. With --resume: where the
    /// same teacher lives now, if it moved.
    #[arg(long, value_name = "RUN", help_heading = "Distillation")]
    teacher: Option<PathBuf>,
    /// Data-parallel training: `auto` joins the MPI job when `mpirun` or `srun` started
    /// several processes (each takes its share of every --batch-size batch; rank 0 writes the
    /// run), `mpi` always, `off` never.
    #[arg(long, value_enum, default_value_t, value_name = "MODE")]
    distributed: Distributed,
    #[command(flatten)]
    train: TrainArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Prints a finished run's headline (nothing with `--quiet`).
fn report(summary: &RunSummary, out: &Path, style: Style) -> Result<()> {
    match style {
        Style::Quiet => {}
        Style::Json => println!("{}", serde_json::to_string(summary)?),
        Style::Human => eprintln!(
            "{}: test accuracy {:.2}% after {} epochs, {:.2}% with the best validation epoch ({}); \
             {:.1} s training, {:.0} images/s inference; run in {}",
            summary.model,
            100.0 * summary.test_accuracy,
            summary.epochs,
            100.0 * summary.test_accuracy_at_best_epoch,
            summary.best_epoch,
            summary.train_seconds,
            summary.inference_images_per_second,
            out.display()
        ),
    }
    Ok(())
}

/// Trains (or resumes) one run. `given` are the clap ids of the flags on the command line.
pub fn run(args: Args, given: &[String]) -> Result<()> {
    crate::args::check_given(given, &args.train.optim)?;
    if args.resume.is_none() {
        DistillArgs::check_used(given, "--teacher RUN", args.teacher.is_some())?;
    }
    let world = world::open(args.distributed)?;
    let result = run_in(args, given, world.as_ref());
    world::end_job_on_failure(world.as_ref(), result)
}

/// Trains (or resumes) as one process of `world`; rank 0 alone reports.
fn run_in(args: Args, given: &[String], world: &dyn Collective) -> Result<()> {
    let style = match world.rank() {
        0 => args.output.style(),
        _ => Style::Quiet,
    };
    let label = match (&args.model, &args.resume) {
        (Some(model), _) => model.clone(),
        (None, Some(dir)) => sepnet_train::RunConfig::read(dir)?.config.model,
        (None, None) => bail!("give --model MODEL (or --resume DIR)"),
    };
    let mut reporter = Console::new(style, label).with_stop_flag(stop::flag());
    let (summary, out) = match (&args.resume, &args.model) {
        (Some(dir), _) => {
            let mut config = args.train.config("", args.train.optim.seed)?;
            let teacher = args.teacher.as_deref().unwrap_or(dir);
            config.distill = Some(args.train.distill.from(teacher)?);
            let request = ResumeRequest {
                config,
                given: given.iter().filter_map(|id| config_key(id)).collect(),
            };
            (
                resume_with(dir, &request, &mut reporter, world)?,
                dir.clone(),
            )
        }
        (None, Some(model)) => {
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(sanitize(model)));
            let mut config = args.train.config(model, args.train.optim.seed)?;
            config.distill = args
                .teacher
                .as_deref()
                .map(|teacher| args.train.distill.from(teacher))
                .transpose()?;
            (train_with(&config, &out, &mut reporter, world)?, out)
        }
        (None, None) => bail!("give --model MODEL (or --resume DIR)"),
    };
    match summary {
        Some(summary) => report(&summary, &out, style),
        None => Ok(()),
    }
}
