//! Per-layer profile: every layer (in the form the network runs it; separable ones in NCHW
//! split into their depthwise, pointwise and BatchNorm parts) timed on its own through forward
//! and backward, with the work it does
//! (FLOP), the bytes it must move at least, and so its arithmetic intensity: the roofline
//! view ([`Roofs`]) that tells a memory-bound depthwise layer from a compute-bound
//! convolution, and why 8× fewer multiply-adds buy only 2–3× less time.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use sepnet_model::layers::{BatchNorm, Conv2d, DepthwiseConv2d};
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Features, Flow, Layer, Network, Summary};
use serde::Serialize;

use crate::TrainError;
use crate::bench::{BenchConfig, Timing, sync, synthetic_batch};
use crate::roofline::Roofs;

/// Forward and backward time of one layer (or one part of a separable layer), and its work.
#[derive(Clone, Debug, Serialize)]
pub struct LayerProfile {
    /// Position in the network (parts of a separable layer share it).
    pub index: usize,
    /// The layer in spec syntax: layers the network runs as one joined by `,`, ` [blocked]`
    /// after those it runs in the blocked layout, and parts of a separable layer in NCHW
    /// ending in `/dw`, `/pw`, `/bn`.
    pub layer: String,
    /// Input shape `[batch, c, h, w]` or `[batch, n]`.
    pub input: Vec<usize>,
    /// Median forward time (autodiff recording on), ms.
    pub forward_ms: f64,
    /// Median backward time (input and weight gradients from a gradient of ones), ms.
    pub backward_ms: f64,
    /// Floating-point operations of the forward pass over the batch (a multiply-add is two).
    /// The backward pass does twice this: the input gradient and the weight gradient.
    pub forward_flop: u64,
    /// Bytes the forward pass must move at least: read input and weights, write output.
    pub forward_bytes: u64,
    /// Bytes the backward pass must move at least: read input, output gradient and weights,
    /// write input gradient and weight gradient.
    pub backward_bytes: u64,
}

impl LayerProfile {
    /// Backward time over forward time.
    pub fn backward_ratio(&self) -> f64 {
        self.backward_ms / self.forward_ms.max(1e-9)
    }

    /// Achieved forward GFLOP/s.
    pub fn forward_gflops(&self) -> f64 {
        self.forward_flop as f64 / (self.forward_ms.max(1e-9) * 1e6)
    }

    /// Achieved backward GFLOP/s.
    pub fn backward_gflops(&self) -> f64 {
        2.0 * self.forward_flop as f64 / (self.backward_ms.max(1e-9) * 1e6)
    }

    /// Forward arithmetic intensity, FLOP per byte.
    pub fn intensity(&self) -> f64 {
        self.forward_flop as f64 / self.forward_bytes.max(1) as f64
    }

    /// Forward throughput as a percentage of what the roofs allow at this intensity: near
    /// 100 the kernel is as fast as this machine permits, whichever roof binds it.
    pub fn percent_of_roof(&self, roofs: &Roofs) -> f64 {
        100.0 * self.forward_gflops() / roofs.attainable_gflops(self.intensity()).max(1e-9)
    }
}

