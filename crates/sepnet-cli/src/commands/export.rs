//! `sepnet export`: a trained run as ONNX or safetensors, for other runtimes.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sepnet_train::Run;
use sepnet_train::export::Format;

use super::predict::WeightsArg;

/// Arguments of `sepnet export`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  sepnet export runs/mobilenet --format onnx                 # runs/mobilenet/model.onnx
  sepnet export runs/mobilenet --format safetensors --out weights.safetensors
  sepnet export runs/mobilenet --format onnx --samples 256   # + model.onnx.samples.safetensors

In Python (pip install onnxruntime numpy):
  import json, numpy as np, onnxruntime as ort
  session = ort.InferenceSession(\"model.onnx\")
  meta = session.get_modelmeta().custom_metadata_map
  mean, std = np.array(json.loads(meta[\"normalization_mean\"])), np.array(json.loads(meta[\"normalization_std\"]))
  logits = session.run([\"logits\"], {\"images\": ((pixels / 255 - mean[:, None, None]) / std[:, None, None]).astype(np.float32)})[0]")]
pub struct Args {
    /// A finished (or checkpointed) run directory written by `sepnet train`.
    run: PathBuf,
    /// onnx (opset 17, dynamic batch, classes and preprocessing in the metadata) or
    /// safetensors (the weights, as the PyTorch twin of reference/torch_models.py names them).
    #[arg(long, value_enum)]
    format: Format,
    /// Output file [default: RUN/model.onnx or RUN/model.safetensors].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which weights: best (the best validation epoch) or last.
    #[arg(long, value_enum, default_value = "best")]
    weights: WeightsArg,
    /// Also write N real test images (evenly spaced over the test split), their labels and sepnet's logits for them to
    /// OUT.samples.safetensors, to check another runtime against.
    #[arg(long, value_name = "N")]
    samples: Option<usize>,
}

/// Refuses an output path that is not a new or regular file, or that is a run's own file.
pub fn check_output(out: &std::path::Path) -> Result<()> {
    if out.is_dir() {
        bail!("--out {}: is a folder; give a file name", out.display());
    }
    if let Some(reason) = sepnet_train::run::protected_file(out) {
        bail!(
            "--out {}: {reason}; sepnet never replaces it",
            out.display()
        );
    }
    sepnet_data::atomic::check_replaceable(out).with_context(|| format!("--out {}", out.display()))
}

/// Exports the run.
pub fn run(args: Args) -> Result<()> {
    let run = Run::open(&args.run)?;
    let extension = match args.format {
        Format::Onnx => "onnx",
        Format::Safetensors => "safetensors",
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run.join(format!("model.{extension}")));
    let samples_path = PathBuf::from(format!("{}.samples.safetensors", out.display()));
    check_output(&out)?;
    if args.samples.is_some() {
        check_output(&samples_path)?;
    }
    let bytes = run.export(args.format, args.weights.into())?;
    sepnet_data::atomic::write(&out, &bytes)
        .with_context(|| format!("{}: cannot write the export", out.display()))?;
    eprintln!(
        "{}: {} bytes ({extension}, {} weights)",
        out.display(),
        bytes.len(),
        args.weights
    );
    if let Some(n) = args.samples {
        let data = run.load_dataset(None, None, true)?;
        let samples = run.sample(&data, n, args.weights.into())?.to_safetensors();
        let path = samples_path;
        sepnet_data::atomic::write(&path, &samples)
            .with_context(|| format!("{}: cannot write the samples", path.display()))?;
        eprintln!(
            "{}: {} test images with sepnet's logits",
            path.display(),
            n.min(data.test.len())
        );
    }
    Ok(())
}
