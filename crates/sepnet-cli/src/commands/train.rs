//! `sepnet train`: train one model on one dataset into a run directory, or resume one.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use sepnet_train::distributed::Collective;
use sepnet_train::report::{Console, Style};
use sepnet_train::{ResumeRequest, RunSummary, resume_with, train_with};

use sepnet_quant::{Granularity, Scheme};
use sepnet_train::{InitFrom, TeacherWeights, TrainConfig};

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
  sepnet train --init-from runs/mobilenet --fake-quant per-tensor --dataset cifar10 --epochs 1 \\
      --lr 1e-4 --out runs/mobilenet-qat              # quantization-aware fine-tuning, then:
  sepnet quantize runs/mobilenet-qat --granularity per-tensor
  mpirun -np 4 sepnet train --model mobilenet --dataset cifar10 --batch-size 512
                                                          # one run on 4 processes (built with
                                                          # --features mpi), 128 images each

Ctrl-C stops at the next step with a checkpoint; --resume continues bit for bit.")]
pub struct Args {
    /// Built-in model name or architecture spec (see `sepnet models`) [default with
    /// --init-from: that run's].
    #[arg(long, required_unless_present_any = ["resume", "init_from"])]
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
    #[command(flatten)]
    tune: TuneArgs,
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

/// Fine-tuning a finished run, and quantization-aware training.
#[derive(clap::Args)]
struct TuneArgs {
    /// Fine-tune: start from the weights of a finished run of the same network, with a fresh
    /// optimizer. Settings not given (dataset, input scaling, batch, optimizer, --lr, epochs,
    /// seed...) are that run's.
    #[arg(
        long,
        value_name = "RUN",
        conflicts_with = "resume",
        help_heading = "Fine-tuning and int8"
    )]
    init_from: Option<PathBuf>,
    /// Which weights of the --init-from run: its best validation epoch's, or its last.
    #[arg(
        long,
        value_enum,
        default_value = "best",
        help_heading = "Fine-tuning and int8"
    )]
    init_weights: TeacherWeights,
    /// Quantization-aware training: every step runs on the weights int8 will hold — BatchNorm
    /// folded and frozen, one scale per tensor or per output channel, gradients passed
    /// straight through the rounding — so that `sepnet quantize` with the same granularity
    /// loses less. Usually with --init-from and a small --lr.
    #[arg(
        long,
        value_enum,
        value_name = "GRANULARITY",
        conflicts_with = "resume",
        help_heading = "Fine-tuning and int8"
    )]
    fake_quant: Option<Granularity>,
    /// With --fake-quant: 7-bit weights, as `sepnet quantize --reduce-range` writes them.
    #[arg(long, requires = "fake_quant", help_heading = "Fine-tuning and int8")]
    fake_quant_reduce_range: bool,
}

impl TuneArgs {
    /// Sets `config`'s starting weights and fake quantization from these flags.
    fn apply(&self, config: &mut TrainConfig, given: &[String]) -> Result<()> {
        if self.init_from.is_none() && given.iter().any(|id| id == "init_weights") {
            bail!(
                "--init-weights chooses the weights of an --init-from run; name the run with --init-from RUN"
            );
        }
        config.init_from = match &self.init_from {
            Some(run) => Some(InitFrom {
                run: std::path::absolute(run)?,
                weights: self.init_weights,
            }),
            None => None,
        };
        config.fake_quant = self.fake_quant.map(|granularity| Scheme {
            granularity,
            reduce_range: self.fake_quant_reduce_range,
        });
        Ok(())
    }
}

/// `config` with every setting not `given` on the command line taken from `from` (the run
/// a fine-tuned run starts from): its data, input scaling, batch, optimizer, seed and the
/// rest — but not its teacher, starting weights or fake quantization.
fn inherit(config: TrainConfig, from: &TrainConfig, given: &[String]) -> Result<TrainConfig> {
    let given: Vec<String> = given.iter().filter_map(|id| config_key(id)).collect();
    let is_given = |key: &str| {
        let data = ["dataset", "data_dir"];
        let keys: &[&str] = if data.contains(&key) { &data } else { &[key] };
        keys.iter().any(|key| {
            given
                .iter()
                .any(|g| g == key || g.starts_with(&format!("{key}.")))
        })
    };
    let mut mine = serde_json::to_value(&config)?;
    let theirs = serde_json::to_value(from)?;
    for (key, value) in theirs.as_object().into_iter().flatten() {
        if !["model", "distill", "init_from", "fake_quant"].contains(&key.as_str())
            && !is_given(key)
        {
            mine[key] = value.clone();
        }
    }
    Ok(serde_json::from_value(mine)?)
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
    let model = match (&args.model, &args.tune.init_from) {
        (None, Some(run)) => Some(sepnet_train::RunConfig::read(run)?.config.model),
        (model, _) => model.clone(),
    };
    let label = match (&model, &args.resume) {
        (Some(model), _) => model.clone(),
        (None, Some(dir)) => sepnet_train::RunConfig::read(dir)?.config.model,
        (None, None) => bail!("give --model MODEL (or --resume DIR)"),
    };
    let mut reporter = Console::new(style, label).with_stop_flag(stop::flag());
    let (summary, out) = match (&args.resume, &model) {
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
            if let Some(run) = &args.tune.init_from {
                config = inherit(config, &sepnet_train::RunConfig::read(run)?.config, given)?;
            }
            args.tune.apply(&mut config, given)?;
            if let (Style::Human, Some(note)) = (style, super::gpu_first_step_note(config.backend))
            {
                eprintln!("{note}");
            }
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
