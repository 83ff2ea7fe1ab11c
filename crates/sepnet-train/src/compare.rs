//! Several models trained with the same data order and settings, then one table (markdown,
//! CSV, JSON) and two charts. Every model is checked against the dataset before the first
//! one trains; each run says whether it was trained, resumed or reused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::{EpochMetrics, RunSummary};
pub mod int8;

use crate::distributed::{Collective, Solo};
use crate::plot::{Chart, Kind, Series, render};
use crate::record::{Run, RunConfig};
use crate::report::Reporter;
use crate::resume::ResumeRequest;
use sepnet_model::Summary;

use crate::prepare::DatasetInfo;
use crate::{TrainConfig, TrainError, checkpoint, launch, prepare};

/// What a distilled run's label and run folder add to its model's name.
pub const DISTILLED: &str = "distilled";

/// The label of `model`'s runs distilled from a teacher.
///
/// ```
/// assert_eq!(sepnet_train::compare::distilled_label("mnist-hybrid"), "mnist-hybrid distilled");
/// ```
pub fn distilled_label(model: &str) -> String {
    format!("{model} {DISTILLED}")
}

/// One training of a comparison: a model with a seed, in its own run directory.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// The model as the user named it.
    pub model: String,
    /// Its settings.
    pub config: TrainConfig,
    /// Its run directory.
    pub dir: PathBuf,
}

/// What happened to a planned run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Trained from the start.
    Trained,
    /// Continued from its checkpoint.
    Resumed,
    /// Already finished with the same settings: its results were read back.
    Reused,
}

/// A finished run of a comparison.
pub struct Finished {
    /// What was done.
    pub outcome: Outcome,
    /// Its `summary.json`.
    pub summary: RunSummary,
    /// Its per-epoch metrics.
    pub history: Vec<EpochMetrics>,
}

/// Checks every planned run against the data (network fits, memory, settings) before any
/// training starts; the dataset is loaded once. Returns each run's multiply-adds per image (for
/// the time estimates) and what the data are (an earlier run is reused only if it was trained
/// on the same).
pub fn check(runs: &[PlannedRun]) -> Result<(Vec<u64>, DatasetInfo), TrainError> {
    let Some(first) = runs.first() else {
        return Err(TrainError::Config("no model to compare".into()));
    };
    let data = prepare(&first.config)?;
    let macs = |spec: &sepnet_model::spec::NetworkSpec| {
        Summary::of(spec)
            .map(|s| s.macs)
            .map_err(|e| TrainError::Config(e.message))
    };
    let mut all = Vec::with_capacity(runs.len());
    for run in runs {
        let (spec, _) = prepare::check_model(&run.config, &data.dataset).map_err(|e| match e {
            TrainError::Config(text) => TrainError::Config(format!("{}: {text}", run.model)),
            other => other,
        })?;
        all.push(macs(&spec)?);
    }
    Ok((all, data.info))
}

/// The settings in which two configurations differ, as `key: ours (run's: theirs)`.
pub fn config_differences(wanted: &TrainConfig, found: &TrainConfig) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(wanted).expect("configs serialise"),
        serde_json::to_value(found).expect("configs serialise"),
    );
    let mut out = Vec::new();
    differences_in(&a, &b, &mut out);
    out
}

/// The leaves in which two JSON values differ, each as `--flag ours (the run's: theirs)`.
fn differences_in(ours: &serde_json::Value, theirs: &serde_json::Value, out: &mut Vec<String>) {
    let (Some(a), Some(b)) = (ours.as_object(), theirs.as_object()) else {
        return;
    };
    for (key, value) in a {
        let other = b.get(key).unwrap_or(&serde_json::Value::Null);
        if value == other {
            continue;
        }
        if value.is_object() && other.is_object() {
            differences_in(value, other, out);
        } else {
            out.push(format!(
                "{} {} (the run's: {})",
                crate::resume::flag_of(key),
                shown(value),
                shown(other)
            ));
        }
    }
}

