//! `sepnet`: train small convolutional networks and measure what depthwise separable
//! convolutions buy — parameters, multiply-adds, speed, accuracy — side by side.

mod alloc;
mod args;
mod commands;
mod stop;
mod world;

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
  bn  se:R (squeeze-excite, R=0.25|16, gate=hardsigmoid)  maxpool[:K]  avgpool[:K]  pool (=maxpool:2)
  gap  flatten  dense:N  dropout:R
  activations: relu relu6 sigmoid tanh silu (=swish) hardswish hardsigmoid gelu linear
Options: s=2 (stride), d=2 (dilation), same|valid|pad=T/B/L/R, bias|nobias, an activation; K may be 3x5.
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
    // Train and Compare are boxed: their flags outweigh every other command's.
    Train(Box<commands::train::Args>),
    /// Evaluate a trained run: accuracy, per-class accuracy, confusion matrix.
    Eval(commands::eval::Args),
    /// Classify image files with a trained run: top-k classes with probabilities.
    Predict(commands::predict::Args),
    /// Export a trained run to ONNX or safetensors, for other runtimes.
    Export(commands::export::Args),
    /// Quantize a trained run to int8 (per-channel or per-tensor) and measure what it keeps.
    Quantize(commands::quantize::Args),
    /// Train several models with identical data and settings; one table, two plots.
    Compare(Box<commands::compare::Args>),
    /// Time forward passes and training steps (median, spread, first step); --layers profiles
    /// each layer's forward and backward.
    Bench(commands::bench::Args),
}

impl Command {
    /// The command's name when a signal should end it at once (nothing to checkpoint).
    fn stops_at_once(&self) -> Option<&'static str> {
        match self {
            Command::Train(_) | Command::Compare(_) => None,
            Command::Models(_) => Some("models"),
            Command::Summary(_) => Some("summary"),
            Command::Data(_) => Some("data"),
            Command::Eval(_) => Some("eval"),
            Command::Predict(_) => Some("predict"),
            Command::Export(_) => Some("export"),
            Command::Quantize(_) => Some("quantize"),
            Command::Bench(_) => Some("bench"),
        }
    }
}

/// The most CPU threads sepnet accepts from RAYON_NUM_THREADS, per CPU of this machine: more
/// only slows a run down, and a typo such as 100000 would start that many threads.
const THREADS_PER_CPU: usize = 8;

/// Refuses environment settings that would hang or abort the process.
fn check_environment() -> anyhow::Result<()> {
    let Ok(text) = std::env::var("RAYON_NUM_THREADS") else {
        return Ok(());
    };
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let most = (THREADS_PER_CPU * cpus).max(64);
    match text.trim().parse::<usize>() {
        Ok(n) if n <= most => Ok(()),
        Ok(n) => anyhow::bail!(
            "RAYON_NUM_THREADS={n}: at most {most} threads on this machine ({cpus} CPUs); \
             leave it unset to use one per CPU"
        ),
        Err(_) => anyhow::bail!(
            "RAYON_NUM_THREADS={text:?} is not a whole number; leave it unset to use one per CPU"
        ),
    }
}

/// The ids of the flags given on the command line of the subcommand (not their defaults).
fn given_flags(matches: &ArgMatches) -> Vec<String> {
    let Some((name, sub)) = matches.subcommand() else {
        return Vec::new();
    };
    // Argument groups (a flattened struct's name) have ids too; only flags count.
    let command = Cli::command();
    let is_flag = |id: &str| {
        command
            .find_subcommand(name)
            .is_some_and(|c| c.get_arguments().any(|a| a.get_id() == id))
    };
    sub.ids()
        .map(|id| id.as_str().to_string())
        .filter(|id| sub.value_source(id) == Some(ValueSource::CommandLine) && is_flag(id))
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
    if let Err(err) = check_environment() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
    if let Some(name) = cli.command.stops_at_once() {
        stop::exit_on_signal(name);
    }
    let result = match cli.command {
        Command::Models(args) => commands::models::run(args),
        Command::Summary(args) => commands::summary::run(args),
        Command::Data(args) => commands::data::run(args),
        Command::Train(args) => commands::train::run(*args, &given_flags(&matches)),
        Command::Eval(args) => commands::eval::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Quantize(args) => commands::quantize::run(args),
        Command::Compare(args) => commands::compare::run(*args, &given_flags(&matches)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of every integration test of the `sepnet` command.
    fn test_sources() -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
        let mut text = String::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            text += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
        }
        text
    }

    /// A flag no test gives is a flag whose parsing no test has run (`--blocks` once panicked
    /// on every value because of that).
    #[test]
    fn every_flag_of_every_command_is_used_by_a_test() {
        let sources = test_sources();
        let mut unused = Vec::new();
        for command in Cli::command().get_subcommands() {
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if ["help", "version"].contains(&long) {
                    continue;
                }
                let given = [format!("\"--{long}\""), format!("\"--{long}=")];
                if !given.iter().any(|g| sources.contains(g.as_str())) {
                    unused.push(format!("{} --{long}", command.get_name()));
                }
            }
        }
        assert!(unused.is_empty(), "flags no test uses: {unused:?}");
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