/// Times every layer of `spec` on its own, in the form [`Network::forward`] runs it ([`Flow`]):
/// each receives the real activation the layers before it produce, marked as requiring a
/// gradient, and is timed through its forward and then its backward pass. Layers in a blocked
/// run are timed in the blocked layout (marked `[blocked]`; the conversions into and out of
/// a run count in its first layer and the layer after it), layers that run as one are timed
/// as one (`bn,relu6`), and separable layers and MobileNet blocks in NCHW are split into their
/// depthwise, pointwise and BatchNorm parts so the slow convolution is visible.
pub fn profile_layers(
    spec: &NetworkSpec,
    device: &Device,
    config: &BenchConfig,
) -> Result<Vec<LayerProfile>, TrainError> {
    config.check()?;
    let summary = Summary::of(spec).map_err(|e| TrainError::Config(e.message))?;
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let model = Network::new(spec, &train_device).map_err(|e| TrainError::Config(e.message))?;
    let shape = crate::custom::DataShape {
        input: spec.input,
        classes: spec.classes().unwrap_or(10),
    };
    let (images, _) = synthetic_batch(shape, config, &train_device);
    let (mut rows, mut flow, mut index) = (Vec::new(), Flow::new(images), 0);
    while index < model.layers.len() {
        let layers = &model.layers[index..];
        let timed = time_flow(layers, &flow, &train_device, config)?;
        let names: Vec<String> = spec.layers[index..index + timed.taken]
            .iter()
            .map(|l| l.to_string())
            .collect();
        let parts = match (timed.taken, flow.is_blocked() || timed.output.is_blocked()) {
            (1, false) => parts(&layers[0], &names[0]),
            _ => None,
        };
        if let Some(parts) = parts {
            let x = flow.clone().into_features();
            rows.extend(profile_parts(index, parts, x, &train_device, config)?);
        } else {
            let per_image: u64 = summary.layers[index..index + timed.taken]
                .iter()
                .map(|l| l.macs)
                .sum();
            let macs = per_image * flow.dims()[0] as u64;
            let params = layers[..timed.taken].iter().map(|l| l.num_params()).sum();
            let mut name = names.join(",");
            if timed.output.is_blocked() {
                name.push_str(" [blocked]");
            }
            let work = Work {
                macs,
                params,
                input: flow.dims(),
                output: timed.output.dims(),
            };
            rows.push(work.row(index, name, &timed.forward, &timed.backward));
        }
        (flow, index) = (detached(&timed.output), index + timed.taken);
    }
    Ok(rows)
}

/// A separable layer's or MobileNet block's parts, named after `name`; `None` for other layers.
fn parts<'a>(layer: &'a Layer, name: &str) -> Option<Vec<(String, Part<'a>)>> {
    match layer {
        Layer::Separable(l) => Some(vec![
            (format!("{name}/dw"), Part::Depthwise(&l.conv_dw)),
            (format!("{name}/pw"), Part::Conv(&l.conv_pw)),
        ]),
        Layer::DwSep(l) => Some(vec![
            (format!("{name}/dw"), Part::Depthwise(&l.conv_dw)),
            (format!("{name}/bn"), Part::BatchNorm(&l.bn_dw)),
            (format!("{name}/pw"), Part::Conv(&l.conv_pw)),
            (format!("{name}/bn"), Part::BatchNorm(&l.bn_pw)),
        ]),
        _ => None,
    }
}

/// Each part of one layer timed in turn, each on the output of the part before it.
fn profile_parts(
    index: usize,
    parts: Vec<(String, Part)>,
    mut x: Features,
    device: &Device,
    config: &BenchConfig,
) -> Result<Vec<LayerProfile>, TrainError> {
    let mut rows = Vec::new();
    for (name, part) in parts {
        let timed = time_part(&part, &x, device, config)?;
        let output = timed.output.clone().into_features();
        let work = Work {
            macs: part.macs(&output),
            params: part.params(),
            input: dims(&x),
            output: dims(&output),
        };
        rows.push(work.row(index, name, &timed.forward, &timed.backward));
        x = output;
    }
    Ok(rows)
}

