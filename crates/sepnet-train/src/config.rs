//! Everything that defines a training run, typed; written to `config.json` in the run directory.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use sepnet_data::{DatasetKind, InputScaling};
use sepnet_model::{Backend, ModelOptions};
use serde::{Deserialize, Serialize};

/// Which optimizer updates the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent (with `momentum`, optionally Nesterov).
    Sgd,
    /// Adam (Kingma & Ba); `weight_decay` is L2 added to the gradient.
    Adam,
    /// AdamW: decoupled weight decay.
    #[cfg_attr(feature = "cli", value(name = "adamw"))]
    AdamW,
}

impl OptimizerKind {
    /// The name `--optimizer` takes.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

/// How the learning rate moves over the run.
///
/// ```
/// use sepnet_train::Schedule;
/// assert_eq!("onecycle:0.2".parse(), Ok(Schedule::OneCycle { warmup: 0.2 }));
/// assert!("onecycle:nan".parse::<Schedule>().unwrap_err().contains("warm-up"));
/// assert!((Schedule::Cosine.lr(0.1, 50, 100, 10) - 0.05).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor applied at each decay.
        gamma: f64,
    },
    /// Cosine decay from the base rate to 0 over the run.
    Cosine,
    /// Linear warm-up over `warmup` of the steps, then cosine decay (one-cycle).
    OneCycle {
        /// Fraction of all steps spent warming up.
        warmup: f64,
    },
    /// Keras's `ReduceLROnPlateau`: multiply the rate by `factor` whenever the validation loss
    /// has not improved for `patience` epochs.
    Plateau {
        /// Factor applied at each reduction.
        factor: f64,
        /// Epochs without improvement before a reduction.
        patience: usize,
    },
}

impl Schedule {
    /// The base rate after the plateau reductions that the validation losses of the epochs
    /// so far call for (the base itself for other schedules). A function of the history
    /// alone, so a resumed run follows the same rates.
    ///
    /// ```
    /// use sepnet_train::Schedule;
    /// let plateau = Schedule::Plateau { factor: 0.5, patience: 2 };
    /// // The loss stops improving after epoch 2; two epochs later the rate halves.
    /// assert_eq!(plateau.after_plateaus(0.1, &[1.0, 0.8, 0.9, 0.85]), 0.05);
    /// assert_eq!(plateau.after_plateaus(0.1, &[1.0, 0.8, 0.9]), 0.1);
    /// ```
    pub fn after_plateaus(&self, base: f64, val_losses: &[f64]) -> f64 {
        let Schedule::Plateau { factor, patience } = *self else {
            return base;
        };
        let (mut best, mut since, mut lr) = (f64::INFINITY, 0, base);
        for &loss in val_losses {
            if loss < best {
                (best, since) = (loss, 0);
            } else {
                since += 1;
                if since >= patience {
                    (lr, since) = (lr * factor, 0);
                }
            }
        }
        lr
    }

    /// The learning rate at `step` of `total` steps (`steps_per_epoch` to locate epochs).
    pub fn lr(&self, base: f64, step: usize, total: usize, steps_per_epoch: usize) -> f64 {
        let progress = step as f64 / total.max(1) as f64;
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => {
                base * gamma.powi((step / (steps_per_epoch * every.max(1)).max(1)) as i32)
            }
            Schedule::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            Schedule::Plateau { .. } => base,
            Schedule::OneCycle { warmup } => {
                if progress < warmup {
                    base * (step + 1) as f64 / (warmup * total as f64).max(1.0)
                } else {
                    let rest = (progress - warmup) / (1.0 - warmup).max(1e-9);
                    base * 0.5 * (1.0 + (std::f64::consts::PI * rest).cos())
                }
            }
        }
    }
}

impl FromStr for Schedule {
    type Err = String;