/// A setting as a user would type it (`none` for an absent one, strings unquoted).
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "none".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Refuses an earlier run whose settings or data differ from the planned ones.
fn check_reusable(
    planned: &PlannedRun,
    saved: &RunConfig,
    data: Option<&DatasetInfo>,
) -> Result<(), TrainError> {
    let differences = config_differences(&planned.config, &saved.config);
    if !differences.is_empty() {
        return Err(TrainError::Config(format!(
            "{} holds a run of {} with other settings: {}; choose another --out, or delete it",
            planned.dir.display(),
            planned.model,
            differences.join(", ")
        )));
    }
    check_same_teacher(planned, saved)?;
    let Some(now) = data else {
        return Ok(());
    };
    let trained_on: DatasetInfo = crate::run::read_json(&planned.dir.join(crate::run::DATASET))?;
    let differences = trained_on.differences(now);
    if differences.is_empty() {
        return Ok(());
    }
    Err(TrainError::Config(format!(
        "{} holds a run of {} trained on other data: {}; choose another --out, or pass --fresh \
         after deleting it",
        planned.dir.display(),
        planned.model,
        differences.join("; ")
    )))
}

/// Refuses an earlier distilled run whose teacher has been trained again since: its results
/// would be those of another teacher's student.
fn check_same_teacher(planned: &PlannedRun, saved: &RunConfig) -> Result<(), TrainError> {
    let Some(distill) = &planned.config.distill else {
        return Ok(());
    };
    let teacher = Run::open(&distill.teacher)?;
    let (_, now) = crate::source::chosen_weights("--teacher", &teacher, distill.teacher_weights)?;
    if saved.teacher.as_ref() == Some(&now) {
        return Ok(());
    }
    Err(TrainError::Config(format!(
        "{} holds a run of {} distilled from other weights of {} than those it holds now (the \
         teacher was trained again); delete the student's folder, or pass --fresh after deleting both",
        planned.dir.display(),
        planned.model,
        distill.teacher.display()
    )))
}

/// Seconds the runs not yet done should take, from the time per epoch and per MAC of those
/// done (`None` before the first): rough, since separable layers cost more time per MAC.
pub fn remaining_seconds(runs: &[PlannedRun], macs: &[u64], done: &[Finished]) -> Option<f64> {
    let work = |i: usize| runs[i].config.epochs as f64 * macs[i] as f64;
    let trained: Vec<usize> = (0..done.len())
        .filter(|&i| done[i].outcome != Outcome::Reused)
        .collect();
    let seconds: f64 = trained.iter().map(|&i| done[i].summary.train_seconds).sum();
    let worked: f64 = trained.iter().map(|&i| work(i)).sum();
    (worked > 0.0).then(|| seconds / worked * (done.len()..runs.len()).map(work).sum::<f64>())
}

/// Trains one planned run, resumes it, or reuses it when it already finished with the same
/// settings and, when `data` is given, the same data. `fresh` refuses to reuse or resume
/// anything: an existing run is an error.
pub fn run_one(
    planned: &PlannedRun,
    fresh: bool,
    data: Option<&DatasetInfo>,
    reporter: &mut dyn Reporter,
) -> Result<Finished, TrainError> {
    run_one_with(planned, fresh, data, reporter, &Solo)?.ok_or_else(|| {
        TrainError::Config("only rank 0 of a data-parallel job has the run's results".into())
    })
}

/// [`run_one`] as one process of the data-parallel job `world`: rank 0 returns the finished
/// run, the other processes `None` once they have done their part.
pub fn run_one_with(
    planned: &PlannedRun,
    fresh: bool,
    data: Option<&DatasetInfo>,
    reporter: &mut dyn Reporter,
    world: &dyn Collective,
) -> Result<Option<Finished>, TrainError> {
    let dir = &planned.dir;
    let existing = dir.join(crate::run::CONFIG).exists();
    let (outcome, summary) = if !existing || fresh {
        (
            Outcome::Trained,
            launch::train_with(&planned.config, dir, reporter, world)?,
        )
    } else {
        check_reusable(planned, &RunConfig::read(dir)?, data)?;
        match Run::open(dir)?.summary()? {
            Some(summary) => (Outcome::Reused, Some(summary)),
            None => (
                Outcome::Resumed,
                launch::resume_with(dir, &ResumeRequest::unchanged(), reporter, world)?,
            ),
        }
    };
    let Some(summary) = summary.filter(|_| world.rank() == 0) else {
        return Ok(None);
    };
    let state = checkpoint::load_state(dir, &RunConfig::read(dir)?.run_id)?;
    let history = state.map(|s| s.history).unwrap_or_default();
    Ok(Some(Finished {
        outcome,
        summary,
        history,
    }))
}

