//! `sepnet bench`: forward and training-step medians per model, the first step apart, and an
//! optional per-layer forward/backward profile.

use anyhow::{Result, bail};
use sepnet_model::{ModelOptions, human, resolve_model};
use sepnet_train::bench::{BenchConfig, BenchResult, bench_model, profile_layers};
use sepnet_train::table::{Style, draw};

use crate::args::{BackendArg, parse_input, split_models};

/// The four reference models of the speed comparison with PyTorch.
const REFERENCE_MODELS: &str = "mnist-full,vgg-full,vgg-separable,mobilenet";

/// Arguments of `sepnet bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Models to time: built-in names separated by commas, or specs separated by `;`.
    #[arg(long, default_value = REFERENCE_MODELS)]
    models: Vec<String>,
    /// Input size HxWxC, e.g. 32x32x3 (default: the model's own; 28x28x1 for specs).
    #[arg(long, value_parser = parse_input)]
    input: Option<[usize; 3]>,
    /// Images per batch (synthetic Normal(0, 1) images at the model's input size).
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Timed repetitions; medians and min–max are over these.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed repetitions after the first step.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[command(flatten)]
    backend: BackendArg,
    /// Also time every layer's forward and backward pass on its own (separable layers split
    /// into their depthwise and pointwise parts).
    #[arg(long)]
    layers: bool,
    /// Seed for the weights and the synthetic batch.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print a JSON list (one object per model) instead of tables.
    #[arg(long)]
    json: bool,
}

/// Times each model and prints one table (or JSON).
pub fn run(args: Args) -> Result<()> {
    let models = split_models(&args.models);
    if models.is_empty() {
        bail!("--models is empty");
    }
    let backend = args.backend.backend;
    let device = backend.device().map_err(anyhow::Error::msg)?;
    let config = BenchConfig {
        batch_size: args.batch_size,
        steps: args.steps,
        warmup: args.warmup,
        seed: args.seed,
    };
    let options = ModelOptions {
        input: args.input,
        ..Default::default()
    };
    let mut results = Vec::new();
    for model in &models {
        let spec = resolve_model(model, &options)?;
        eprintln!(
            "bench: {model} on {backend}, batch {}, {} timed steps…",
            config.batch_size, config.steps
        );
        let mut result = bench_model(model, &spec, backend, &device, &config)?;
        if args.layers {
            result.layers = profile_layers(&spec, &device, &config)?;
        }
        if !args.json {
            print_result(&result);
        }
        results.push(result);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(())
}

fn print_result(r: &BenchResult) {
    println!(
        "{} ({} backend, batch {}, {} params, {} MACs/image)",
        r.model,
        r.backend,
        r.batch_size,
        human(r.params),
        human(r.macs)
    );
    println!(
        "  forward      {:>9.2} ms  (min {:.2}, max {:.2})  {:>9.0} img/s  {:>7.1} GMAC/s",
        r.forward_ms,
        r.forward.min_ms,
        r.forward.max_ms,
        r.forward_images_per_s,
        r.forward_gmacs_per_s
    );
    println!(
        "  train step   {:>9.2} ms  (min {:.2}, max {:.2})  {:>9.0} img/s  {:>7.1} GMAC/s",
        r.train_step_ms,
        r.train_step.min_ms,
        r.train_step.max_ms,
        r.train_images_per_s,
        r.train_gmacs_per_s
    );
    println!("  first step   {:>9.2} ms", r.first_step_ms);
    if !r.layers.is_empty() {
        let rows = r
            .layers
            .iter()
            .map(|l| {
                let input: Vec<String> = l.input.iter().map(usize::to_string).collect();
                vec![
                    l.index.to_string(),
                    l.layer.clone(),
                    input.join("×"),
                    format!("{:.3}", l.forward_ms),
                    format!("{:.3}", l.backward_ms),
                    format!("{:.1}", l.backward_ratio()),
                ]
            })
            .collect();
        let header = ["#", "layer", "input", "fwd ms", "bwd ms", "bwd/fwd"];
        print!(
            "{}",
            draw(
                Style::Plain,
                &header,
                &["#", "fwd ms", "bwd ms", "bwd/fwd"],
                rows
            )
        );
    }
    println!();
}