    /// `constant`, `cosine`, `step:EPOCHS:GAMMA` or `onecycle[:WARMUP]`.
    fn from_str(text: &str) -> Result<Self, String> {
        let number = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| format!("`{s}` in schedule `{text}` is not a number"))
        };
        let schedule = match text.split(':').collect::<Vec<_>>().as_slice() {
            ["constant"] => Schedule::Constant,
            ["cosine"] => Schedule::Cosine,
            ["onecycle"] => Schedule::OneCycle { warmup: 0.1 },
            ["onecycle", w] => Schedule::OneCycle { warmup: number(w)? },
            ["plateau"] => Schedule::Plateau {
                factor: 0.1,
                patience: 10,
            },
            ["plateau", factor, patience] => Schedule::Plateau {
                factor: number(factor)?,
                patience: patience.parse().map_err(|_| {
                    format!("plateau schedule `{text}`: PATIENCE must be a whole number of epochs")
                })?,
            },
            ["step", every, gamma] => Schedule::Step {
                every: every.parse().map_err(|_| {
                    format!("step schedule `{text}`: EPOCHS must be a positive whole number")
                })?,
                gamma: number(gamma)?,
            },
            _ => {
                return Err(format!(
                    "unknown schedule `{text}`; expected constant, cosine, step:EPOCHS:GAMMA, onecycle[:WARMUP] or plateau[:FACTOR:PATIENCE]"
                ));
            }
        };
        schedule.check().map(|()| schedule)
    }
}

impl Schedule {
    /// Refuses parameters outside their range (NaN included).
    fn check(&self) -> Result<(), String> {
        match *self {
            Schedule::Step { every, gamma } if every == 0 || !(gamma > 0.0 && gamma <= 1.0) => {
                Err(format!(
                    "step schedule: EPOCHS must be at least 1 and GAMMA in (0, 1], got {every} and {gamma}"
                ))
            }
            Schedule::OneCycle { warmup } if !(0.0..1.0).contains(&warmup) => Err(format!(
                "onecycle schedule: the warm-up fraction must be in [0, 1), got {warmup}"
            )),
            Schedule::Plateau { factor, patience }
                if !(factor > 0.0 && factor < 1.0) || patience == 0 =>
            {
                Err(format!(
                    "plateau schedule: FACTOR must be in (0, 1) and PATIENCE at least 1, got {factor} and {patience}"
                ))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Cosine => write!(f, "cosine"),
            Schedule::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
            Schedule::OneCycle { warmup } => write!(f, "onecycle:{warmup}"),
            Schedule::Plateau { factor, patience } => write!(f, "plateau:{factor}:{patience}"),
        }
    }
}

/// What a run validates on: the best epoch is chosen on it, and early stopping and the
/// plateau schedule watch it.
///
/// ```
/// use sepnet_train::Validation;
/// assert_eq!("10%".parse(), Ok(Validation::Fraction(0.1)));
/// assert_eq!("5000".parse(), Ok(Validation::Images(5000)));
/// assert_eq!(Validation::Fraction(0.1).images(60_000), Some(6_000));
/// assert_eq!(Validation::TestSplit.images(60_000), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validation {
    /// A seeded hold-out of this fraction of the training images (the default: 10%).
    Fraction(f64),
    /// A seeded hold-out of this many training images.
    Images(usize),
    /// The test split, as the published Keras experiments did (`--validate-on-test`): the
    /// "best epoch" is then chosen on the test set.
    TestSplit,
}

impl Validation {
    /// Training images held out from `train` of them (`None`: validate on the test split).
    pub fn images(&self, train: usize) -> Option<usize> {
        match *self {
            Validation::Fraction(f) => Some(((f * train as f64).round() as usize).max(1)),
            Validation::Images(n) => Some(n),
            Validation::TestSplit => None,
        }
    }

    fn check(&self) -> Result<(), String> {
        match *self {
            Validation::Fraction(f) if !(f > 0.0 && f < 1.0) => Err(format!(
                "--val-split must be a fraction in (0%, 100%) or a number of images, got {}%",
                show(100.0 * f)
            )),
            Validation::Images(0) => Err("--val-split must hold out at least 1 image".into()),
            _ => Ok(()),
        }
    }
}

impl FromStr for Validation {
    type Err = String;

