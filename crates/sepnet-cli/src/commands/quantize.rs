//! `sepnet quantize`: post-training int8 of a trained run, evaluated in int8 arithmetic and
//! written as an ONNX QDQ model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sepnet_data::DatasetKind;
use sepnet_quant::{Granularity, RangeMethod, Scheme};
use sepnet_train::Run;
use sepnet_train::quantize::{QuantizationReport, QuantizeOptions};
use sepnet_train::table::{Style, draw};

use super::export::check_output;
use super::predict::WeightsArg;

/// Arguments of `sepnet quantize`.
#[derive(clap::Args)]
#[command(after_help = "\
What it does: folds every BatchNorm into the convolution before it, quantizes the weights to
symmetric int8 (one scale per output channel, or one per tensor) and the activations to int8
with one scale and zero point per tensor, their ranges observed on calibration images of the
training split; then evaluates the test split in sepnet's own integer arithmetic (int8
products, int32 sums, requantized as ONNX's QLinearConv defines it) beside the float network.

Examples:
  sepnet quantize runs/mobilenet                              # per-channel, 512 images, minmax
  sepnet quantize runs/mobilenet --granularity per-tensor --out runs/mobilenet/per-tensor.onnx
  sepnet quantize runs/mobilenet --calibration-method percentile --samples 256

Writes OUT (default RUN/model.int8.onnx, ONNX QDQ, opset 17: ONNX Runtime runs it with int8
kernels) and its report (RUN/quantization.json, or OUT with .json): accuracies float and int8,
per class, agreement, file sizes, each activation's range.")]
pub struct Args {
    /// A finished (or checkpointed) run directory written by `sepnet train`.
    run: PathBuf,
    /// Weight scales: per-channel (one per output channel) or per-tensor (one per layer).
    #[arg(long, value_enum, default_value = "per-channel")]
    granularity: Granularity,
    /// 7-bit weights ([-64, 64]): for ONNX Runtime on x86 CPUs without VNNI (AVX2 only), whose
    /// int8 kernels saturate full-range weights silently.
    #[arg(long)]
    reduce_range: bool,
    /// Calibration images, drawn (seeded) from the training split.
    #[arg(long, value_name = "N", default_value_t = 512)]
    calibration: usize,
    /// How observed activations become ranges: minmax (the extremes) or percentile (0.01% cut
    /// off each end).
    #[arg(long, value_enum, default_value = "minmax")]
    calibration_method: RangeMethod,
    /// Seed of the choice of calibration images [default: the run's seed].
    #[arg(long)]
    seed: Option<u64>,
    /// Which weights: best (the best validation epoch) or last.
    #[arg(long, value_enum, default_value = "best")]
    weights: WeightsArg,
    /// The int8 ONNX file [default: RUN/model.int8.onnx].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write N real test images (evenly spaced), their labels and sepnet's int8 logits to
    /// OUT.samples.safetensors, to check another runtime against.
    #[arg(long, value_name = "N")]
    samples: Option<usize>,
    /// The dataset, when it moved since training (default: where the run found it).
    #[arg(long)]
    dataset: Option<String>,
    /// Folder holding the dataset files, when they moved since training.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Where the report goes: `RUN/quantization.json` beside the default model, else OUT with `.json`.
fn report_path(args: &Args, out: &Path) -> PathBuf {
    match &args.out {
        None => args.run.join("quantization.json"),
        Some(_) => out.with_extension("json"),
    }
}

/// Quantizes the run.
pub fn run(args: Args) -> Result<()> {
    let run = Run::open(&args.run)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run.join("model.int8.onnx"));
    let report_file = report_path(&args, &out);
    let samples_file = PathBuf::from(format!("{}.samples.safetensors", out.display()));
    check_output(&out)?;
    check_output(&report_file)?;
    if args.samples.is_some() {
        check_output(&samples_file)?;
    }
    let kind: Option<DatasetKind> = match &args.dataset {
        Some(name) => Some(name.parse().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let data = run.load_dataset(kind, args.data_dir.clone(), !args.json)?;
    let options = QuantizeOptions {
        granularity: args.granularity,
        reduce_range: args.reduce_range,
        calibration: args.calibration,
        method: args.calibration_method,
        weights: args.weights.into(),
        seed: args.seed.unwrap_or(run.config.config.seed),
    };
    if let (Some(trained), false) = (run.config.config.fake_quant, args.json) {
        eprintln!("{}", quantization_aware_note(trained, &options));
    }
    let quantized = run.quantize(&data, &options)?;
    let write = |path: &Path, bytes: &[u8], what: &str| {
        sepnet_data::atomic::write(path, bytes)
            .with_context(|| format!("{}: cannot write the {what}", path.display()))
    };
    write(&out, &quantized.onnx, "int8 model")?;
    let json = sepnet_train::run::to_json(&quantized.report);
    write(&report_file, json.as_bytes(), "report")?;
    if let Some(n) = args.samples {
        let sample = run.int8_sample(&quantized, &data, n);
        write(&samples_file, &sample.to_safetensors(), "samples")?;
    }
    if args.json {
        println!("{json}");
    } else {
        print_report(&quantized.report, &out, &report_file);
    }
    Ok(())
}

/// What a user should know when quantizing a run trained through int8 weights (`trained`).
fn quantization_aware_note(trained: Scheme, options: &QuantizeOptions) -> String {
    let bits = |reduce: bool| if reduce { " 7-bit" } else { "" };
    let mut note = format!(
        "note: this run trained quantization-aware, through{} {} int8 weights; its float row \
         is the float weights it trained through",
        bits(trained.reduce_range),
        trained.granularity
    );
    if (trained.granularity, trained.reduce_range) != (options.granularity, options.reduce_range) {
        note += &format!(
            "\nwarning: quantizing{} {} instead rounds its weights otherwise than it trained for",
            bits(options.reduce_range),
            options.granularity
        );
    }
    note
}

fn print_report(report: &QuantizationReport, out: &Path, report_file: &Path) {
    let pct = |a: f64| format!("{:.2}%", 100.0 * a);
    let rows = vec![
        vec![
            "float".to_string(),
            pct(report.float.test_accuracy),
            report.float.onnx_bytes.to_string(),
            "1.000".into(),
        ],
        vec![
            format!("int8 {}", report.granularity),
            pct(report.int8.test_accuracy),
            report.int8.onnx_bytes.to_string(),
            format!(
                "{:.3}",
                report.int8.onnx_bytes as f64 / report.float.onnx_bytes as f64
            ),
        ],
    ];
    let header = ["network", "test accuracy", "ONNX bytes", "× size"];
    println!("{}", draw(Style::Plain, &header, &header[1..], rows));
    println!(
        "Δ accuracy {:+.2} pt; float and int8 agree on {} of the test images; {} BatchNorms folded; \
         ranges: {} over {} training images",
        100.0 * (report.int8.test_accuracy - report.float.test_accuracy),
        pct(report.agreement),
        report.folded_batch_norms,
        report.calibration_method,
        report.calibration_images
    );
    println!("{}\n{}", out.display(), report_file.display());
}
