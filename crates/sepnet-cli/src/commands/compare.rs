//! `sepnet compare`: train several models with the same data order and settings, then one
//! table (markdown, CSV, JSON) and two plots.

use std::path::{Path, PathBuf};

use anyhow::Result;
use sepnet_data::InputScaling;
use sepnet_model::group_thousands;
use sepnet_train::plot::{Chart, Series, draw};
use sepnet_train::report::Console;
use sepnet_train::{
    EpochMetrics, RunSummary, TrainConfig, checkpoint, read_json, train, write_json,
};
use serde::Serialize;

use super::train::{TrainFlags, sanitize};
use crate::args::split_models;

/// Arguments of `sepnet compare`.
#[derive(clap::Args)]
pub struct Args {
    /// Models to compare, the first being the reference: built-in names separated by commas
    /// (`mnist-full,mnist-hybrid`); specs, which contain commas, separated by `;` or given by
    /// repeating --models.
    #[arg(long, required = true)]
    models: Vec<String>,
    /// Folder for the runs, the table and the plots.
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// Train each model with K seeds (seed, seed+1, …) and report mean ± std.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    #[command(flatten)]
    flags: TrainFlags,
}

/// One model's line of the table.
#[derive(Serialize)]
struct Row {
    model: String,
    params: u64,
    macs: u64,
    train_seconds_per_epoch: f64,
    inference_images_per_second: f64,
    best_accuracy: f64,
    best_accuracy_std: f64,
    final_test_accuracy: f64,
    final_test_accuracy_std: f64,
    repeats: usize,
    params_ratio: f64,
    macs_ratio: f64,
    speedup: f64,
    accuracy_delta: f64,
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, if values.len() > 1 { var.sqrt() } else { 0.0 })
}

/// Trains one run, or reuses it when its directory already holds the finished run of the
/// same configuration (so an interrupted `compare` picks up where it stopped).
fn run_one(
    config: &TrainConfig,
    dir: &Path,
    flags: &TrainFlags,
) -> Result<(RunSummary, Vec<EpochMetrics>)> {
    let same_config =
        read_json::<TrainConfig>(&dir.join("config.json")).is_ok_and(|c| c == *config);
    let finished = same_config && dir.join("summary.json").is_file();
    let summary = if finished {
        read_json(&dir.join("summary.json"))?
    } else {
        let resume = same_config && checkpoint::folder(dir).join("state.json").is_file();
        train(
            config,
            dir,
            resume,
            &mut Console::new(flags.style(), config.model.clone()),
        )?
    };
    Ok((summary, checkpoint::load_state(dir)?.history))
}

/// Trains every model and writes the comparison.
pub fn run(args: Args) -> Result<()> {
    let repeats = args.repeats.max(1);
    let models = split_models(&args.models);
    let mut rows: Vec<Row> = Vec::new();
    let mut curves = Vec::new();
    for model in &models {
        let mut runs = Vec::new();
        for r in 0..repeats {
            let seed = args.flags.seed + r as u64;
            let dir = if repeats == 1 {
                args.out.join(sanitize(model))
            } else {
                args.out.join(sanitize(model)).join(format!("seed-{seed}"))
            };
            runs.push(run_one(&args.flags.config(model, seed), &dir, &args.flags)?);
        }
        let (first, history) = &runs[0];
        curves.push(Series {
            name: model.chars().take(22).collect(),
            points: history
                .iter()
                .map(|m| (m.epoch as f64, m.val_accuracy))
                .collect(),
        });
        let best: Vec<f64> = runs.iter().map(|(s, _)| s.best_val_accuracy).collect();
        let last: Vec<f64> = runs.iter().map(|(s, _)| s.test_accuracy).collect();
        let epoch_seconds: Vec<f64> = runs
            .iter()
            .map(|(s, _)| s.train_seconds / s.epochs.max(1) as f64)
            .collect();
        let inference: Vec<f64> = runs
            .iter()
            .map(|(s, _)| s.inference_images_per_second)
            .collect();
        let ((best, best_std), (last, last_std)) = (mean_std(&best), mean_std(&last));
        rows.push(Row {
            model: model.clone(),
            params: first.params,
            macs: first.macs,
            train_seconds_per_epoch: mean_std(&epoch_seconds).0,
            inference_images_per_second: mean_std(&inference).0,
            best_accuracy: best,
            best_accuracy_std: best_std,
            final_test_accuracy: last,
            final_test_accuracy_std: last_std,
            repeats,
            params_ratio: 1.0,
            macs_ratio: 1.0,
            speedup: 1.0,
            accuracy_delta: 0.0,
        });
    }
    let (p0, m0, t0, a0) = (
        rows[0].params as f64,
        rows[0].macs as f64,
        rows[0].train_seconds_per_epoch,
        rows[0].final_test_accuracy,
    );
    for row in &mut rows {
        row.params_ratio = row.params as f64 / p0;
        row.macs_ratio = row.macs as f64 / m0;
        row.speedup = t0 / row.train_seconds_per_epoch.max(1e-9);
        row.accuracy_delta = row.final_test_accuracy - a0;
    }
    std::fs::create_dir_all(&args.out)?;
    write_json(&args.out.join("compare.json"), &rows)?;
    std::fs::write(args.out.join("compare.csv"), csv(&rows))?;
    let best_label = if args.flags.val_split > 0 {
        "best val acc"
    } else {
        "best test acc"
    };
    let md = markdown(&rows, best_label, &args);
    std::fs::write(args.out.join("compare.md"), &md)?;
    let chart = |title, x_label, y_label, log_x, lines| Chart {
        title,
        x_label,
        y_label,
        log_x,
        lines,
    };
    draw(
        &args.out.join("val_accuracy.png"),
        &chart("validation accuracy", "epoch", "accuracy", false, true),
        &curves,
    )?;
    let dots: Vec<Series> = rows
        .iter()
        .map(|r| Series {
            name: r.model.chars().take(22).collect(),
            points: vec![(r.macs as f64, r.final_test_accuracy)],
        })
        .collect();
    draw(
        &args.out.join("accuracy_vs_macs.png"),
        &chart(
            "test accuracy vs MACs",
            "MACs per image (log)",
            "accuracy",
            true,
            false,
        ),
        &dots,
    )?;
    if args.flags.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{md}");
    }
    Ok(())
}

