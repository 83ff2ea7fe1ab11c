//! `sepnet compare`: train several models with the same data order and settings, then one
//! table (markdown, CSV, JSON) and two charts. The work is the library's
//! (`sepnet_train::compare`); this command plans, reports progress and prints.

use std::path::PathBuf;

use anyhow::Result;
use sepnet_train::compare::{self, Finished, PlannedRun};
use sepnet_train::plot::Series;
use sepnet_train::report::{Console, Style};

use crate::args::{OutputArgs, TrainArgs, sanitize, split_models};
use crate::stop;

/// Arguments of `sepnet compare`.
#[derive(clap::Args)]
#[command(after_help = "\
Example:
  sepnet compare --models mnist-full,mnist-separable,mnist-hybrid --dataset mnist --epochs 5

Run again with the same flags to pick up where an interrupted compare stopped: finished runs
are reused, interrupted ones resumed.")]
pub struct Args {
    /// Models to compare, the first being the reference: built-in names separated by commas
    /// (`mnist-full,mnist-hybrid`); specs, which contain commas, separated by `;` or given by
    /// repeating --models.
    #[arg(long, required = true)]
    models: Vec<String>,
    /// Folder for the runs, the table and the charts.
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// Train each model with K seeds (seed, seed+1, …) and report mean ± std.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    repeats: u64,
    /// Train every model from the start: an existing run in --out is an error, not reused.
    #[arg(long)]
    fresh: bool,
    #[command(flatten)]
    train: TrainArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// `42 s`, `7 min`, `2.5 h`.
fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

fn plan(args: &Args, models: &[String]) -> Result<Vec<PlannedRun>> {
    let mut runs = Vec::new();
    for model in models {
        for r in 0..args.repeats {
            let seed = args.train.optim.seed + r;
            let dir = args.out.join(sanitize(model));
            let dir = if args.repeats == 1 {
                dir
            } else {
                dir.join(format!("seed-{seed}"))
            };
            let config = args.train.config(model, seed)?;
            runs.push(PlannedRun {
                model: model.clone(),
                config,
                dir,
            });
        }
    }
    Ok(runs)
}

/// Checks every model, trains each in turn, and writes the comparison.
pub fn run(args: Args) -> Result<()> {
    let models = split_models(&args.models);
    let runs = plan(&args, &models)?;
    let macs = compare::check(&runs)?;
    let style = args.output.style();
    let mut finished: Vec<Finished> = Vec::new();
    for (k, planned) in runs.iter().enumerate() {
        let label = format!("[{}/{}] {}", k + 1, runs.len(), planned.model);
        let mut reporter = Console::new(style, label.clone()).with_stop_flag(stop::flag());
        let done = compare::run_one(planned, args.fresh, &mut reporter)?;
        let outcome = done.outcome;
        finished.push(done);
        if style == Style::Human {
            let left = compare::remaining_seconds(&runs, &macs, &finished)
                .filter(|_| k + 1 < runs.len())
                .map(|s| {
                    let left = duration(s);
                    format!("; about {left} left for the other runs (estimated from their MACs)")
                })
                .unwrap_or_default();
            eprintln!("{label}: {outcome:?} — {}{left}", planned.dir.display());
        }
    }
    let per_model: Vec<(String, Vec<&sepnet_train::RunSummary>)> = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let seeds = args.repeats as usize;
            (
                m.clone(),
                finished[i * seeds..(i + 1) * seeds]
                    .iter()
                    .map(|f| &f.summary)
                    .collect(),
            )
        })
        .collect();
    let rows = compare::rows(&per_model);
    let title = compare::title(&models, &runs[0].config, args.repeats as usize);
    let markdown = compare::markdown(&title, &rows);
    let curves: Vec<Series> = models
        .iter()
        .enumerate()
        .map(|(i, m)| Series {
            name: m.chars().take(28).collect(),
            points: finished[i * args.repeats as usize]
                .history
                .iter()
                .map(|e| (e.epoch as f64, e.val_accuracy))
                .collect(),
        })
        .collect();
    let files = compare::write_outputs(&args.out, &rows, &markdown, &curves)?;
    match style {
        Style::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Style::Human => print!("{markdown}"),
        Style::Quiet => {}
    }
    if style == Style::Human {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        eprintln!("written: {}", names.join(", "));
    }
    Ok(())
}