/// One model's line of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The model as named.
    pub model: String,
    /// Parameters of the network as trained.
    pub params: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Mean training seconds per epoch.
    pub train_seconds_per_epoch: f64,
    /// Test-set inference throughput.
    pub inference_images_per_second: f64,
    /// Best validation accuracy (mean over seeds).
    pub best_val_accuracy: f64,
    /// Test accuracy of the best validation epoch's model (mean over seeds).
    pub test_accuracy_at_best_epoch: f64,
    /// Its standard deviation over seeds.
    pub test_accuracy_at_best_epoch_std: f64,
    /// Test accuracy after the last epoch (mean over seeds).
    pub final_test_accuracy: f64,
    /// Its standard deviation over seeds.
    pub final_test_accuracy_std: f64,
    /// Seeds trained.
    pub repeats: usize,
    /// Parameters relative to the first model.
    pub params_ratio: f64,
    /// MACs relative to the first model.
    pub macs_ratio: f64,
    /// Training speed relative to the first model (epoch time ratio, >1 = faster).
    pub speedup: f64,
    /// Final test accuracy minus the first model's.
    pub accuracy_delta: f64,
    /// With a teacher (`compare --distill-from`): the final test accuracy of this model
    /// distilled from it (mean over seeds); `None` for the teacher and without one.
    pub distilled_test_accuracy: Option<f64>,
    /// Its standard deviation over seeds.
    pub distilled_test_accuracy_std: Option<f64>,
    /// Distilled minus plain final test accuracy.
    pub distillation_gain: Option<f64>,
    /// Fraction of test images on which the distilled model predicts the teacher's class.
    pub teacher_agreement: Option<f64>,
    /// Mean training seconds per epoch distilled (the teacher's forward pass included).
    pub distilled_train_seconds_per_epoch: Option<f64>,
    /// With `--int8`: final test accuracy quantized with one weight scale per tensor (mean
    /// over seeds).
    pub int8_per_tensor_test_accuracy: Option<f64>,
    /// Its standard deviation over seeds.
    pub int8_per_tensor_test_accuracy_std: Option<f64>,
    /// With `--int8`: final test accuracy quantized with one weight scale per output channel.
    pub int8_per_channel_test_accuracy: Option<f64>,
    /// Its standard deviation over seeds.
    pub int8_per_channel_test_accuracy_std: Option<f64>,
    /// The int8 ONNX model's size over the float one's.
    pub int8_size_ratio: Option<f64>,
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, if values.len() > 1 { var.sqrt() } else { 0.0 })
}

/// The table rows: one per model, from its runs (one per seed); ratios against the first.
pub fn rows(models: &[(String, Vec<&RunSummary>)]) -> Vec<Row> {
    let mut rows: Vec<Row> = models
        .iter()
        .map(|(model, runs)| row(model, runs))
        .collect();
    if let Some(first) = rows.first().cloned() {
        for r in &mut rows {
            r.params_ratio = r.params as f64 / first.params.max(1) as f64;
            // 0 (shown n/a) when either side is a module of a program's own (MACs uncounted).
            r.macs_ratio = match (r.macs, first.macs) {
                (0, _) | (_, 0) => 0.0,
                (ours, theirs) => ours as f64 / theirs as f64,
            };
            r.speedup = first.train_seconds_per_epoch / r.train_seconds_per_epoch.max(1e-9);
            r.accuracy_delta = r.final_test_accuracy - first.final_test_accuracy;
        }
    }
    rows
}

