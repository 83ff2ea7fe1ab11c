//! A run's record of its progress on disk — `metrics.csv`, `metrics.json`, `loss.png`,
//! `accuracy.png`, the TensorBoard event file — rewritten whole (atomically) after every epoch
//! and on every resume, so a file lost to a crash or a full disk comes back.

use crate::TrainError;
use crate::checkpoint::TrainState;
use crate::metrics::{EpochMetrics, to_csv};
use crate::plot::{Chart, Kind, Series, render};
use crate::record::RunConfig;
use crate::run::{METRICS_CSV, METRICS_JSON, RunDir, to_json};
use crate::tensorboard;

/// Writes every progress file of `run` from its checkpoint `state`.
pub fn write(
    run: &RunDir,
    record: &RunConfig,
    state: &TrainState,
    steps_per_epoch: usize,
) -> Result<(), TrainError> {
    if !run.writes() {
        return Ok(());
    }
    let settings = format!("```json\n{}\n```", to_json(record));
    let events = tensorboard::events(
        record.created,
        &settings,
        &state.steps_log,
        &state.history,
        steps_per_epoch,
    );
    run.write_bytes(tensorboard::EVENTS, &events)?;
    write_epochs(run, &state.history)
}

/// `metrics.csv`, `metrics.json` and the charts (nothing before the first epoch).
fn write_epochs(run: &RunDir, history: &[EpochMetrics]) -> Result<(), TrainError> {
    if history.is_empty() {
        return Ok(());
    }
    run.write_bytes(METRICS_CSV, &to_csv(history))?;
    run.write_json(METRICS_JSON, &history)?;
    let series = |name: &str, value: fn(&EpochMetrics) -> f64| Series {
        name: name.into(),
        points: history.iter().map(|m| (m.epoch as f64, value(m))).collect(),
        variant_of: None,
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
    run.write_bytes(crate::run::LOSS_PNG, &render(&loss_chart, &loss)?)?;
    let accuracy = [
        series("train", |m| m.train_accuracy),
        series("validation", |m| m.val_accuracy),
    ];
    let accuracy_chart = chart("Accuracy per epoch", "accuracy", true);
    run.write_bytes(
        crate::run::ACCURACY_PNG,
        &render(&accuracy_chart, &accuracy)?,
    )
}
