//! Argument groups shared by the commands, each declared once and flattened where needed.

use std::path::PathBuf;

use anyhow::Result;
use sepnet_data::{DatasetKind, InputScaling};
use sepnet_model::layers::DepthwiseFans;
use sepnet_model::{Backend, ModelOptions};
use sepnet_train::{
    Distillation, OptimizerKind, Schedule, TeacherWeights, TrainConfig, Validation,
};

/// Options that shape a model (every command that builds one takes them).
#[derive(clap::Args, Clone, Debug)]
pub struct ModelOptionsArgs {
    /// Input size HxWxC, e.g. 32x32x3 (default: the model's own, or the dataset's when
    /// training; 28x28x1 for specs).
    #[arg(long, value_parser = parse_input, help_heading = "Model")]
    pub input: Option<[usize; 3]>,
    /// Number of classes (sets the final dense layer; when training, the dataset sets it).
    #[arg(long, value_parser = positive, help_heading = "Model")]
    pub classes: Option<usize>,
    /// MobileNet width multiplier α in (0, 1]: every layer keeps int(c·α) channels.
    #[arg(long, default_value_t = 1.0, value_parser = number, help_heading = "Model")]
    pub alpha: f64,
    /// MobileNet resolution multiplier ρ in (0, 1]: input side × ρ.
    #[arg(long, default_value_t = 1.0, value_parser = number, help_heading = "Model")]
    pub rho: f64,
    /// VGG block list as FILTERSxCONVS,..., e.g. 64x2,128x2,256x2.
    #[arg(long, value_parser = parse_blocks, help_heading = "Model")]
    pub blocks: Option<VggBlocks>,
    /// Depthwise kernels' initialisation: group (Glorot, k·k in; the default), keras (Glorot,
    /// k·k·channels in: Keras's smaller weights) or torch (PyTorch's grouped-conv default,
    /// U(±1/√(k·k))).
    #[arg(long, value_enum, help_heading = "Model")]
    pub depthwise_fans: Option<DepthwiseFans>,
}

impl ModelOptionsArgs {
    /// The options for `resolve_model`.
    pub fn options(&self) -> ModelOptions {
        ModelOptions {
            alpha: self.alpha,
            rho: self.rho,
            classes: self.classes,
            input: self.input,
            vgg_blocks: self.blocks.clone().map(|b| b.0),
            depthwise_fans: self.depthwise_fans,
        }
    }
}

/// Where the data come from and how they are fed.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// mnist, fashion-mnist, cifar10, or an image folder (ROOT/train/<class>/…, ROOT/test/<class>/…).
    #[arg(long, default_value = "mnist", help_heading = "Data")]
    pub dataset: String,
    /// Folder holding the dataset files; only read, never downloaded into (default:
    /// $SEPNET_DATA/<dataset>, ~/.cache/sepnet/<dataset>, else a download into the cache).
    #[arg(long, help_heading = "Data")]
    pub data_dir: Option<PathBuf>,
    /// Input pixels: standardize ((x/255 − mean)/std per channel), unit (x/255, as Keras
    /// tutorials) or raw (0–255, as Keras code that feeds `load_data()` straight to `fit`).
    #[arg(long, value_enum, default_value = "standardize", help_heading = "Data")]
    pub input_scaling: InputScaling,
    /// Training images held out for validation, as a percentage (10%) or a count (5000): the
    /// best epoch is chosen on them.
    #[arg(long, default_value = "10%", help_heading = "Data")]
    pub val_split: Validation,
    /// Validate on the test split instead, as the published Keras experiments did (the "best
    /// epoch" is then chosen on the test set, and tables say so).
    #[arg(long, conflicts_with = "val_split", help_heading = "Data")]
    pub validate_on_test: bool,
    /// Random crop (4-pixel padding) and horizontal flip.
    #[arg(long, help_heading = "Data")]
    pub augment: bool,
}

/// How the weights are fitted.
#[derive(clap::Args, Clone, Debug)]
pub struct OptimArgs {
    /// Passes over the training data.
    #[arg(long, default_value_t = 5, help_heading = "Training")]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128, help_heading = "Training")]
    pub batch_size: usize,
    /// The optimizer.
    #[arg(long, value_enum, default_value = "adam", help_heading = "Training")]
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = number, help_heading = "Training")]
    pub lr: f64,
    /// constant, cosine, step:EPOCHS:GAMMA (e.g. step:30:0.1), onecycle[:WARMUP] (e.g.
    /// onecycle:0.1), or plateau[:FACTOR:PATIENCE] (Keras's ReduceLROnPlateau on the
    /// validation loss; plateau = plateau:0.1:10).
    #[arg(long, default_value = "constant", help_heading = "Training")]
    pub schedule: Schedule,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, value_parser = number, help_heading = "Training")]
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    #[arg(long, help_heading = "Training")]
    pub nesterov: bool,
    /// Weight decay (L2 for sgd/adam, decoupled for adamw).
    #[arg(long, default_value_t = 0.0, value_parser = number, help_heading = "Training")]
    pub weight_decay: f64,
    /// Cross-entropy label smoothing.
    #[arg(long, default_value_t = 0.0, value_parser = number, help_heading = "Training")]
    pub label_smoothing: f64,
    /// Clip the gradient norm.
    #[arg(long, value_parser = number, help_heading = "Training")]
    pub grad_clip: Option<f64>,
    /// Seed for initialisation, shuffling, augmentation and dropout.
    #[arg(long, default_value_t = 42, help_heading = "Training")]
    pub seed: u64,
    /// Cap the steps of each epoch (quick smoke runs).
    #[arg(long, help_heading = "Training")]
    pub max_steps: Option<usize>,
    /// Stop when the validation accuracy has not improved for N epochs (the best epoch's
    /// weights are kept).
    #[arg(long, value_name = "N", help_heading = "Training")]
    pub early_stopping: Option<usize>,
}