    /// `10%` (a fraction of the training images) or `5000` (a number of them).
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "--val-split takes a percentage such as 10% or a number of images, got `{text}`"
            )
        };
        let validation = match text.strip_suffix('%') {
            Some(percent) => {
                let p: f64 = percent.trim().parse().map_err(|_| bad())?;
                Validation::Fraction(p / 100.0)
            }
            None => Validation::Images(text.trim().parse().map_err(|_| bad())?),
        };
        validation.check().map(|()| validation)
    }
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validation::Fraction(p) => write!(f, "{}% of the training images held out", 100.0 * p),
            Validation::Images(n) => write!(f, "{n} training images held out"),
            Validation::TestSplit => write!(f, "the test split (the published protocol)"),
        }
    }
}

/// A complete, reproducible description of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Built-in model name or architecture spec, as the user gave it.
    pub model: String,
    /// Options shaping the model (`--alpha`, `--rho`, `--blocks`, `--classes`, `--input`,
    /// `--depthwise-fans`).
    pub model_options: ModelOptions,
    /// The dataset (an image folder by its absolute path).
    pub dataset: DatasetKind,
    /// Folder holding the dataset files, absolute (else the usual search order).
    pub data_dir: Option<PathBuf>,
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// SGD momentum (0 = plain SGD).
    pub momentum: f64,
    /// Nesterov momentum for SGD.
    pub nesterov: bool,
    /// Weight decay (L2 for SGD/Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// Cross-entropy label smoothing in [0, 1).
    pub label_smoothing: f64,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Seeds initialisation, shuffling, augmentation and dropout.
    pub seed: u64,
    /// What the best epoch is chosen on.
    pub validation: Validation,
    /// Stop when validation accuracy has not improved for this many epochs.
    pub early_stopping: Option<usize>,
    /// Random crop (4-pixel padding) and horizontal flip.
    pub augment: bool,
    /// How pixels are scaled before the network sees them.
    pub input_scaling: InputScaling,
    /// Stop each epoch after this many steps (for smoke tests); `None` = whole epoch.
    pub max_steps_per_epoch: Option<usize>,
    /// The compute backend.
    pub backend: Backend,
    /// Learn from a trained teacher's softened outputs as well as from the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<Distillation>,
    /// Start from the weights of a finished run of the same network (fine-tuning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<InitFrom>,
    /// Quantization-aware training: every forward pass runs on the weights int8 will hold in
    /// this scheme ([`sepnet_model::FakeQuant`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake_quant: Option<sepnet_quant::Scheme>,
}

/// The finished run a fine-tuned run starts from.
///
/// ```
/// use sepnet_train::{InitFrom, TeacherWeights};
/// let init = InitFrom { run: "/runs/mobilenet".into(), weights: TeacherWeights::Best };
/// assert_eq!(init.weights, TeacherWeights::Best);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitFrom {
    /// Its run directory, absolute.
    pub run: PathBuf,
    /// Which of its weights to start from.
    pub weights: TeacherWeights,
}

/// Which weights of a finished run are used: to teach, or to start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum TeacherWeights {
    /// The epoch with the best validation accuracy.
    Best,
    /// After the last step.
    Last,
}

/// Knowledge distillation (Hinton, Vinyals & Dean, arXiv:1503.02531): the loss is
/// `distill_weight · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − distill_weight) ·
/// cross-entropy`, the teacher run in inference mode on exactly the batches the student sees.
///
/// ```
/// use sepnet_train::Distillation;
/// let kd = Distillation::new("/runs/mnist-full".into());
/// assert_eq!((kd.temperature, kd.distill_weight), (4.0, 0.9));
/// assert!(Distillation { temperature: 0.0, ..kd }.check().unwrap_err().contains("--temperature"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distillation {
    /// The teacher's run directory, absolute.
    pub teacher: PathBuf,
    /// Which of its weights teach.
    pub teacher_weights: TeacherWeights,
    /// Softmax temperature T of both networks' outputs in the distillation term.
    pub temperature: f64,
    /// Weight A of the distillation term; the labels' cross-entropy gets 1 − A.
    pub distill_weight: f64,
    /// Compute the teacher's logits of every training image once, before the first step,
    /// instead of on every batch (un-augmented data only: augmentation changes the images).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache_teacher: bool,
}

