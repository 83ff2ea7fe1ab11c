//! `sepnet`: train small convolutional networks and measure what depthwise separable
//! convolutions buy — parameters, multiply-adds, speed, accuracy — side by side.

mod alloc;
mod args;
mod commands;
mod stop;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// Find (or download) a dataset, validate it, and show its classes and counts.
    Data(commands::data::Args),
    /// Train a model on a dataset into a run directory (metrics, plots, checkpoint, summary.json).
    Train(commands::train::Args),
    /// Evaluate a trained run: accuracy, per-class accuracy, confusion matrix.
    Eval(commands::eval::Args),
    /// Classify image files with a trained run: top-k classes with probabilities.
    Predict(commands::predict::Args),
    /// Export a trained run to ONNX or safetensors, for other runtimes.
    Export(commands::export::Args),
    /// Train several models with identical data and settings; one table, two plots.
    Compare(commands::compare::Args),
    /// Time forward passes and training steps (median, spread, first step); --layers profiles
    /// each layer's forward and backward.
    Bench(commands::bench::Args),
}

/// The ids of the flags given on the command line of the subcommand (not their defaults).
fn given_flags(matches: &ArgMatches) -> Vec<String> {
    let Some((_, sub)) = matches.subcommand() else {
        return Vec::new();
    };
    sub.ids()
        .map(|id| id.as_str().to_string())
        .filter(|id| sub.value_source(id) == Some(ValueSource::CommandLine))
        .collect()
}

fn main() {
    #[cfg(unix)]
    // SAFETY: restoring default dispositions before any thread starts. A closed pipe ends the
    // process quietly (`sepnet models | head`); a file-size limit makes writes fail with an
    // error sepnet reports instead of killing it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    alloc::retain_freed_memory();
    stop::install();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Models(args) => commands::models::run(args),
        Command::Summary(args) => commands::summary::run(args),
        Command::Data(args) => commands::data::run(args),
        Command::Train(args) => commands::train::run(args, &given_flags(&matches)),
        Command::Eval(args) => commands::eval::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Bench(args) => commands::bench::run(args),
    };
    if let Err(err) = result {
        // A run stopped on request is not an error: it says where it stopped and how to go on.
        if let Some(sepnet_train::TrainError::Stopped(how)) = err.downcast_ref() {
            eprintln!("{how}");
            std::process::exit(stop::EXIT_STOPPED);
        }
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
