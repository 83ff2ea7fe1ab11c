//! `sepnet bench`: forward and training-step medians per model, the first step apart, and an
//! optional per-layer forward/backward profile.

use anyhow::{Result, bail};
use sepnet_model::{Backend, human, resolve_model};
use sepnet_train::bench::{
    BenchConfig, BenchResult, LayerProfile, Timing, bench_model, profile_layers,
};
use sepnet_train::roofline::Roofs;
use sepnet_train::table::{Style, draw};

use crate::args::{BackendArg, ModelOptionsArgs, split_models};

/// The four reference models of the speed comparison with PyTorch.
const REFERENCE_MODELS: &str = "mnist-full,vgg-full,vgg-separable,mobilenet";

/// Arguments of `sepnet bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Models to time: built-in names separated by commas, or specs separated by `;`.
    #[arg(long, default_value = REFERENCE_MODELS)]
    models: Vec<String>,
    #[command(flatten)]
    model: ModelOptionsArgs,
    /// Images per batch (synthetic Normal(0, 1) images at the model's input size).
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Timed repetitions; medians, percentiles and min–max are over these [default: 10, or
    /// 200 at batch sizes up to 8, where latency percentiles need many repetitions].
    #[arg(long)]
    steps: Option<usize>,
    /// Untimed repetitions after the first step.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[command(flatten)]
    backend: BackendArg,
    /// Also time every layer's forward and backward pass on its own, in the form a training
    /// step runs it (`[blocked]`: in the CPU's blocked channel layout; `bn,relu6`: layers run
    /// as one; separable layers in NCHW split into their depthwise and pointwise parts), with
    /// its GFLOP/s, arithmetic intensity and, on the CPU, % of what this machine's measured
    /// roofs (peak FLOP/s, memory bandwidth) allow. The roofs are the CPU's: on a GPU backend
    /// those two columns are left out.
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
    crate::args::check_distinct(&models)?;
    let backend = args.backend.backend;
    let device = backend.device().map_err(anyhow::Error::msg)?;
    let config = BenchConfig {
        batch_size: args.batch_size,
        steps: args
            .steps
            .unwrap_or(if args.batch_size <= 8 { 200 } else { 10 }),
        warmup: args.warmup,
        seed: args.seed,
    };
    let options = args.model.options();
    // The roofs are measured on the CPU; a GPU layer held against them reads over 100%.
    let roofs = (args.layers && backend == Backend::Flex).then(|| {
        eprintln!("bench: measuring this machine's peak FLOP/s and memory bandwidth…");
        Roofs::measure()
    });
    if let Some(note) = super::gpu_first_step_note(backend) {
        eprintln!("bench: {note}");
    }
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
            result.roofs = roofs;
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
    let line = |what: &str, t: &Timing, images_per_s: f64, gmacs: f64| {
        println!(
            "  {what:<11}{:>9.2} ms  (p90 {:.2}, p99 {:.2}, min {:.2}, max {:.2})  {images_per_s:>9.0} img/s  {gmacs:>7.1} GMAC/s",
            t.median_ms, t.p90_ms, t.p99_ms, t.min_ms, t.max_ms
        )
    };
    line(
        "forward",
        &r.forward,
        r.forward_images_per_s,
        r.forward_gmacs_per_s,
    );
    line(
        "train step",
        &r.train_step,
        r.train_images_per_s,
        r.train_gmacs_per_s,
    );
    println!("  first step {:>9.2} ms", r.first_step_ms);
    if let Some(roofs) = &r.roofs {
        print_roofs(roofs);
    }
    if !r.layers.is_empty() {
        print!("{}", layer_table(&r.layers, r.roofs.as_ref()));
    }
    println!();
}

fn print_roofs(roofs: &Roofs) {
    println!(
        "  this machine: {:.0} GFLOP/s peak ({} FMA loop, {} threads), {:.1} GB/s streaming; \
         below {:.1} FLOP/byte a layer is memory-bound",
        roofs.peak_gflops,
        roofs.isa,
        roofs.threads,
        roofs.bandwidth_gbs,
        roofs.ridge()
    );
}

/// One row per layer; the last two columns (which roof bounds it, and how close it gets)
/// only with `roofs`.
fn layer_table(layers: &[LayerProfile], roofs: Option<&Roofs>) -> String {
    let rows = layers
        .iter()
        .map(|l| {
            let input: Vec<String> = l.input.iter().map(usize::to_string).collect();
            let mut row = vec![
                l.index.to_string(),
                l.layer.clone(),
                input.join("×"),
                format!("{:.3}", l.forward_ms),
                format!("{:.3}", l.backward_ms),
                format!("{:.1}", l.backward_ratio()),
                format!("{:.1}", l.forward_gflops()),
                format!("{:.1}", l.backward_gflops()),
                format!("{:.1}", l.intensity()),
            ];
            if let Some(roofs) = roofs {
                let bound = if l.forward_flop == 0 {
                    "-"
                } else if l.intensity() < roofs.ridge() {
                    "memory"
                } else {
                    "compute"
                };
                row.push(bound.to_string());
                row.push(format!("{:.0}%", l.percent_of_roof(roofs)));
            }
            row
        })
        .collect();
    let header = [
        "#",
        "layer",
        "input",
        "fwd ms",
        "bwd ms",
        "bwd/fwd",
        "fwd GFLOP/s",
        "bwd GFLOP/s",
        "FLOP/B",
        "bound",
        "fwd % of roof",
    ];
    let header = if roofs.is_some() {
        &header[..]
    } else {
        &header[..header.len() - 2]
    };
    let right = &header[3..];
    draw(Style::Plain, header, right, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv_layer() -> LayerProfile {
        LayerProfile {
            index: 0,
            layer: "conv:8:3".into(),
            input: vec![4, 3, 8, 8],
            forward_ms: 1.0,
            backward_ms: 2.0,
            forward_flop: 2_000_000,
            forward_bytes: 10_000,
            backward_bytes: 20_000,
        }
    }

    /// A CPU profile is held against the CPU's roofs; a GPU profile has no roofs, so it
    /// shows no "bound" or "% of roof" column rather than a percentage of the wrong machine.
    #[test]
    fn roof_columns_only_with_roofs() {
        let roofs = Roofs {
            peak_gflops: 100.0,
            bandwidth_gbs: 10.0,
            isa: "avx512",
            threads: 2,
        };
        let with = layer_table(&[conv_layer()], Some(&roofs));
        assert!(
            with.contains("% of roof") && with.contains("compute"),
            "{with}"
        );
        assert!(
            with.contains("2%"),
            "2 GFLOP/s of a 100 GFLOP/s roof: {with}"
        );
        let without = layer_table(&[conv_layer()], None);
        assert!(
            !without.contains("roof") && !without.contains("bound"),
            "{without}"
        );
        assert!(
            without.contains("conv:8:3") && without.contains("200.0"),
            "{without}"
        );
    }
}
