//! `sepnet eval`: accuracy, per-class accuracy and confusion matrix of a trained run.

use std::path::PathBuf;

use anyhow::Result;
use sepnet_data::DatasetKind;
use sepnet_train::table::{Style, draw};
use sepnet_train::{Run, evaluate};

use super::predict::WeightsArg;

/// Arguments of `sepnet eval`.
#[derive(clap::Args)]
pub struct Args {
    /// Run directory written by `sepnet train`.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Which split: test or train.
    #[arg(long, default_value = "test", value_parser = ["test", "train"])]
    split: String,
    /// Which weights: best (the best validation epoch; the default of eval, predict and
    /// export alike) or last (after the last epoch).
    #[arg(long, value_enum, default_value = "best")]
    weights: WeightsArg,
    /// The dataset, when it moved since training (default: where the run found it).
    #[arg(long)]
    dataset: Option<String>,
    /// Folder holding the dataset files, when they moved since training.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Loads a run's model and evaluates it.
pub fn run(args: Args) -> Result<()> {
    let run = Run::open(&args.checkpoint)?;
    let config = &run.config.config;
    let kind: Option<DatasetKind> = match &args.dataset {
        Some(name) => Some(name.parse().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let dataset = run.load_dataset(kind, args.data_dir.clone(), !args.json)?;
    let device = config.backend.device().map_err(anyhow::Error::msg)?;
    let model = run.network(&device, args.weights.into())?;
    let split = if args.split == "test" {
        &dataset.test
    } else {
        &dataset.train
    };
    let classes = &run.dataset.classes;
    let norm = &run.dataset.normalization;
    let result = evaluate(
        &model,
        split,
        dataset.image_shape,
        norm,
        classes.len(),
        &device,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "{} ({:?} weights) on {} {} ({} images): accuracy {:.2}%, loss {:.4}\n",
        config.model,
        args.weights,
        dataset.name,
        args.split,
        result.images,
        100.0 * result.accuracy,
        result.loss
    );
    let header: Vec<String> = ["true \\ predicted".to_string()]
        .into_iter()
        .chain((0..classes.len()).map(|c| c.to_string()))
        .chain(["accuracy".to_string()])
        .collect();
    let rows = classes
        .iter()
        .zip(&result.confusion)
        .zip(&result.per_class_accuracy)
        .enumerate()
        .map(|(i, ((name, counts), acc))| {
            std::iter::once(format!("{i} {name}"))
                .chain(counts.iter().map(u64::to_string))
                .chain([format!("{:.2}%", 100.0 * acc)])
                .collect()
        })
        .collect();
    let names: Vec<&str> = header.iter().map(String::as_str).collect();
    print!("{}", draw(Style::Plain, &names, &names[1..], rows));
    Ok(())
}