fn row(model: &str, runs: &[&RunSummary]) -> Row {
    let stat = |f: fn(&RunSummary) -> f64| mean_std(&runs.iter().map(|s| f(s)).collect::<Vec<_>>());
    let (at_best, at_best_std) = stat(|s| s.test_accuracy_at_best_epoch);
    let (last, last_std) = stat(|s| s.test_accuracy);
    Row {
        model: model.into(),
        params: runs[0].params,
        macs: runs[0].macs,
        train_seconds_per_epoch: stat(|s| s.train_seconds / s.epochs.max(1) as f64).0,
        inference_images_per_second: stat(|s| s.inference_images_per_second).0,
        best_val_accuracy: stat(|s| s.best_val_accuracy).0,
        test_accuracy_at_best_epoch: at_best,
        test_accuracy_at_best_epoch_std: at_best_std,
        final_test_accuracy: last,
        final_test_accuracy_std: last_std,
        repeats: runs.len(),
        params_ratio: 1.0,
        macs_ratio: 1.0,
        speedup: 1.0,
        accuracy_delta: 0.0,
        distilled_test_accuracy: None,
        distilled_test_accuracy_std: None,
        distillation_gain: None,
        teacher_agreement: None,
        distilled_train_seconds_per_epoch: None,
        int8_per_tensor_test_accuracy: None,
        int8_per_tensor_test_accuracy_std: None,
        int8_per_channel_test_accuracy: None,
        int8_per_channel_test_accuracy_std: None,
        int8_size_ratio: None,
    }
}

/// Fills the distillation columns of `rows` from each student's distilled runs (`distilled`,
/// by model name, one run per seed).
pub fn add_distilled(rows: &mut [Row], distilled: &[(String, Vec<&RunSummary>)]) {
    for (model, runs) in distilled {
        let Some(row) = rows.iter_mut().find(|r| &r.model == model) else {
            continue;
        };
        let taught = self::row(model, runs);
        let agreement: Vec<f64> = runs
            .iter()
            .filter_map(|s| s.teacher.as_ref().map(|t| t.agreement))
            .collect();
        row.distilled_test_accuracy = Some(taught.final_test_accuracy);
        row.distilled_test_accuracy_std = Some(taught.final_test_accuracy_std);
        row.distillation_gain = Some(taught.final_test_accuracy - row.final_test_accuracy);
        row.teacher_agreement = (!agreement.is_empty()).then(|| mean_std(&agreement).0);
        row.distilled_train_seconds_per_epoch = Some(taught.train_seconds_per_epoch);
    }
}

/// Writes `compare.json`, `compare.csv`, `compare.md`, `val_accuracy.png` and
/// `accuracy_vs_macs.png` into `out`; returns their paths.
pub fn write_outputs(
    out: &Path,
    table: &Table,
    markdown: &str,
    curves: &[Series],
) -> Result<Vec<PathBuf>, TrainError> {
    let rows = &table.rows;
    std::fs::create_dir_all(out).map_err(|e| crate::run::io_error(out, e))?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in rows {
        csv.serialize(r).expect("rows serialise");
    }
    let distilled = rows.iter().enumerate().filter_map(|(k, r)| {
        r.distilled_test_accuracy.map(|a| Series {
            name: legend_name(&r.model, true),
            points: vec![(r.macs as f64, a)],
            variant_of: Some(k),
        })
    });
    let dots: Vec<Series> = rows
        .iter()
        .map(|r| Series {
            name: legend_name(&r.model, false),
            points: vec![(r.macs as f64, r.final_test_accuracy)],
            variant_of: None,
        })
        .chain(distilled)
        .chain(int8::series(rows))
        .collect();
    let chart = |title, x_label, kind| Chart {
        title,
        x_label,
        y_label: "accuracy",
        kind,
        percent: true,
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("compare.json", crate::run::to_json(table).into_bytes()),
        ("compare.csv", csv.into_inner().expect("in memory")),
        ("compare.md", markdown.as_bytes().to_vec()),
        (
            "val_accuracy.png",
            render(
                &chart("Validation accuracy per epoch", "epoch", Kind::Epochs),
                curves,
            )?,
        ),
        (
            "accuracy_vs_macs.png",
            render(
                &chart(
                    "Final test accuracy against multiply-adds per image",
                    "MACs per image",
                    Kind::Scatter,
                ),
                &dots,
            )?,
        ),
    ];
    files
        .into_iter()
        .map(|(name, bytes)| {
            let path = out.join(name);
            sepnet_data::atomic::write(&path, &bytes)
                .map_err(|e| crate::run::io_error(&path, e))?;
            Ok(path)
        })
        .collect()
}

