//! `sepnet train`: train one model on one dataset into a run directory.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sepnet_data::InputScaling;
use sepnet_model::layers::DepthwiseFans;
use sepnet_train::report::{Console, Style};
use sepnet_train::{OptimizerKind, RunSummary, Schedule, TrainConfig, read_json, train};

use crate::args::parse_backend;

/// Training flags shared by `train` and `compare`.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainFlags {
    /// mnist, fashion-mnist, cifar10, or an image folder (ROOT/train/<class>/…, ROOT/test/<class>/…).
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Folder holding the dataset files (default: $SEPNET_DATA/<dataset>, ~/.cache/sepnet/<dataset>, else download).
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// sgd, adam or adamw.
    #[arg(long, default_value = "adam", value_parser = parse_optimizer)]
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// constant, cosine, step:EPOCHS:GAMMA (e.g. step:30:0.1), or onecycle[:WARMUP] (e.g. onecycle:0.1).
    #[arg(long, default_value = "constant", value_parser = parse_schedule)]
    pub schedule: Schedule,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (L2 for sgd/adam, decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Cross-entropy label smoothing.
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// Clip the gradient norm.
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Seed for initialisation, shuffling, augmentation and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Hold out N training images for validation (default 0: validate on the test split).
    #[arg(long, default_value_t = 0)]
    pub val_split: usize,
    /// Random crop (4-pixel padding) and horizontal flip.
    #[arg(long)]
    pub augment: bool,
    /// Input pixels: standardize ((x/255 − mean)/std per channel), unit (x/255, as Keras
    /// tutorials) or raw (0–255, as Keras code that feeds `load_data()` straight to `fit`).
    #[arg(long, default_value = "standardize")]
    pub input_scaling: InputScaling,
    /// Cap the steps of each epoch (quick smoke runs).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// MobileNet width multiplier α.
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// Depthwise kernels' initialisation: group (Glorot, k·k in; the default), keras (Glorot,
    /// k·k·channels in: Keras's smaller weights; pair with --input-scaling raw to train as Keras
    /// code does) or torch (PyTorch's grouped-conv default, U(±1/√(k·k))).
    #[arg(long)]
    pub depthwise_fans: Option<DepthwiseFans>,
    /// flex (CPU) or wgpu (GPU; needs the `wgpu` build feature).
    #[arg(long, default_value = "flex", value_parser = parse_backend)]
    pub backend: sepnet_model::Backend,
    /// Print one JSON object per epoch on stdout (and the summary at the end).
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

impl TrainFlags {
    /// The run configuration for `model`.
    pub fn config(&self, model: &str, seed: u64) -> TrainConfig {
        TrainConfig {
            model: model.into(),
            alpha: self.alpha,
            depthwise_fans: self.depthwise_fans,
            dataset: self.dataset.clone(),
            data_dir: self.data_dir.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: self.optimizer,
            lr: self.lr,
            schedule: self.schedule,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            label_smoothing: self.label_smoothing,
            grad_clip: self.grad_clip,
            seed,
            val_split: self.val_split,
            augment: self.augment,
            input_scaling: self.input_scaling,
            max_steps_per_epoch: self.max_steps,
            backend: self.backend.to_string(),
        }
    }

    /// The progress style the flags ask for.
    pub fn style(&self) -> Style {
        if self.quiet {
            Style::Quiet
        } else if self.json {
            Style::Json
        } else {
            Style::Human
        }
    }
}

fn parse_optimizer(text: &str) -> Result<OptimizerKind, String> {
    match text {
        "sgd" => Ok(OptimizerKind::Sgd),
        "adam" => Ok(OptimizerKind::Adam),
        "adamw" => Ok(OptimizerKind::AdamW),
        other => Err(format!(
            "unknown optimizer `{other}`; expected sgd, adam or adamw"
        )),
    }
}

fn parse_schedule(text: &str) -> Result<Schedule, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let number = |s: &str| {
        s.parse::<f64>()
            .map_err(|_| format!("`{s}` in schedule `{text}` is not a number"))
    };
    match parts.as_slice() {
        ["constant"] => Ok(Schedule::Constant),
        ["cosine"] => Ok(Schedule::Cosine),
        ["onecycle"] => Ok(Schedule::OneCycle { warmup: 0.1 }),
        ["onecycle", w] => Ok(Schedule::OneCycle { warmup: number(w)? }),
        ["step", every, gamma] => Ok(Schedule::Step {
            every: number(every)? as usize,
            gamma: number(gamma)?,
        }),
        _ => Err(format!(
            "unknown schedule `{text}`; expected constant, cosine, step:EPOCHS:GAMMA or onecycle[:WARMUP]"
        )),
    }
}

/// Arguments of `sepnet train`.
#[derive(clap::Args)]
pub struct Args {
    /// Built-in model name or architecture spec (see `sepnet models`).
    #[arg(long, required_unless_present = "resume")]
    model: Option<String>,
    /// Run directory (config, metrics, plots, checkpoint, summary).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the interrupted run in DIR (same settings; --epochs may grow).
    #[arg(long, value_name = "DIR", conflicts_with = "model")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    flags: TrainFlags,
}

/// Prints a finished run's headline (nothing with `--quiet`).
fn report(summary: &RunSummary, out: &std::path::Path, style: Style) -> Result<()> {
    if style == Style::Quiet {
        return Ok(());
    }
    if style == Style::Json {
        println!("{}", serde_json::to_string(summary)?);
    } else {
        eprintln!(
            "{}: test accuracy {:.2}% (best validation {:.2}%), {:.1} s training, {:.0} images/s inference; run in {}",
            summary.model,
            100.0 * summary.test_accuracy,
            100.0 * summary.best_val_accuracy,
            summary.train_seconds,
            summary.inference_images_per_second,
            out.display()
        );
    }
    Ok(())
}

/// Trains (or resumes) one run.
pub fn run(args: Args) -> Result<()> {
    let (config, out, resume) = match (&args.resume, &args.model) {
        (Some(dir), _) => {
            let mut config: TrainConfig = read_json(&dir.join("config.json"))
                .with_context(|| format!("{} is not a sepnet run directory", dir.display()))?;
            if std::env::args().any(|a| a == "--epochs") {
                config.epochs = args.flags.epochs;
            }
            (config, dir.clone(), true)
        }
        (None, Some(model)) => {
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(sanitize(model)));
            (args.flags.config(model, args.flags.seed), out, false)
        }
        (None, None) => bail!("give --model MODEL (or --resume DIR)"),
    };
    let mut reporter = Console::new(args.flags.style(), config.model.clone());
    let summary = train(&config, &out, resume, &mut reporter)?;
    report(&summary, &out, args.flags.style())
}

/// A file-system-safe name for a model or spec.
pub fn sanitize(model: &str) -> String {
    let name: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.chars().take(60).collect()
}