/// How a teacher's outputs enter the loss (`train --teacher`, `compare --distill-from`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct DistillArgs {
    /// Softmax temperature T of the distillation term (Hinton et al. used 20 on MNIST; higher
    /// = softer targets, more of the teacher's "dark knowledge" about the wrong classes).
    #[arg(long, value_name = "T", default_value_t = 4.0, value_parser = number, help_heading = "Distillation")]
    pub temperature: f64,
    /// Weight A of the distillation term: loss = A·T²·KL(teacher ‖ student) + (1 − A)·cross-entropy.
    #[arg(long, value_name = "A", default_value_t = 0.9, value_parser = number, help_heading = "Distillation")]
    pub distill_weight: f64,
    /// Which weights of the teacher's run teach: those of its best validation epoch, or its last.
    #[arg(
        long,
        value_enum,
        default_value = "best",
        help_heading = "Distillation"
    )]
    pub teacher_weights: TeacherWeights,
    /// Run the teacher once over the training images before the first step and reuse its
    /// outputs (faster: no teacher forward pass per step; not with --augment).
    #[arg(long, help_heading = "Distillation")]
    pub cache_teacher: bool,
}

impl DistillArgs {
    /// The clap ids of these flags.
    pub const IDS: [&'static str; 4] = [
        "temperature",
        "distill_weight",
        "teacher_weights",
        "cache_teacher",
    ];

    /// Distillation from the run in `teacher` with these settings.
    pub fn from(&self, teacher: &std::path::Path) -> Result<Distillation> {
        Ok(Distillation {
            teacher_weights: self.teacher_weights,
            temperature: self.temperature,
            distill_weight: self.distill_weight,
            cache_teacher: self.cache_teacher,
            ..Distillation::new(std::path::absolute(teacher)?)
        })
    }

    /// Refuses these flags when no teacher is named (`teacher_flag`: the flag that names one).
    pub fn check_used(given: &[String], teacher_flag: &str, has_teacher: bool) -> Result<()> {
        match given.iter().find(|id| Self::IDS.contains(&id.as_str())) {
            Some(id) if !has_teacher => anyhow::bail!(
                "{} sets how a teacher teaches; name the teacher with {teacher_flag} (or leave it out)",
                flag_name(id)
            ),
            _ => Ok(()),
        }
    }
}

/// The compute backend.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct BackendArg {
    /// flex (CPU; threads from RAYON_NUM_THREADS) or wgpu (GPU; needs the `wgpu` build feature).
    #[arg(long, value_enum, default_value = "flex")]
    pub backend: Backend,
}

/// How results are printed.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct OutputArgs {
    /// Print JSON on stdout (one object per epoch while training, then the result).
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

impl OutputArgs {
    /// The progress style the flags ask for.
    pub fn style(&self) -> sepnet_train::report::Style {
        use sepnet_train::report::Style;
        match (self.quiet, self.json) {
            (true, _) => Style::Quiet,
            (false, true) => Style::Json,
            (false, false) => Style::Human,
        }
    }
}

/// Everything `train` and `compare` need besides the model and the output folder.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelOptionsArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub optim: OptimArgs,
    #[command(flatten)]
    pub backend: BackendArg,
    #[command(flatten)]
    pub distill: DistillArgs,
}

impl TrainArgs {
    /// The run configuration for `model` with `seed`.
    pub fn config(&self, model: &str, seed: u64) -> Result<TrainConfig> {
        let dataset: DatasetKind = self.data.dataset.parse().map_err(anyhow::Error::msg)?;
        let data_dir = match &self.data.data_dir {
            Some(dir) => Some(std::path::absolute(dir)?),
            None => None,
        };
        let o = &self.optim;
        Ok(TrainConfig {
            model: model.into(),
            model_options: self.model.options(),
            dataset,
            data_dir,
            epochs: o.epochs,
            batch_size: o.batch_size,
            optimizer: o.optimizer,
            lr: o.lr,
            schedule: o.schedule,
            momentum: o.momentum,
            nesterov: o.nesterov,
            weight_decay: o.weight_decay,
            label_smoothing: o.label_smoothing,
            grad_clip: o.grad_clip,
            seed,
            validation: if self.data.validate_on_test {
                Validation::TestSplit
            } else {
                self.data.val_split
            },
            early_stopping: o.early_stopping,
            augment: self.data.augment,
            input_scaling: self.data.input_scaling,
            max_steps_per_epoch: o.max_steps,
            backend: self.backend.backend,
            distill: None,
            init_from: None,
            fake_quant: None,
        })
    }
}