/// A model's name in a chart's legend: its first 28 characters, or 18 and ` distilled`.
///
/// ```
/// use sepnet_train::compare::legend_name;
/// assert_eq!(legend_name("mnist-depthwise-literal", true), "mnist-depthwise-li distilled");
/// ```
pub fn legend_name(model: &str, distilled: bool) -> String {
    if distilled {
        let short: String = model.chars().take(18).collect();
        distilled_label(&short)
    } else {
        model.chars().take(28).collect()
    }
}

/// `compare.json`: the table with what produced it.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    /// The line above the table.
    pub title: String,
    /// The models, the first being the reference.
    pub models: Vec<String>,
    /// Seeds per model.
    pub repeats: usize,
    /// The settings every run shared (the first run's; `model` and `seed` vary).
    pub settings: TrainConfig,
    /// One row per model.
    pub rows: Vec<Row>,
    /// With `--distill-from`: the teacher (a model of the table) and how it taught.
    pub distillation: Option<(String, crate::Distillation)>,
}

impl Table {
    /// The table of `per_model` (each model's runs, one per seed) trained with `settings`.
    pub fn new(
        models: &[String],
        repeats: usize,
        settings: &TrainConfig,
        per_model: &[(String, Vec<&RunSummary>)],
    ) -> Table {
        let processes = (per_model.iter())
            .flat_map(|(_, runs)| runs.iter())
            .filter_map(|s| s.distributed.as_ref().map(|d| d.processes))
            .max();
        let mut title = title(models, settings, repeats);
        if let Some(n) = processes {
            title += &format!(
                "; data-parallel on {n} processes (batch {} in all)",
                settings.batch_size
            );
        }
        Table {
            title,
            models: models.to_vec(),
            repeats,
            settings: settings.clone(),
            rows: rows(per_model),
            distillation: None,
        }
    }

    /// Adds the distilled runs of each student (`distilled`, by model name) taught by
    /// `teacher` with `how`: columns of the table, words of the title.
    pub fn with_distilled(
        mut self,
        teacher: &str,
        how: &crate::Distillation,
        distilled: &[(String, Vec<&RunSummary>)],
    ) -> Table {
        add_distilled(&mut self.rows, distilled);
        self.title += &format!(
            "; each student also distilled from {teacher} ({} weights, temperature {}, \
             distillation weight {})",
            serde_json::to_value(how.teacher_weights).map_or(String::new(), |v| shown(&v)),
            how.temperature,
            how.distill_weight
        );
        self.distillation = Some((teacher.into(), how.clone()));
        self
    }
}

/// The line above the table: what was compared, on what, how — every setting that differs
/// from the defaults is named.
pub fn title(models: &[String], config: &TrainConfig, repeats: usize) -> String {
    let defaults = TrainConfig::default();
    let mut settings = vec![
        format!("{} epochs", config.epochs),
        format!("batch {}", config.batch_size),
        format!("{} lr {}", config.optimizer.name(), config.lr),
        format!("seed {}", config.seed),
    ];
    if let Some(steps) = config.max_steps_per_epoch {
        settings.push(format!("at most {steps} steps per epoch"));
    }
    if config.optimizer == crate::OptimizerKind::Sgd {
        let nesterov = if config.nesterov { " (Nesterov)" } else { "" };
        settings.push(format!("momentum {}{nesterov}", config.momentum));
    }
    if config.schedule != defaults.schedule {
        settings.push(format!("schedule {:?}", config.schedule).to_lowercase());
    }
    if config.weight_decay != 0.0 {
        settings.push(format!("weight decay {}", config.weight_decay));
    }
    if config.label_smoothing != 0.0 {
        settings.push(format!("label smoothing {}", config.label_smoothing));
    }
    if let Some(clip) = config.grad_clip {
        settings.push(format!("gradient clip {clip}"));
    }
    if let Some(patience) = config.early_stopping {
        settings.push(format!("early stopping after {patience} epochs"));
    }
    if config.backend != defaults.backend {
        settings.push(format!("{} backend", config.backend));
    }
    if config.augment {
        settings.push("augmented".into());
    }
    if config.input_scaling != sepnet_data::InputScaling::Standardize {
        settings.push(format!("{} inputs", config.input_scaling));
    }
    if let Some(fans) = config.model_options.depthwise_fans {
        settings.push(format!("{fans} depthwise fans"));
    }
    if repeats > 1 {
        settings.push(format!("{repeats} seeds"));
    }
    settings.push(format!("validation: {}", config.validation));
    format!(
        "{} on {}: {}",
        models.join(" vs "),
        config.dataset,
        settings.join(", ")
    )
}