/// A timed part of a layer: one convolution or BatchNorm inside it.
enum Part<'a> {
    Conv(&'a Conv2d),
    Depthwise(&'a DepthwiseConv2d),
    BatchNorm(&'a BatchNorm),
}

impl Part<'_> {
    fn forward(&self, x: Features) -> Features {
        let Features::Spatial(t) = x else {
            unreachable!("convolutions and BatchNorm parts receive spatial input")
        };
        Features::Spatial(match self {
            Part::Conv(l) => l.forward(t),
            Part::Depthwise(l) => l.forward(t),
            Part::BatchNorm(l) => l.forward(t),
        })
    }

    fn params(&self) -> usize {
        match self {
            Part::Conv(l) => l.num_params(),
            Part::Depthwise(l) => l.num_params(),
            Part::BatchNorm(l) => l.num_params(),
        }
    }

    /// Multiply-adds over the batch: a convolution does `kernel taps × input channels per
    /// group` of them per output element.
    fn macs(&self, output: &Features) -> u64 {
        let per_output = |weight: [usize; 4]| (weight[1] * weight[2] * weight[3]) as u64;
        let outputs = dims(output).iter().product::<usize>() as u64;
        match self {
            Part::Conv(l) => outputs * per_output(l.weight.dims()),
            Part::Depthwise(l) => outputs * per_output(l.weight.dims()),
            Part::BatchNorm(_) => 0,
        }
    }
}

/// A timing's runs and the output it produced (the next layer's input), with how many
/// layers it took.
struct Timed {
    forward: Vec<f64>,
    backward: Vec<f64>,
    output: Flow,
    taken: usize,
}

/// What a timed unit computes: multiply-adds over the batch, parameters, and its input and
/// output dims.
struct Work {
    macs: u64,
    params: usize,
    input: Vec<usize>,
    output: Vec<usize>,
}

impl Work {
    fn row(&self, index: usize, layer: String, forward: &[f64], backward: &[f64]) -> LayerProfile {
        let inputs = self.input.iter().product::<usize>() as u64;
        let outputs = self.output.iter().product::<usize>() as u64;
        let params = self.params as u64;
        let median = |s: &[f64]| Timing::from_seconds(s).expect("steps >= 1").median_ms;
        LayerProfile {
            index,
            layer,
            forward_ms: median(forward),
            backward_ms: median(backward),
            forward_flop: 2 * self.macs,
            forward_bytes: 4 * (inputs + outputs + params),
            backward_bytes: 4 * (2 * inputs + outputs + 2 * params),
            input: self.input.clone(),
        }
    }
}

/// The layers at the head of `layers` that the network runs as one step on `input`, timed.
fn time_flow(
    layers: &[Layer],
    input: &Flow,
    device: &Device,
    config: &BenchConfig,
) -> Result<Timed, TrainError> {
    time_runs(device, config, input, |x| x.through(layers))
}

/// One part of a layer on NCHW `input`, timed.
fn time_part(
    part: &Part,
    input: &Features,
    device: &Device,
    config: &BenchConfig,
) -> Result<Timed, TrainError> {
    let input = Flow::Plain(input.clone());
    time_runs(device, config, &input, |x| {
        (Flow::Plain(part.forward(x.into_features())), 1)
    })
}

/// `step` timed through its forward pass and the backward pass from its output, warm-up runs
/// first, each on a fresh copy of `input` that asks for its gradient.
fn time_runs(
    device: &Device,
    config: &BenchConfig,
    input: &Flow,
    step: impl Fn(Flow) -> (Flow, usize),
) -> Result<Timed, TrainError> {
    let (mut forward, mut backward, mut last) = (Vec::new(), Vec::new(), None);
    for i in 0..config.warmup_runs() + config.steps {
        let x = tracked(input);
        sync(device)?;
        let started = Instant::now();
        let (y, taken) = step(x);
        sync(device)?;
        let forwarded = Instant::now();
        y.backward();
        sync(device)?;
        if i >= config.warmup_runs() {
            forward.push((forwarded - started).as_secs_f64());
            backward.push(forwarded.elapsed().as_secs_f64());
        }
        last = Some((y, taken));
    }
    let (output, taken) = last.expect("at least one run");
    Ok(Timed {
        forward,
        backward,
        output: detached(&output),
        taken,
    })
}

fn dims(x: &Features) -> Vec<usize> {
    match x {
        Features::Spatial(t) => t.dims().to_vec(),
        Features::Flat(t) => t.dims().to_vec(),
    }
}

/// A copy of `x` that starts a new graph and asks for its gradient (so the input gradient is
/// part of the backward time, as it is inside a network).
fn tracked(x: &Flow) -> Flow {
    x.clone()
        .map(|t| t.detach().require_grad(), |t| t.detach().require_grad())
}

fn detached(x: &Flow) -> Flow {
    x.clone().map(|t| t.detach(), |t| t.detach())
}
