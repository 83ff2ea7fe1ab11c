//! Per-layer profile: every layer (separable ones split into their depthwise, pointwise and
//! BatchNorm parts) timed on its own through forward and backward, with the work it does
//! (FLOP), the bytes it must move at least, and so its arithmetic intensity: the roofline
//! view ([`Roofs`]) that tells a memory-bound depthwise layer from a compute-bound
//! convolution, and why 8× fewer multiply-adds buy only 2–3× less time.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use sepnet_model::layers::{BatchNorm, Conv2d, DepthwiseConv2d};
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Features, Layer, Network, Summary};
use serde::Serialize;

use crate::TrainError;
use crate::bench::{BenchConfig, Timing, sync, synthetic_batch};
use crate::roofline::Roofs;

/// Forward and backward time of one layer (or one part of a separable layer), and its work.
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
    let summary = Summary::of(spec).map_err(|e| TrainError::Config(e.message))?;
    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let model = Network::new(spec, &train_device).map_err(|e| TrainError::Config(e.message))?;
    let shape = crate::custom::DataShape {
        input: spec.input,
        classes: spec.classes().unwrap_or(10),
    };
    let (images, _) = synthetic_batch(shape, config, &train_device);
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
        let layer_macs = summary.layers.get(index).map_or(0, |l| l.macs);
        for (name, part) in parts {
            let timed = time_part(&part, &x, &train_device, config)?;
            rows.push(timed.row(index, name, &part, layer_macs, &x));
            x = timed.output;
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

    fn params(&self) -> usize {
        match self {
            Part::Layer(l) => l.num_params(),
            Part::Conv(l) => l.num_params(),
            Part::Depthwise(l) => l.num_params(),
            Part::BatchNorm(l) => l.num_params(),
        }
    }

    /// Multiply-adds over the batch: a convolution does `kernel taps × input channels per
    /// group` of them per output element; a whole layer's count comes from the summary.
    fn macs(&self, layer_macs: u64, batch: usize, output: &Features) -> u64 {
        let per_output = |weight: [usize; 4]| weight[1] * weight[2] * weight[3];
        let outputs = elements(output) as u64;
        match self {
            Part::Layer(_) => layer_macs * batch as u64,
            Part::Conv(l) => outputs * per_output(l.weight.dims()) as u64,
            Part::Depthwise(l) => outputs * per_output(l.weight.dims()) as u64,
            Part::BatchNorm(_) => 0,
        }
    }
}

/// A part's timings and the output it produced (the next part's input).
struct Timed {
    forward: Vec<f64>,
    backward: Vec<f64>,
    output: Features,
}

impl Timed {
    fn row(
        &self,
        index: usize,
        layer: String,
        part: &Part,
        layer_macs: u64,
        input: &Features,
    ) -> LayerProfile {
        let input_dims = dims(input);
        let (inputs, outputs) = (elements(input) as u64, elements(&self.output) as u64);
        let params = part.params() as u64;
        let median = |s: &[f64]| Timing::from_seconds(s).expect("steps >= 1").median_ms;
        LayerProfile {
            index,
            layer,
            forward_ms: median(&self.forward),
            backward_ms: median(&self.backward),
            forward_flop: 2 * part.macs(layer_macs, input_dims[0], &self.output),
            forward_bytes: 4 * (inputs + outputs + params),
            backward_bytes: 4 * (2 * inputs + outputs + 2 * params),
            input: input_dims,
        }
    }
}

fn time_part(
    part: &Part,
    input: &Features,
    device: &Device,
    config: &BenchConfig,
) -> Result<Timed, TrainError> {
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
    Ok(Timed {
        forward,
        backward,
        output,
    })
}

fn dims(x: &Features) -> Vec<usize> {
    match x {
        Features::Spatial(t) => t.dims().to_vec(),
        Features::Flat(t) => t.dims().to_vec(),
    }
}

fn elements(x: &Features) -> usize {
    dims(x).iter().product()
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
