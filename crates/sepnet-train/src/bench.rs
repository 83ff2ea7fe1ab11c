//! Speed measurement on synthetic batches: forward-only and full training-step (forward,
//! cross-entropy, backward, Adam update) medians after warm-up, the first step on its own
//! (kernel compilation and autotuning on a GPU), and a per-layer forward/backward profile.
//!
//! Every timed region ends with a device sync, so GPU timings cover the work itself and not
//! just its submission. The same protocol is implemented in `reference/torch_bench.py`, which
//! `reference/ab_bench.py` runs alternately with `sepnet bench` to print sepnet/PyTorch ratios.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Backend, Classifier, Network, Summary};
use serde::Serialize;

use crate::custom::DataShape;
pub use crate::profile::{LayerProfile, profile_layers};
use crate::roofline::Roofs;
use crate::step::train_step;
use crate::{TrainConfig, TrainError, optimizer};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Timed repetitions (the median and spread are over these).
    pub steps: usize,
    /// Untimed repetitions after the first step, before timing starts.
    pub warmup: usize,
    /// Seed for the weights and the synthetic batch.
    pub seed: u64,
}

/// The most timed or warm-up repetitions a bench takes (a million steps of the smallest
/// network are hours; more is a typo).
pub const MAX_REPETITIONS: usize = 1_000_000;

impl BenchConfig {
    /// Refuses settings that leave nothing to time.
    pub(crate) fn check(&self) -> Result<(), TrainError> {
        if self.batch_size == 0 || self.steps == 0 {
            return Err(TrainError::Config(
                "bench needs --batch-size and --steps of at least 1".into(),
            ));
        }
        for (flag, value) in [("--steps", self.steps), ("--warmup", self.warmup)] {
            if value > MAX_REPETITIONS {
                return Err(TrainError::Config(format!(
                    "{flag} {value}: at most {MAX_REPETITIONS} repetitions"
                )));
            }
        }
        Ok(())
    }

    /// Untimed repetitions before timing (at least one, so the first-call costs stay out).
    pub(crate) fn warmup_runs(&self) -> usize {
        self.warmup.max(1)
    }
}

/// Waits for the device to finish its queued work, so a timing covers the work itself.
pub(crate) fn sync(device: &Device) -> Result<(), TrainError> {
    device
        .sync()
        .map_err(|e| TrainError::Config(format!("the device failed: {e:?}")))
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            batch_size: 128,
            steps: 10,
            warmup: 2,
            seed: 42,
        }
    }
}

/// Median and spread of a set of timings, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Fastest repetition.
    pub min_ms: f64,
    /// Slowest repetition.
    pub max_ms: f64,
    /// 90th percentile (nearest rank): the latency nine requests in ten stay under.
    pub p90_ms: f64,
    /// 99th percentile (nearest rank); equals the maximum below 100 repetitions.
    pub p99_ms: f64,
}

impl Timing {
    /// Summarises raw timings (seconds). `None` for an empty list.
    pub fn from_seconds(seconds: &[f64]) -> Option<Timing> {
        let mut ms: Vec<f64> = seconds.iter().map(|s| s * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => ms[n / 2],
            _ => 0.5 * (ms[n / 2 - 1] + ms[n / 2]),
        };
        let percentile = |p: usize| ms[(p * n).div_ceil(100).clamp(1, n) - 1];
        Some(Timing {
            median_ms: median,
            min_ms: ms[0],
            max_ms: ms[n - 1],
            p90_ms: percentile(90),
            p99_ms: percentile(99),
        })
    }
}

/// One model's numbers; `sepnet bench --json` prints a list of these.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Model name or spec.
    pub model: String,
    /// The backend.
    pub backend: Backend,
    /// Images per batch.
    pub batch_size: usize,
    /// Parameters (as `sepnet summary`).
    pub params: u64,
    /// Multiply-accumulates of one forward pass for one image.
    pub macs: u64,
    /// Timed repetitions.
    pub steps: usize,
    /// Median forward pass (inference, no autodiff), ms.
    pub forward_ms: f64,
    /// Spread of the forward pass.
    pub forward: Timing,
    /// Median training step (forward, loss, backward, Adam update), ms.
    pub train_step_ms: f64,
    /// Spread of the training step.
    pub train_step: Timing,
    /// The very first training step of a fresh model: includes kernel compilation and
    /// autotuning on a GPU backend.
    pub first_step_ms: f64,
    /// Images per second through the forward pass.
    pub forward_images_per_s: f64,
    /// Images per second through training steps.
    pub train_images_per_s: f64,
    /// Achieved forward multiply-accumulates per second, in billions.
    pub forward_gmacs_per_s: f64,
    /// Achieved training multiply-accumulates per second, in billions, counting a step as
    /// three forward passes' worth (forward, input gradient, weight gradient).
    pub train_gmacs_per_s: f64,
    /// Per-layer profile, when asked for ([`profile_layers`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerProfile>,
    /// This machine's measured roofs, beside a per-layer profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roofs: Option<Roofs>,
}