impl Distillation {
    /// Distillation from the run in `teacher` with the defaults: its best weights, T = 4,
    /// A = 0.9 — the plain-distillation baseline of CRD/RepDistiller (arXiv:1910.10699),
    /// whose CIFAR figures `docs/results.md` sets beside sepnet's.
    pub fn new(teacher: PathBuf) -> Self {
        Distillation {
            teacher,
            teacher_weights: TeacherWeights::Best,
            temperature: 4.0,
            distill_weight: 0.9,
            cache_teacher: false,
        }
    }

    /// Refuses a temperature or weight outside its range (NaN included).
    pub fn check(&self) -> Result<(), String> {
        let t = self.temperature;
        if !(t > 0.0 && t <= 1000.0) {
            return Err(format!(
                "--temperature must be in (0, 1000], got {}",
                show(t)
            ));
        }
        let a = self.distill_weight;
        if !(0.0..=1.0).contains(&a) {
            return Err(format!(
                "--distill-weight must be in [0, 1], got {}",
                show(a)
            ));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: "mnist-full".into(),
            model_options: ModelOptions::default(),
            dataset: DatasetKind::Mnist,
            data_dir: None,
            epochs: 5,
            batch_size: 128,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            schedule: Schedule::Constant,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            label_smoothing: 0.0,
            grad_clip: None,
            seed: 42,
            validation: Validation::Fraction(0.1),
            early_stopping: None,
            augment: false,
            input_scaling: InputScaling::Standardize,
            max_steps_per_epoch: None,
            backend: Backend::Flex,
            distill: None,
            init_from: None,
            fake_quant: None,
        }
    }
}

impl TrainConfig {
    /// Checks every number before any work starts. Each test is written so that NaN fails it.
    ///
    /// ```
    /// use sepnet_train::TrainConfig;
    /// let bad = TrainConfig { weight_decay: f64::NAN, ..Default::default() };
    /// assert_eq!(bad.validate().unwrap_err(), "--weight-decay must be a number ≥ 0, got NaN");
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        let at_least_one = |flag: &str, v: usize| {
            (v >= 1)
                .then_some(())
                .ok_or(format!("{flag} must be at least 1"))
        };
        at_least_one("--epochs", self.epochs)?;
        at_least_one("--batch-size", self.batch_size)?;
        if let Some(steps) = self.max_steps_per_epoch {
            at_least_one("--max-steps", steps)?;
        }
        let check = |flag: &str, v: f64, ok: bool, range: &str| {
            ok.then_some(())
                .ok_or(format!("{flag} must be {range}, got {}", show(v)))
        };
        let lr = self.lr;
        check("--lr", lr, lr > 0.0 && lr.is_finite(), "a number > 0")?;
        let m = self.momentum;
        check("--momentum", m, (0.0..1.0).contains(&m), "in [0, 1)")?;
        let wd = self.weight_decay;
        check(
            "--weight-decay",
            wd,
            wd >= 0.0 && wd.is_finite(),
            "a number ≥ 0",
        )?;
        let ls = self.label_smoothing;
        check(
            "--label-smoothing",
            ls,
            (0.0..1.0).contains(&ls),
            "in [0, 1)",
        )?;
        if let Some(c) = self.grad_clip {
            check("--grad-clip", c, c > 0.0 && c.is_finite(), "a number > 0")?;
        }
        if self.model_options.rho != 1.0 {
            return Err(format!(
                "--rho {} does not apply to training: the dataset's images set the input size \
                 (--rho is for summary and bench)",
                self.model_options.rho
            ));
        }
        if self.nesterov && self.optimizer != OptimizerKind::Sgd {
            return Err(format!(
                "--nesterov is SGD's momentum; --optimizer {} has none (add --optimizer sgd)",
                self.optimizer.name()
            ));
        }
        if self.early_stopping == Some(0) {
            return Err("--early-stopping must be at least 1 epoch".into());
        }
        self.validation.check()?;
        if let Some(distill) = &self.distill {
            distill.check()?;
            if distill.cache_teacher && self.augment {
                return Err(
                    "--cache-teacher needs un-augmented data: with --augment the teacher \
                            sees a new crop of each image every epoch (leave one of them out)"
                        .into(),
                );
            }
        }
        self.schedule
            .check()
            .map_err(|e| format!("--schedule: {e}"))
    }
}

/// A number as a user typed it (`NaN`, `inf`, `0.5`).
fn show(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        v.to_string()
    }
}
