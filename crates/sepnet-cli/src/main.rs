//! `sepnet`: train small convolutional networks and measure what depthwise separable
//! convolutions buy — parameters, multiply-adds, speed, accuracy — side by side.

mod args;
mod commands;

use clap::{Parser, Subcommand};

/// Measure what depthwise separable convolutions buy: params, MACs, speed and accuracy.
///
/// Start with `sepnet models` (the built-in networks), then `sepnet summary vgg-separable`
/// (layer-by-layer params and multiply-adds). Any command that takes a model also takes an
/// architecture spec, e.g. `sepnet summary "conv:32:3:relu,pool,sep:64:3:relu,pool,flatten,dense:10"`.
#[derive(Parser)]
#[command(name = "sepnet", version, about, long_about, after_help = SPEC_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const SPEC_HELP: &str = "\
Architecture specs: layers separated by commas, arguments by colons.
  conv:F:K   full conv (F filters, K×K)      dw:K      depthwise (m=2 multiplier)
  sep:F:K    SeparableConv2D                 dwsep:F   MobileNet block (dw-BN-ReLU-pw-BN-ReLU)
  bn  relu  relu6  maxpool[:K]  avgpool[:K]  pool (=maxpool:2)  gap  flatten  dense:N  dropout:R
Options: s=2 (stride), d=2 (dilation), same|valid|pad=T/B/L/R, bias|nobias, relu|relu6; K may be 3x5.
Example: conv:32:3:relu,pool,sep:64:3:relu,pool,flatten,dense:512:relu,dense:10";

#[derive(Subcommand)]
enum Command {
    /// List the built-in models with their input, parameters and multiply-adds.
    Models(commands::models::Args),
    /// Keras-style summary: per-layer output shape, params and MACs, and what separable layers save.
    Summary(commands::summary::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Models(args) => commands::models::run(args),
        Command::Summary(args) => commands::summary::run(args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
