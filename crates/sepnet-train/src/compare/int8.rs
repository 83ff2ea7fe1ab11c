//! `compare --int8`: what each model keeps at int8 — its test accuracy quantized with one
//! weight scale per tensor and per output channel, and its int8 model's size — as columns of
//! the table and hollow points of the accuracy-against-MACs chart.

use std::path::Path;

use sepnet_data::Dataset;
use sepnet_quant::Granularity;

use super::{Row, Table, mean_std, pct};
use crate::TrainError;
use crate::quantize::{QuantizationReport, QuantizeOptions};
use crate::record::{Run, Weights};

/// The file names a run's int8 model and report get in a comparison: one pair per granularity.
pub fn files(granularity: Granularity) -> [String; 2] {
    [
        format!("model.int8-{granularity}.onnx"),
        format!("quantization-{granularity}.json"),
    ]
}

/// Quantizes the finished run in `dir` (its last weights, as the table's final accuracy) and
/// writes its int8 model and report into it.
pub fn quantize_run(
    dir: &Path,
    data: &Dataset,
    granularity: Granularity,
) -> Result<QuantizationReport, TrainError> {
    let run = Run::open(dir)?;
    let options = QuantizeOptions {
        granularity,
        weights: Weights::Last,
        seed: run.config.config.seed,
        ..Default::default()
    };
    let quantized = run.quantize(data, &options)?;
    let [model, report] = files(granularity).map(|name| dir.join(name));
    let write = |path: &Path, bytes: &[u8]| {
        sepnet_data::atomic::write(path, bytes).map_err(|e| crate::run::io_error(path, e))
    };
    write(&model, &quantized.onnx)?;
    write(&report, crate::run::to_json(&quantized.report).as_bytes())?;
    Ok(quantized.report)
}

/// The columns `--int8` adds.
pub const COLUMNS: [&str; 3] = [
    "int8 per-tensor acc",
    "int8 per-channel acc",
    "int8/float size",
];

/// Fills the int8 columns of `rows` from each model's reports (by model name, one per seed
/// and granularity).
pub fn add(rows: &mut [Row], reports: &[(String, Vec<QuantizationReport>)]) {
    for (model, reports) in reports {
        let Some(row) = rows.iter_mut().find(|r| &r.model == model) else {
            continue;
        };
        let accuracy = |g: Granularity| {
            let values: Vec<f64> = reports
                .iter()
                .filter(|r| r.granularity == g)
                .map(|r| r.int8.test_accuracy)
                .collect();
            (!values.is_empty()).then(|| mean_std(&values))
        };
        (
            row.int8_per_tensor_test_accuracy,
            row.int8_per_tensor_test_accuracy_std,
        ) = accuracy(Granularity::PerTensor).unzip();
        (
            row.int8_per_channel_test_accuracy,
            row.int8_per_channel_test_accuracy_std,
        ) = accuracy(Granularity::PerChannel).unzip();
        let sizes: Vec<f64> = reports
            .iter()
            .map(|r| r.int8.onnx_bytes as f64 / r.float.onnx_bytes.max(1) as f64)
            .collect();
        row.int8_size_ratio = (!sizes.is_empty()).then(|| mean_std(&sizes).0);
    }
}

/// A row's cells under [`COLUMNS`].
pub fn cells(r: &Row) -> Vec<String> {
    let accuracy = |mean: Option<f64>, std: Option<f64>| {
        mean.map_or("—".into(), |m| pct(m, std.unwrap_or(0.0), r.repeats))
    };
    vec![
        accuracy(
            r.int8_per_tensor_test_accuracy,
            r.int8_per_tensor_test_accuracy_std,
        ),
        accuracy(
            r.int8_per_channel_test_accuracy,
            r.int8_per_channel_test_accuracy_std,
        ),
        r.int8_size_ratio.map_or("—".into(), |s| format!("{s:.3}")),
    ]
}

impl Table {
    /// Adds each model's int8 reports: columns of the table, words of the title.
    pub fn with_int8(mut self, reports: &[(String, Vec<QuantizationReport>)]) -> Table {
        add(&mut self.rows, reports);
        let defaults = QuantizeOptions::default();
        self.title += &format!(
            "; int8: last weights, BatchNorm folded, activation ranges by {} over {} training images",
            defaults.method, defaults.calibration
        );
        self
    }
}

/// The int8 points of the accuracy-against-MACs chart: each model's, hollow, in its colour.
pub fn series(rows: &[Row]) -> Vec<crate::plot::Series> {
    let short = |model: &str| model.chars().take(16).collect::<String>();
    rows.iter()
        .enumerate()
        .flat_map(|(k, r)| {
            [
                (r.int8_per_tensor_test_accuracy, "int8 tensor"),
                (r.int8_per_channel_test_accuracy, "int8 channel"),
            ]
            .into_iter()
            .filter_map(move |(accuracy, what)| {
                accuracy.map(|a| crate::plot::Series {
                    name: format!("{} {what}", short(&r.model)),
                    points: vec![(r.macs as f64, a)],
                    variant_of: Some(k),
                })
            })
        })
        .collect()
}
