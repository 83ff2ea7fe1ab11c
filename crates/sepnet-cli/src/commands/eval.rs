//! `sepnet eval`: accuracy, per-class accuracy and confusion matrix of a trained run.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sepnet_model::Network;
use sepnet_train::{TrainConfig, checkpoint, evaluate, prepare, read_json};

/// Arguments of `sepnet eval`.
#[derive(clap::Args)]
pub struct Args {
    /// Run directory written by `sepnet train`.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Which split: test or train.
    #[arg(long, default_value = "test", value_parser = ["test", "train"])]
    split: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Loads a run's model and evaluates it.
pub fn run(args: Args) -> Result<()> {
    let dir = &args.checkpoint;
    let config: TrainConfig = read_json(&dir.join("config.json"))
        .with_context(|| format!("{} is not a sepnet run directory", dir.display()))?;
    let state = checkpoint::load_state(dir)?;
    let prepared = prepare(&config)?;
    let model =
        Network::new(&prepared.spec, &prepared.device).map_err(|e| anyhow::anyhow!(e.message))?;
    let model = checkpoint::load_model(dir, &state, model)?;
    let split = if args.split == "test" {
        &prepared.dataset.test
    } else {
        &prepared.dataset.train
    };
    let classes = &prepared.dataset.classes;
    let result = evaluate(
        &model,
        split,
        prepared.dataset.image_shape,
        &prepared.norm,
        classes.len(),
        &prepared.device,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "{} after {} epochs on {} {} ({} images)",
        config.model, state.epochs_done, prepared.dataset.name, args.split, result.images
    );
    println!(
        "accuracy {:.2}%   loss {:.4}",
        100.0 * result.accuracy,
        result.loss
    );
    for (name, acc) in classes.iter().zip(&result.per_class_accuracy) {
        println!("  {name:<16} {:>6.2}%", 100.0 * acc);
    }
    println!("confusion matrix (rows: true class, columns: predicted):");
    for row in &result.confusion {
        println!(
            "  {}",
            row.iter().map(|v| format!("{v:>5}")).collect::<String>()
        );
    }
    Ok(())
}