/// The `config.json` key of a flag's clap id (`None`: the flag is not a training setting).
pub fn config_key(id: &str) -> Option<String> {
    Some(match id {
        "input" | "classes" | "alpha" | "rho" | "depthwise_fans" => format!("model_options.{id}"),
        "blocks" => "model_options.vgg_blocks".into(),
        "max_steps" => "max_steps_per_epoch".into(),
        "teacher" | "temperature" | "distill_weight" | "teacher_weights" | "cache_teacher" => {
            format!("distill.{id}")
        }
        "val_split" | "validate_on_test" => "validation".into(),
        "init_from" => "init_from.run".into(),
        "init_weights" => "init_from.weights".into(),
        "fake_quant_reduce_range" => "fake_quant".into(),
        "model" | "out" | "resume" | "json" | "quiet" => return None,
        other => other.into(),
    })
}

/// A `--models` list: built-in names separated by commas; specs, which contain commas,
/// separated by `;` or given by repeating the flag.
pub fn split_models(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|m| {
            let separator = if m.contains(';') || m.contains(':') {
                ';'
            } else {
                ','
            };
            m.split(separator)
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Refuses flags given on the command line that the other settings would ignore. `given` are
/// clap ids, as [`config_key`] takes them.
pub fn check_given(given: &[String], optim: &OptimArgs) -> Result<()> {
    let has = |id: &str| given.iter().any(|g| g == id);
    if has("momentum") && optim.optimizer != OptimizerKind::Sgd {
        anyhow::bail!(
            "--momentum is SGD's; --optimizer {} has none (add --optimizer sgd, or leave it out)",
            optim.optimizer.name()
        );
    }
    Ok(())
}

/// The flag a clap id stands for (`max_steps` → `--max-steps`).
pub fn flag_name(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// Refuses a run directory where a folder of another kind is asked for (`--out` of compare,
/// `--plan`): what sepnet writes there would mix with the run's own files.
pub fn refuse_run_directory(flag: &str, dir: &std::path::Path) -> Result<()> {
    if dir.join(sepnet_train::run::CONFIG).is_file() {
        anyhow::bail!(
            "{flag} {}: a run directory, not a folder for {}; choose another",
            dir.display(),
            if flag == "--plan" {
                "a sweep"
            } else {
                "a comparison's runs"
            }
        );
    }
    Ok(())
}

/// Refuses a model named twice in a `--models` list (its runs and rows would collide).
pub fn check_distinct(models: &[String]) -> Result<()> {
    for (i, model) in models.iter().enumerate() {
        if models[..i].contains(model) {
            anyhow::bail!("--models names `{model}` twice; each model once");
        }
        if let Some(other) = models[..i].iter().find(|m| sanitize(m) == sanitize(model)) {
            anyhow::bail!(
                "--models: `{other}` and `{model}` would share the run folder `{}`; rename one",
                sanitize(model)
            );
        }
    }
    Ok(())
}

/// A finite number: `nan` and `inf` are refused where clap reads the flag.
pub fn number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("`{text}` is not a finite number")),
        Err(_) => Err(format!("`{text}` is not a number")),
    }
}

/// A whole number of at least 1.
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{text}` is not a whole number of at least 1")),
    }
}

/// `HxWxC` with positive integers.
pub fn parse_input(text: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = text.split('x').collect();
    let numbers: Result<Vec<usize>, _> = parts.iter().map(|p| p.parse::<usize>()).collect();
    match numbers.as_deref() {
        Ok([h, w, c]) if *h > 0 && *w > 0 && *c > 0 => Ok([*h, *w, *c]),
        _ => Err(format!(
            "expected HxWxC with positive integers, e.g. 32x32x3; got `{text}`"
        )),
    }
}

/// A `--blocks` list: one value holding every block (clap would read a bare `Vec` as a flag
/// given several times).
#[derive(Clone, Debug, PartialEq)]
pub struct VggBlocks(pub Vec<(usize, usize)>);

/// `FILTERSxCONVS,...` with positive numbers.
pub fn parse_blocks(text: &str) -> Result<VggBlocks, String> {
    let blocks = text
        .split(',')
        .map(|block| {
            let parsed = block
                .split_once('x')
                .and_then(|(f, n)| Some((f.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
            match parsed {
                Some((f, n)) if f > 0 && n > 0 => Ok((f, n)),
                _ => Err(format!(
                    "expected FILTERSxCONVS blocks such as 64x2,128x2; got `{block}`"
                )),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(VggBlocks(blocks))
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
