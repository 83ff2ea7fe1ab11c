//! Post-training int8 quantization of a run (`sepnet quantize`): BatchNorm folded, ranges
//! from seeded calibration images of the training split, the test split evaluated in int8
//! arithmetic, the model written as ONNX QDQ with a report of what was lost and saved.

use burn::tensor::Device;
use sepnet_data::Rng;
use sepnet_data::{BatchConfig, Batches, Dataset, Split};
use sepnet_model::export;
use sepnet_quant::{self as quant, Granularity, Program, Quantized, RangeMethod, Scheme};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::evaluate::{Evaluation, evaluate};
use crate::export::Sample;
use crate::record::{Run, Weights};

/// Images per int8 forward pass.
const BATCH: usize = 256;
/// The random stream calibration images are drawn from (apart from training's streams).
const CALIBRATION_STREAM: u64 = 0x1_0008;

/// What `sepnet quantize` is asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantizeOptions {
    /// One weight scale per tensor or per output channel.
    pub granularity: Granularity,
    /// 7-bit weights, for ONNX Runtime on x86 CPUs without VNNI ([`Quantized::new`]).
    pub reduce_range: bool,
    /// Calibration images, drawn from the training split.
    pub calibration: usize,
    /// How observed values become ranges.
    pub method: RangeMethod,
    /// Which weights of the run.
    pub weights: Weights,
    /// Seeds the choice of calibration images.
    pub seed: u64,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            granularity: Granularity::PerChannel,
            reduce_range: false,
            calibration: 512,
            method: RangeMethod::MinMax,
            weights: Weights::Best,
            seed: 0,
        }
    }
}

/// How a network does on the test split, float or int8.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Fraction of test images classified correctly.
    pub test_accuracy: f64,
    /// Within each true class.
    pub per_class_accuracy: Vec<f64>,
    /// The ONNX file's size in bytes.
    pub onnx_bytes: usize,
}

/// One tensor's int8 quantization, as calibrated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorRange {
    /// Its name in the ONNX graph (`images`, `layers.3.relu12`).
    pub tensor: String,
    /// The range its values were given (it always holds 0).
    pub min: f32,
    /// See `min`.
    pub max: f32,
    /// int8 step.
    pub scale: f32,
    /// int8 value of 0.
    pub zero_point: i8,
}

/// `quantization.json`: what int8 kept and saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizationReport {
    /// per-tensor or per-channel weight scales.
    pub granularity: Granularity,
    /// Whether the weights have 7 bits ([−64, 64]) instead of 8.
    pub reduce_range: bool,
    /// `best` or `last`.
    pub weights: String,
    /// Calibration images from the training split.
    pub calibration_images: usize,
    /// `minmax` or `percentile` (0.01% cut from each end).
    pub calibration_method: String,
    /// The seed that chose them.
    pub calibration_seed: u64,
    /// The float network (burn) on the test split.
    pub float: Accuracy,
    /// The int8 network (sepnet's integer arithmetic) on the test split.
    pub int8: Accuracy,
    /// Fraction of test images on which float and int8 predict the same class.
    pub agreement: f64,
    /// BatchNorms folded into the convolution before them.
    pub folded_batch_norms: usize,
    /// Each activation tensor's range and quantization.
    pub tensors: Vec<TensorRange>,
}

/// A quantized run: its QDQ model, its report and its int8 network.
pub struct QuantizedRun {
    /// The ONNX QDQ model.
    pub onnx: Vec<u8>,
    /// What was measured.
    pub report: QuantizationReport,
    /// The int8 network.
    pub network: Quantized,
    /// Its logits for the test split, `[images, classes]`.
    pub test_logits: Vec<f32>,
}

fn failed(e: String) -> TrainError {
    TrainError::Config(format!("cannot quantize: {e}"))
}

impl Run {
    /// Quantizes the run's network to int8 and evaluates it on `data`'s test split.
    pub fn quantize(
        &self,
        data: &Dataset,
        options: &QuantizeOptions,
    ) -> Result<QuantizedRun, TrainError> {
        let train = data.train.len();
        if options.calibration == 0 || options.calibration > train {
            return Err(TrainError::Config(format!(
                "--calibration {}: the training split has {train} images; give 1 to {train}",
                options.calibration
            )));
        }
        let device = Device::flex();
        let network = self.network(&device, options.weights)?;
        let spec = self.config.network.network_spec()?;
        let graph = export::graph(&spec, &network).map_err(failed)?;
        let [h, w, c] = spec.input;
        let program = Program::lower(&graph, [c, h, w]).map_err(failed)?;
        let folded = graph
            .nodes()
            .iter()
            .filter(|n| n.op == "BatchNormalization")
            .count();
        let images = self.calibration_images(data, options);
        let ranges = quant::calibrate(&program, &images, options.calibration, options.method)
            .map_err(failed)?;
        let scheme = Scheme {
            granularity: options.granularity,
            reduce_range: options.reduce_range,
        };
        let int8 = Quantized::new(program, &ranges, scheme).map_err(failed)?;
        let mut metadata = self.metadata();
        metadata.push(("quantization".into(), describe(options)));
        let onnx = quant::qdq::onnx(&int8, &spec, &metadata).map_err(failed)?;
        let float_onnx = export::onnx(&spec, &network, &self.metadata()).map_err(failed)?;
        let classes = self.dataset.classes.len();
        let norm = &self.dataset.normalization;
        let float = evaluate(
            &network,
            &data.test,
            data.image_shape,
            norm,
            classes,
            &device,
        );
        let (quantized, test_logits) = self.evaluate_int8(&int8, &data.test, data.image_shape);
        let report = QuantizationReport {
            granularity: options.granularity,
            reduce_range: options.reduce_range,
            weights: weights_name(options.weights).into(),
            calibration_images: options.calibration,
            calibration_method: options.method.to_string(),
            calibration_seed: options.seed,
            agreement: float.agreement(&quantized),
            float: accuracy(&float, float_onnx.len()),
            int8: accuracy(&quantized, onnx.len()),
            folded_batch_norms: folded,
            tensors: tensor_ranges(&int8, &ranges),
        };
        Ok(QuantizedRun {
            onnx,
            report,
            network: int8,
            test_logits,
        })
    }

