//! Speed measurement on synthetic batches: forward-only and full training-step (forward,
//! cross-entropy, backward, Adam update) medians after warm-up, the first step on its own
//! (kernel compilation and autotuning on a GPU), and a per-layer forward/backward profile.
//!
//! Every timed region ends with a device sync, so GPU timings cover the work itself and not
//! just its submission. The same protocol is implemented in `reference/torch_bench.py`, which
//! `reference/ab_bench.py` runs alternately with `sepnet bench` to print sepnet/PyTorch ratios.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use sepnet_model::layers::{BatchNorm, Conv2d, DepthwiseConv2d};
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Backend, Features, Layer, Network, Summary};
use serde::Serialize;

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

impl BenchConfig {
    /// Refuses settings that leave nothing to time.
    fn check(&self) -> Result<(), TrainError> {
        if self.batch_size == 0 || self.steps == 0 {
            return Err(TrainError::Config(
                "bench needs --batch-size and --steps of at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Untimed repetitions before timing (at least one, so the first-call costs stay out).
    fn warmup_runs(&self) -> usize {
        self.warmup.max(1)
    }
}

/// Waits for the device to finish its queued work, so a timing covers the work itself.
fn sync(device: &Device) -> Result<(), TrainError> {
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
        Some(Timing {
            median_ms: median,
            min_ms: ms[0],
            max_ms: ms[n - 1],
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
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let mut model = Network::new(spec, &train_device).map_err(|e| TrainError::Config(e.message))?;
    let (images, labels) = synthetic_batch(spec, config, &train_device);
    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    let mut optim = optimizer::build(&TrainConfig::default());

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
    let macs = summary.macs;
    Ok(BenchResult {
        model: name.to_string(),
        backend,
        batch_size: config.batch_size,
        params: summary.total_params,
        macs,
        steps: config.steps,
        forward_ms: forward.median_ms,
        forward,
        train_step_ms: train_step.median_ms,
        train_step,
        first_step_ms,
        forward_images_per_s: batch / (forward.median_ms / 1e3),
        train_images_per_s: batch / (train_step.median_ms / 1e3),
        forward_gmacs_per_s: macs as f64 * batch / (forward.median_ms * 1e6),
        train_gmacs_per_s: 3.0 * macs as f64 * batch / (train_step.median_ms * 1e6),
        layers: Vec::new(),
    })
}

/// Normal(0, 1) images and uniformly drawn labels, fixed by the seed.
fn synthetic_batch(
    spec: &NetworkSpec,
    config: &BenchConfig,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let [h, w, c] = spec.input;
    let classes = spec.classes().unwrap_or(10).max(1);
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

/// Forward and backward time of one layer (or one part of a separable layer).
#[derive(Clone, Debug, Serialize)]
pub struct LayerProfile {
    /// Position in the network (parts of a separable layer share it).
    pub index: usize,
    /// The layer in spec syntax; parts of a separable layer end in `/dw`, `/pw`, `/bn`.
    pub layer: String,
    /// Input shape `[batch, c, h, w]` or `[batch, n]`.
    pub input: Vec<usize>,
    /// Median forward time (autodiff recording on), ms.
    pub forward_ms: f64,
    /// Median backward time (input and weight gradients from a gradient of ones), ms.
    pub backward_ms: f64,
}

impl LayerProfile {
    /// Backward time over forward time.
    pub fn backward_ratio(&self) -> f64 {
        self.backward_ms / self.forward_ms.max(1e-9)
    }
}

/// Times every layer of `spec` on its own: each one receives the real activation the layers
/// before it produce, marked as requiring a gradient, and is timed through its forward and
/// then its backward pass. Separable layers and MobileNet blocks are split into their
/// depthwise, pointwise and BatchNorm parts so the slow convolution is visible.
pub fn profile_layers(
    spec: &NetworkSpec,
    device: &Device,
    config: &BenchConfig,
) -> Result<Vec<LayerProfile>, TrainError> {
    config.check()?;
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let model = Network::new(spec, &train_device).map_err(|e| TrainError::Config(e.message))?;
    let (images, _) = synthetic_batch(spec, config, &train_device);
    let mut rows = Vec::new();
    let mut x = Features::Spatial(images);
    for (index, (layer, layer_spec)) in model.layers.iter().zip(&spec.layers).enumerate() {
        let name = layer_spec.to_string();
        let layer_input = detached(&x);
        let parts: Vec<(String, Part)> = match layer {
            Layer::Separable(l) => vec![
                (format!("{name}/dw"), Part::Depthwise(&l.conv_dw)),
                (format!("{name}/pw"), Part::Conv(&l.conv_pw)),
            ],
            Layer::DwSep(l) => vec![
                (format!("{name}/dw"), Part::Depthwise(&l.conv_dw)),
                (format!("{name}/bn"), Part::BatchNorm(&l.bn_dw)),
                (format!("{name}/pw"), Part::Conv(&l.conv_pw)),
                (format!("{name}/bn"), Part::BatchNorm(&l.bn_pw)),
            ],
            other => vec![(name, Part::Layer(other))],
        };
        for (name, part) in parts {
            let (row, output) = time_part(index, name, &part, &x, &train_device, config)?;
            rows.push(row);
            x = output;
        }
        // A block's parts leave out its activations: the next layer gets the real output.
        if matches!(layer, Layer::DwSep(_)) {
            x = layer.forward(layer_input);
        }
    }
    Ok(rows)
}

/// A timed unit: a whole layer or one convolution / BatchNorm inside it.
enum Part<'a> {
    Layer(&'a Layer),
    Conv(&'a Conv2d),
    Depthwise(&'a DepthwiseConv2d),
    BatchNorm(&'a BatchNorm),
}

impl Part<'_> {
    fn forward(&self, x: Features) -> Features {
        match (self, x) {
            (Part::Layer(l), x) => l.forward(x),
            (Part::Conv(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Part::Depthwise(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (Part::BatchNorm(l), Features::Spatial(t)) => Features::Spatial(l.forward(t)),
            (_, _) => unreachable!("convolutions and BatchNorm parts receive spatial input"),
        }
    }
}

fn time_part(
    index: usize,
    name: String,
    part: &Part,
    input: &Features,
    device: &Device,
    config: &BenchConfig,
) -> Result<(LayerProfile, Features), TrainError> {
    let (mut forward, mut backward, mut output) = (Vec::new(), Vec::new(), None);
    for i in 0..config.warmup_runs() + config.steps {
        let x = tracked(input);
        sync(device)?;
        let started = Instant::now();
        let y = part.forward(x);
        sync(device)?;
        let forwarded = Instant::now();
        let _grads = match &y {
            Features::Spatial(t) => t.backward(),
            Features::Flat(t) => t.backward(),
        };
        sync(device)?;
        if i >= config.warmup_runs() {
            forward.push((forwarded - started).as_secs_f64());
            backward.push(forwarded.elapsed().as_secs_f64());
        }
        output = Some(y);
    }
    let output = detached(&output.expect("at least one run"));
    let input_dims = match input {
        Features::Spatial(t) => t.dims().to_vec(),
        Features::Flat(t) => t.dims().to_vec(),
    };
    let row = LayerProfile {
        index,
        layer: name,
        input: input_dims,
        forward_ms: Timing::from_seconds(&forward)
            .expect("steps >= 1")
            .median_ms,
        backward_ms: Timing::from_seconds(&backward)
            .expect("steps >= 1")
            .median_ms,
    };
    Ok((row, output))
}

/// A copy of `x` that starts a new graph and asks for its gradient (so the input gradient is
/// part of the backward time, as it is inside a network).
fn tracked(x: &Features) -> Features {
    match x {
        Features::Spatial(t) => Features::Spatial(t.clone().detach().require_grad()),
        Features::Flat(t) => Features::Flat(t.clone().detach().require_grad()),
    }
}

fn detached(x: &Features) -> Features {
    match x {
        Features::Spatial(t) => Features::Spatial(t.clone().detach()),
        Features::Flat(t) => Features::Flat(t.clone().detach()),
    }
}
