//! A run's per-epoch record on disk — `metrics.csv`, `metrics.json`, `loss.png`,
//! `accuracy.png` — rewritten whole (atomically) after every epoch and on every resume, so a
//! file lost to a crash or a full disk comes back.

use crate::TrainError;
use crate::metrics::{EpochMetrics, to_csv};
use crate::plot::{Chart, Kind, Series, render};
use crate::run::{METRICS_CSV, METRICS_JSON, RunDir};

/// Writes every per-epoch file of `run` from `history` (nothing when it is empty).
pub fn write(run: &RunDir, history: &[EpochMetrics]) -> Result<(), TrainError> {
    if history.is_empty() {
        return Ok(());
    }
    run.write_bytes(METRICS_CSV, &to_csv(history))?;
    run.write_json(METRICS_JSON, &history)?;
    let series = |name: &str, value: fn(&EpochMetrics) -> f64| Series {
        name: name.into(),
        points: history.iter().map(|m| (m.epoch as f64, value(m))).collect(),
    };
    let chart = |title, y_label, percent| Chart {
        title,
        x_label: "epoch",
        y_label,
        kind: Kind::Epochs,
        percent,
    };
    let loss = [
        series("train", |m| m.train_loss),
        series("validation", |m| m.val_loss),
    ];
    let loss_chart = chart("Loss per epoch", "cross-entropy loss", false);
    run.write_bytes("loss.png", &render(&loss_chart, &loss)?)?;
    let accuracy = [
        series("train", |m| m.train_accuracy),
        series("validation", |m| m.val_accuracy),
    ];
    let accuracy_chart = chart("Accuracy per epoch", "accuracy", true);
    run.write_bytes("accuracy.png", &render(&accuracy_chart, &accuracy)?)
}