fn pct(mean: f64, std: f64, repeats: usize) -> String {
    if repeats > 1 {
        format!("{:.2} ± {:.2}%", 100.0 * mean, 100.0 * std)
    } else {
        format!("{:.2}%", 100.0 * mean)
    }
}

fn markdown(rows: &[Row], best_label: &str, args: &Args) -> String {
    let f = &args.flags;
    let mut out = format!(
        "{} on {}: {} epochs, batch {}, {:?} lr {}, seed {}{}{}{}{}\n\n",
        rows.iter()
            .map(|r| r.model.as_str())
            .collect::<Vec<_>>()
            .join(" vs "),
        f.dataset,
        f.epochs,
        f.batch_size,
        f.optimizer,
        f.lr,
        f.seed,
        if f.augment { ", augmented" } else { "" },
        match f.input_scaling {
            InputScaling::Standardize => String::new(),
            other => format!(", {other} inputs"),
        },
        match f.depthwise_fans {
            Some(fans) => format!(", {fans} depthwise fans"),
            None => String::new(),
        },
        if args.repeats > 1 {
            format!(", {} seeds", args.repeats)
        } else {
            String::new()
        }
    );
    out += &format!(
        "| model | params | MACs | s/epoch | inference img/s | {best_label} | final test acc | × params | × MACs | × speed | Δ acc |\n"
    );
    out += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {:.1} | {:.0} | {} | {} | {:.3} | {:.3} | {:.2} | {:+.2} pt |\n",
            r.model,
            group_thousands(r.params),
            group_thousands(r.macs),
            r.train_seconds_per_epoch,
            r.inference_images_per_second,
            pct(r.best_accuracy, r.best_accuracy_std, r.repeats),
            pct(r.final_test_accuracy, r.final_test_accuracy_std, r.repeats),
            r.params_ratio,
            r.macs_ratio,
            r.speedup,
            100.0 * r.accuracy_delta
        );
    }
    out
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "model,params,macs,train_seconds_per_epoch,inference_images_per_second,best_accuracy,best_accuracy_std,final_test_accuracy,final_test_accuracy_std,params_ratio,macs_ratio,speedup,accuracy_delta\n",
    );
    for r in rows {
        out += &format!(
            "\"{}\",{},{},{:.3},{:.1},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.4},{:.6}\n",
            r.model,
            r.params,
            r.macs,
            r.train_seconds_per_epoch,
            r.inference_images_per_second,
            r.best_accuracy,
            r.best_accuracy_std,
            r.final_test_accuracy,
            r.final_test_accuracy_std,
            r.params_ratio,
            r.macs_ratio,
            r.speedup,
            r.accuracy_delta
        );
    }
    out
}