/// Times a training step and a forward pass of `spec` on `device` (an inference device;
/// training runs on its autodiff twin).
///
/// ```no_run
/// use burn::tensor::Device;
/// use sepnet_model::{Backend, ModelOptions, resolve_model};
/// use sepnet_train::bench::{BenchConfig, bench_model};
/// let spec = resolve_model("mnist-full", &ModelOptions::default()).unwrap();
/// let result = bench_model("mnist-full", &spec, Backend::Flex, &Device::flex(), &BenchConfig::default()).unwrap();
/// println!("{:.1} ms per training step", result.train_step_ms);
/// ```
pub fn bench_model(
    name: &str,
    spec: &NetworkSpec,
    backend: Backend,
    device: &Device,
    config: &BenchConfig,
) -> Result<BenchResult, TrainError> {
    config.check()?;
    let summary = Summary::of(spec).map_err(|e| TrainError::Config(e.message))?;
    crate::memory::check_fits(&summary, config.batch_size, backend)?;
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let model = Network::new(spec, &train_device).map_err(|e| TrainError::Config(e.message))?;
    let shape = DataShape {
        input: spec.input,
        classes: spec.classes().unwrap_or(10),
    };
    let mut result = time_model(model, shape, device, config)?;
    result.model = name.to_string();
    result.backend = backend;
    result.set_macs(summary.macs);
    Ok(result)
}

/// Times a training step and a forward pass of a module of the user's own, `build` making it
/// for images and classes of `shape` on `device`'s autodiff twin. Its MACs are not counted
/// (0), nor its memory checked beforehand.
///
/// ```no_run
/// use burn::tensor::Device;
/// use sepnet_model::{Backend, Network, spec::NetworkSpec};
/// use sepnet_train::bench::{BenchConfig, bench_module};
/// use sepnet_train::custom::DataShape;
/// let spec = NetworkSpec::parse("conv:8:3:relu,gap,dense:10", [28, 28, 1]).unwrap();
/// let shape = DataShape { input: [28, 28, 1], classes: 10 };
/// let build = |device: &Device| Network::new(&spec, device).unwrap(); // or any Classifier
/// let result = bench_module("mine", build, shape, Backend::Flex, &Device::flex(), &BenchConfig::default()).unwrap();
/// println!("{:.1} ms per training step", result.train_step_ms);
/// ```
pub fn bench_module<M: Classifier>(
    name: &str,
    build: impl FnOnce(&Device) -> M,
    shape: DataShape,
    backend: Backend,
    device: &Device,
    config: &BenchConfig,
) -> Result<BenchResult, TrainError> {
    config.check()?;
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let model = sepnet_model::draw_weights_now(build(&train_device));
    let mut result = time_model(model, shape, device, config)?;
    result.model = name.to_string();
    result.backend = backend;
    Ok(result)
}

/// The timings of `model` (on `device`'s autodiff twin) with everything but its name, backend
/// and MACs filled in.
fn time_model<M: Classifier>(
    mut model: M,
    shape: DataShape,
    device: &Device,
    config: &BenchConfig,
) -> Result<BenchResult, TrainError> {
    let train_device = device.clone().autodiff();
    let (images, labels) = synthetic_batch(shape, config, &train_device);
    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    let mut optim = optimizer::build(&TrainConfig::default());
    let params = model.num_params() as u64;

    let mut train_seconds = Vec::with_capacity(config.steps);
    let mut first_step_ms = 0.0;
    for i in 0..1 + config.warmup + config.steps {
        let started = Instant::now();
        model = train_step(
            model,
            &mut optim,
            &loss_fn,
            images.clone(),
            labels.clone(),
            1e-3,
        )
        .model;
        sync(&train_device)?;
        let elapsed = started.elapsed().as_secs_f64();
        if i == 0 {
            first_step_ms = elapsed * 1e3;
        } else if i > config.warmup {
            train_seconds.push(elapsed);
        }
    }

    let inference = model.valid();
    let images = images.inner();
    let mut forward_seconds = Vec::with_capacity(config.steps);
    for i in 0..config.warmup_runs() + config.steps {
        let started = Instant::now();
        let logits = inference.forward(images.clone());
        sync(device)?;
        drop(logits);
        if i >= config.warmup_runs() {
            forward_seconds.push(started.elapsed().as_secs_f64());
        }
    }

    let forward = Timing::from_seconds(&forward_seconds).expect("steps >= 1");
    let train_step = Timing::from_seconds(&train_seconds).expect("steps >= 1");
    let batch = config.batch_size as f64;
    Ok(BenchResult {
        model: String::new(),
        backend: Backend::Flex,
        batch_size: config.batch_size,
        params,
        macs: 0,
        steps: config.steps,
        forward_ms: forward.median_ms,
        forward,
        train_step_ms: train_step.median_ms,
        train_step,
        first_step_ms,
        forward_images_per_s: batch / (forward.median_ms / 1e3),
        train_images_per_s: batch / (train_step.median_ms / 1e3),
        forward_gmacs_per_s: 0.0,
        train_gmacs_per_s: 0.0,
        layers: Vec::new(),
        roofs: None,
    })
}

impl BenchResult {
    /// Records the model's MACs per image and the rates they give.
    fn set_macs(&mut self, macs: u64) {
        let batch = self.batch_size as f64;
        self.macs = macs;
        self.forward_gmacs_per_s = macs as f64 * batch / (self.forward_ms * 1e6);
        self.train_gmacs_per_s = 3.0 * macs as f64 * batch / (self.train_step_ms * 1e6);
    }
}

/// Normal(0, 1) images and uniformly drawn labels, fixed by the seed.
pub(crate) fn synthetic_batch(
    shape: DataShape,
    config: &BenchConfig,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let [h, w, c] = shape.input;
    let classes = shape.classes.max(1);
    let images = Tensor::random(
        [config.batch_size, c, h, w],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let mut rng = sepnet_data::Rng::new(config.seed, 0);
    let labels: Vec<i64> = (0..config.batch_size)
        .map(|_| rng.below(classes) as i64)
        .collect();
    let labels = Tensor::from_data(TensorData::new(labels, [config.batch_size]), device);
    (images, labels)
}
