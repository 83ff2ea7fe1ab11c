//! `sepnet summary`: a Keras-style, layer-by-layer account of params and multiply-adds.

use anyhow::{Context, Result, bail};
use burn::tensor::Tensor;
use sepnet_model::{Network, Summary, resolve_model};

use crate::args::{BackendArg, ModelOptionsArgs};

/// Arguments of `sepnet summary`.
#[derive(clap::Args)]
pub struct Args {
    /// A built-in model name (see `sepnet models`) or an architecture spec.
    model: String,
    #[command(flatten)]
    options: ModelOptionsArgs,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also build the network and run one forward pass, checking the output shape.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    backend: BackendArg,
}

/// Prints the summary of one model or spec.
pub fn run(args: Args) -> Result<()> {
    let spec = resolve_model(&args.model, &args.options.options())?;
    let summary = Summary::of(&spec).map_err(|e| anyhow::anyhow!(e.message))?;
    if args.json {
        println!("{}", summary.to_json());
    } else {
        print!("{summary}");
    }
    if args.check {
        sepnet_train::memory::check_fits(&summary, 1, args.backend.backend)?;
        let device = args.backend.backend.device().map_err(anyhow::Error::msg)?;
        let network = Network::new(&spec, &device).map_err(|e| anyhow::anyhow!(e.message))?;
        let [h, w, c] = spec.input;
        let logits = network.forward(Tensor::zeros([1, c, h, w], &device));
        let expected = summary
            .layers
            .last()
            .map(|l| l.output_shape.to_vec())
            .context("no layers")?;
        if logits.dims().to_vec() != [vec![1], expected.clone()].concat() {
            bail!(
                "forward pass produced {:?}, summary predicted [1, {:?}]",
                logits.dims(),
                expected
            );
        }
        eprintln!(
            "check: forward pass on {} gives [1, {}] as predicted",
            args.backend.backend, expected[0]
        );
    }
    Ok(())
}