fn pct(mean: f64, std: f64, repeats: usize) -> String {
    if repeats > 1 {
        format!("{:.2} ± {:.2}%", 100.0 * mean, 100.0 * std)
    } else {
        format!("{:.2}%", 100.0 * mean)
    }
}

/// The columns a table with distilled runs adds.
const DISTILLED_COLUMNS: [&str; 4] = [
    "distilled final test acc",
    "Δ distilled",
    "agrees with teacher",
    "s/epoch distilled",
];

/// A row's cells under [`DISTILLED_COLUMNS`] (dashes for the teacher).
fn distilled_cells(r: &Row) -> Vec<String> {
    let Some(accuracy) = r.distilled_test_accuracy else {
        return vec!["—".into(); DISTILLED_COLUMNS.len()];
    };
    let std = r.distilled_test_accuracy_std.unwrap_or(0.0);
    vec![
        pct(accuracy, std, r.repeats),
        format!("{:+.2} pt", 100.0 * r.distillation_gain.unwrap_or(0.0)),
        r.teacher_agreement.map_or("—".into(), |a| pct(a, 0.0, 1)),
        r.distilled_train_seconds_per_epoch
            .map_or("—".into(), |s| format!("{s:.1}")),
    ]
}

/// The comparison as a markdown table under its `title`.
pub fn markdown(title: &str, rows: &[Row]) -> String {
    use crate::table::{Style, draw};
    use sepnet_model::group_thousands;
    let mut header = vec![
        "model",
        "params",
        "MACs",
        "s/epoch",
        "inference img/s",
        "best val acc",
        "test acc (best epoch)",
        "final test acc",
        "× params",
        "× MACs",
        "× speed",
        "Δ acc",
    ];
    let distilled = rows.iter().any(|r| r.distilled_test_accuracy.is_some());
    if distilled {
        header.extend(DISTILLED_COLUMNS);
    }
    let quantized = rows.iter().any(|r| r.int8_size_ratio.is_some());
    if quantized {
        header.extend(int8::COLUMNS);
    }
    let body = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.model.clone(),
                group_thousands(r.params),
                // 0: a module of a program's own, whose MACs sepnet cannot count.
                if r.macs == 0 {
                    "n/a".into()
                } else {
                    group_thousands(r.macs)
                },
                format!("{:.1}", r.train_seconds_per_epoch),
                format!("{:.0}", r.inference_images_per_second),
                pct(r.best_val_accuracy, 0.0, 1),
                pct(
                    r.test_accuracy_at_best_epoch,
                    r.test_accuracy_at_best_epoch_std,
                    r.repeats,
                ),
                pct(r.final_test_accuracy, r.final_test_accuracy_std, r.repeats),
                format!("{:.3}", r.params_ratio),
                if r.macs_ratio == 0.0 {
                    "n/a".into()
                } else {
                    format!("{:.3}", r.macs_ratio)
                },
                format!("{:.2}", r.speedup),
                format!("{:+.2} pt", 100.0 * r.accuracy_delta),
            ];
            if distilled {
                cells.extend(distilled_cells(r));
            }
            if quantized {
                cells.extend(int8::cells(r));
            }
            cells
        })
        .collect();
    format!(
        "{title}\n\n{}",
        draw(Style::Markdown, &header, &header[1..], body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_settings_are_named_as_flags() {
        let ours = TrainConfig::default();
        let mut theirs = TrainConfig {
            lr: 0.01,
            max_steps_per_epoch: Some(40),
            ..Default::default()
        };
        theirs.model_options.alpha = 0.5;
        let named = config_differences(&ours, &theirs);
        assert_eq!(
            named,
            [
                "--lr 0.001 (the run's: 0.01)",
                "--max-steps none (the run's: 40)",
                "--alpha 1.0 (the run's: 0.5)"
            ]
        );
        assert!(config_differences(&ours, &ours).is_empty());
    }
}