    /// `options.calibration` training images, chosen by `options.seed`, normalised, NCHW.
    fn calibration_images(&self, data: &Dataset, options: &QuantizeOptions) -> Vec<f32> {
        let mut rng = Rng::new(options.seed, CALIBRATION_STREAM);
        let order = rng.permutation(data.train.len());
        let picked: Vec<usize> = order[..options.calibration]
            .iter()
            .map(|&i| i as usize)
            .collect();
        self.normalised(
            &pick(&data.train, &picked, data.image_len()),
            data.image_shape,
        )
        .into_iter()
        .flat_map(|(images, _)| images)
        .collect()
    }

    /// The split's images, normalised as the network takes them, in batches with labels.
    fn normalised(&self, split: &Split, shape: [usize; 3]) -> Vec<(Vec<f32>, Vec<i64>)> {
        let norm = &self.dataset.normalization;
        Batches::new(split, shape, norm, BatchConfig::eval(BATCH), 0, 0)
            .map(|b| (b.images, b.labels))
            .collect()
    }

    /// The int8 network's evaluation on `split` (its loss from the float logits it ends in),
    /// and its logits.
    pub fn evaluate_int8(
        &self,
        int8: &Quantized,
        split: &Split,
        shape: [usize; 3],
    ) -> (Evaluation, Vec<f32>) {
        let classes = self.dataset.classes.len();
        let (mut truths, mut predicted, mut loss) = (Vec::new(), Vec::new(), 0.0);
        let mut all = Vec::with_capacity(split.len() * classes);
        for (images, labels) in self.normalised(split, shape) {
            let logits = int8.forward(&images, labels.len());
            for (row, &label) in logits.chunks_exact(classes).zip(&labels) {
                loss += cross_entropy(row, label as usize);
                predicted.push(argmax(row) as u32);
                truths.push(label as u32);
            }
            all.extend(logits);
        }
        (Evaluation::tally(&truths, predicted, loss, classes), all)
    }

    /// `n` test images evenly spaced over the split with the int8 network's logits for them
    /// (from `quantized.test_logits`), to check another runtime against.
    pub fn int8_sample(&self, quantized: &QuantizedRun, data: &Dataset, n: usize) -> Sample {
        let (len, classes) = (data.test.len(), self.dataset.classes.len());
        let n = n.min(len);
        let picked: Vec<usize> = (0..n).map(|i| i * len / n).collect();
        let split = pick(&data.test, &picked, data.image_len());
        let logits = picked
            .iter()
            .flat_map(|&i| &quantized.test_logits[i * classes..(i + 1) * classes])
            .copied()
            .collect();
        let images = self
            .normalised(&split, data.image_shape)
            .into_iter()
            .flat_map(|(batch, _)| batch)
            .collect();
        let [h, w, c] = data.image_shape;
        Sample {
            shape: [n, c, h, w],
            images,
            labels: split.labels.iter().map(|&l| l as i64).collect(),
            classes,
            logits,
        }
    }
}

/// The images at `picked` of `split`.
fn pick(split: &Split, picked: &[usize], image_len: usize) -> Split {
    Split {
        images: picked
            .iter()
            .flat_map(|&i| &split.images[i * image_len..(i + 1) * image_len])
            .copied()
            .collect(),
        labels: picked.iter().map(|&i| split.labels[i]).collect(),
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// `−log softmax(row)[label]`, in f64.
fn cross_entropy(row: &[f32], label: usize) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln() - row[label] as f64
}

fn accuracy(evaluation: &Evaluation, onnx_bytes: usize) -> Accuracy {
    Accuracy {
        test_accuracy: evaluation.accuracy,
        per_class_accuracy: evaluation.per_class_accuracy.clone(),
        onnx_bytes,
    }
}

fn weights_name(weights: Weights) -> &'static str {
    match weights {
        Weights::Best => "best",
        Weights::Last => "last",
    }
}

/// The metadata line a consumer of the int8 model reads.
fn describe(options: &QuantizeOptions) -> String {
    format!(
        "int8 QDQ: weights symmetric {}{}, activations asymmetric per tensor, BatchNorm folded; \
         ranges by {} over {} training images (seed {}), {} weights",
        options.granularity,
        if options.reduce_range {
            " in [-64, 64]"
        } else {
            ""
        },
        options.method,
        options.calibration,
        options.seed,
        weights_name(options.weights)
    )
}

fn tensor_ranges(int8: &Quantized, ranges: &[quant::Range]) -> Vec<TensorRange> {
    let program = &int8.program;
    (0..program.output())
        .map(|t| TensorRange {
            tensor: program.names[t].clone(),
            min: ranges[t].min,
            max: ranges[t].max,
            scale: int8.params[t].scale,
            zero_point: int8.params[t].zero,
        })
        .collect()
}
