//! The training loop: epochs of seeded batches, Adam/SGD steps under a schedule, evaluation,
//! an atomic checkpoint after every epoch, exact resume, and a stop on a non-finite loss.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use sepnet_data::{BatchConfig, Batches, Dataset, DatasetKind, Locator, Normalization, Split};
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Backend, ModelOptions, Network, Summary, resolve_model};

use crate::checkpoint::{self, TrainState};
use crate::config::TrainConfig;
use crate::evaluate::{Evaluation, evaluate};
use crate::metrics::{EpochMetrics, RunSummary, to_csv};
use crate::report::Reporter;
use crate::{TrainError, io_error, optimizer, plot};

/// How often (in steps) the running loss is read back for the progress display and the
/// non-finite check; reading it every step would force a device sync per step.
const READ_EVERY: usize = 20;

/// What `predict` needs to know about the training data: written to `dataset.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DatasetInfo {
    /// Dataset name.
    pub name: String,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// `[h, w, c]` of the images the model takes.
    pub image_shape: [usize; 3],
    /// Normalisation applied to every image.
    pub normalization: Normalization,
}

/// Everything a run needs before its first step.
pub struct Prepared {
    /// The dataset as loaded.
    pub dataset: Dataset,
    /// The network to train.
    pub spec: NetworkSpec,
    /// Normalisation applied to every batch.
    pub norm: Normalization,
    /// With `val_split > 0`: (train minus the hold-out, the hold-out). Without, training uses
    /// `dataset.train` as it is and validation the test split.
    pub held_out: Option<(Split, Split)>,
    /// Inference device.
    pub device: Device,
}

/// Loads the data and resolves the model for `config`.
pub fn prepare(config: &TrainConfig) -> Result<Prepared, TrainError> {
    config.validate().map_err(TrainError::Config)?;
    let backend: Backend = config.backend.parse().map_err(TrainError::Config)?;
    let device = backend.device().map_err(TrainError::Config)?;
    let kind: DatasetKind = config.dataset.parse().map_err(TrainError::Config)?;
    let locator = Locator {
        data_dir: config.data_dir.as_ref().map(Into::into),
        offline: false,
        progress: true,
    };
    let dataset = locator.load(&kind)?;
    let options = ModelOptions {
        alpha: config.alpha,
        depthwise_fans: config.depthwise_fans,
        classes: Some(dataset.classes.len()),
        input: Some(dataset.image_shape),
        ..Default::default()
    };
    let spec =
        resolve_model(&config.model, &options).map_err(|e| TrainError::Config(e.to_string()))?;
    let norm = Normalization::for_dataset(config.input_scaling, &dataset);
    let held_out = if config.val_split > 0 {
        Some(
            dataset
                .validation_split(config.val_split, config.seed)
                .map_err(TrainError::Config)?,
        )
    } else {
        None
    };
    Ok(Prepared {
        dataset,
        spec,
        norm,
        held_out,
        device,
    })
}

/// Mixes an epoch into the seed for burn's device RNG (dropout), so that each epoch's masks
/// depend only on (seed, epoch) and a resumed run draws exactly what an unbroken one would.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Trains `config` into `run_dir`; with `resume`, continues from its last checkpoint.
pub fn train(
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    reporter: &mut dyn Reporter,
) -> Result<RunSummary, TrainError> {
    let prepared = prepare(config)?;
    let Prepared {
        dataset,
        spec,
        norm,
        held_out,
        device,
    } = &prepared;
    let (train, eval_split) = match held_out {
        Some((train, validation)) => (train, validation),
        None => (&dataset.train, &dataset.test),
    };
    let train_device = device.clone().autodiff();
    let shape = dataset.image_shape;
    let classes = dataset.classes.len();

    let config_path = run_dir.join("config.json");
    let state = if resume {
        let saved: TrainConfig = read_json(&config_path)?;
        let comparable = TrainConfig {
            epochs: config.epochs,
            ..saved.clone()
        };
        if comparable != *config {
            return Err(TrainError::Config(format!(
                "{} was trained with other settings; resume takes the same flags (only --epochs may grow)",
                config_path.display()
            )));
        }
        Some(checkpoint::load_state(run_dir)?)
    } else {
        if checkpoint::folder(run_dir).join("state.json").exists() {
            return Err(TrainError::Config(format!(
                "{} already holds a run; pass --resume {} to continue it, or choose another --out",
                run_dir.display(),
                run_dir.display()
            )));
        }
        None
    };
    std::fs::create_dir_all(run_dir).map_err(|e| io_error(run_dir, e))?;
    write_json(&config_path, config)?;
    let info = DatasetInfo {
        name: dataset.name.clone(),
        classes: dataset.classes.clone(),
        image_shape: shape,
        normalization: norm.clone(),
    };
    write_json(&run_dir.join("dataset.json"), &info)?;

    train_device.seed(config.seed);
    let mut model = Network::new(spec, &train_device).map_err(|e| TrainError::Config(e.message))?;
    let mut optim = optimizer::build(config);
    let mut history = Vec::new();
    let mut steps = 0;
    if let Some(state) = &state {
        model = checkpoint::load_model(run_dir, state, model)?;
        optim = checkpoint::load_optimizer(run_dir, state, optim)?;
        history = state.history.clone();
        steps = state.steps;
        reporter.message(&format!(
            "resuming {} after epoch {}",
            run_dir.display(),
            state.epochs_done
        ));
    }

    let batch_config = BatchConfig {
        batch_size: config.batch_size,
        shuffle: true,
        drop_last: false,
        augment: config.augment,
    };
    let full_epoch = Batches::new(train, shape, norm, batch_config, config.seed, 0).count();
    let steps_per_epoch = config
        .max_steps_per_epoch
        .map_or(full_epoch, |m| m.min(full_epoch));
    let total_steps = steps_per_epoch * config.epochs;
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing((config.label_smoothing > 0.0).then_some(config.label_smoothing as f32))
        .init(&train_device);

    for epoch in history.len()..config.epochs {
        train_device.seed(epoch_seed(config.seed, epoch));
        reporter.epoch_start(epoch + 1, config.epochs, steps_per_epoch);
        let started = Instant::now();
        let mut loss_sum: Option<Tensor<1>> = None;
        let mut correct_sum: Option<Tensor<1>> = None;
        let (mut seen, mut lr) = (0usize, config.lr);
        let batches = Batches::new(train, shape, norm, batch_config, config.seed, epoch as u64)
            .take(steps_per_epoch);
        for (i, batch) in batches.enumerate() {
            lr = config
                .schedule
                .lr(config.lr, steps, total_steps, steps_per_epoch);
            let n = batch.labels.len();
            let (images, labels) = batch.into_tensors(&train_device);
            let logits = model.forward(images);
            let loss = loss_fn.forward(logits.clone(), labels.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            steps += 1;
            seen += n;
            // Running sums stay on the device, off the autodiff graph.
            let batch_loss = loss.inner() * n as f64;
            let batch_correct = logits
                .inner()
                .argmax(1)
                .squeeze_dim::<1>(1)
                .equal(labels.inner())
                .int()
                .sum()
                .float();
            loss_sum = Some(loss_sum.map_or(batch_loss.clone(), |s| s + batch_loss));
            correct_sum = Some(correct_sum.map_or(batch_correct.clone(), |s| s + batch_correct));
            if (i + 1) % READ_EVERY == 0 {
                let mean = loss_sum.clone().map_or(0.0, |s| s.into_scalar::<f64>()) / seen as f64;
                if !mean.is_finite() {
                    return Err(non_finite(run_dir, epoch + 1, i + 1));
                }
                let accuracy =
                    correct_sum.clone().map_or(0.0, |s| s.into_scalar::<f64>()) / seen as f64;
                reporter.step(i + 1, mean, accuracy);
            }
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let train_loss = loss_sum.map_or(f64::NAN, |s| s.into_scalar::<f64>()) / seen.max(1) as f64;
        let train_accuracy =
            correct_sum.map_or(0.0, |s| s.into_scalar::<f64>()) / seen.max(1) as f64;
        if !train_loss.is_finite() {
            return Err(non_finite(run_dir, epoch + 1, steps_per_epoch));
        }
        let val = evaluate(&model.valid(), eval_split, shape, norm, classes, device);
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss,
            train_accuracy,
            val_loss: val.loss,
            val_accuracy: val.accuracy,
            lr,
            train_seconds,
            images_per_second: seen as f64 / train_seconds.max(1e-9),
        };
        history.push(metrics.clone());
        let state = TrainState {
            epochs_done: epoch + 1,
            steps,
            history: history.clone(),
            model_file: format!("model-epoch{}.bpk", epoch + 1),
            optimizer_file: format!("optimizer-epoch{}.bpk", epoch + 1),
        };
        checkpoint::save(run_dir, &model, &optim, &state)?;
        write_history(run_dir, &history)?;
        if !reporter.epoch_end(&metrics) && epoch + 1 < config.epochs {
            return Err(TrainError::Stopped(format!(
                "stopped after epoch {}; continue with --resume {}",
                epoch + 1,
                run_dir.display()
            )));
        }
    }

    let started = Instant::now();
    let test = evaluate(&model.valid(), &dataset.test, shape, norm, classes, device);
    let inference_seconds = started.elapsed().as_secs_f64();
    let summary = summarise(config, spec, dataset, &history, &test, inference_seconds)?;
    write_json(&run_dir.join("summary.json"), &summary)?;
    Ok(summary)
}

fn non_finite(run_dir: &Path, epoch: usize, step: usize) -> TrainError {
    TrainError::NonFinite(format!(
        "the training loss became NaN or infinite in epoch {epoch} near step {step}; stopped. \
         The last good checkpoint is in {} (try a lower --lr or --grad-clip 1.0)",
        checkpoint::folder(run_dir).display()
    ))
}

fn summarise(
    config: &TrainConfig,
    spec: &NetworkSpec,
    dataset: &Dataset,
    history: &[EpochMetrics],
    test: &Evaluation,
    inference_seconds: f64,
) -> Result<RunSummary, TrainError> {
    let summary = Summary::of(spec).map_err(|e| TrainError::Config(e.message))?;
    Ok(RunSummary {
        model: config.model.clone(),
        spec: summary.spec,
        dataset: dataset.name.clone(),
        params: summary.total_params,
        macs: summary.macs,
        epochs: history.len(),
        test_accuracy: test.accuracy,
        test_loss: test.loss,
        best_val_accuracy: history.iter().map(|m| m.val_accuracy).fold(0.0, f64::max),
        train_seconds: history.iter().map(|m| m.train_seconds).sum(),
        inference_images_per_second: test.images as f64 / inference_seconds.max(1e-9),
        per_class_accuracy: test.per_class_accuracy.clone(),
        confusion_matrix: test.confusion.clone(),
        classes: dataset.classes.clone(),
        backend: config.backend.clone(),
    })
}

fn write_history(run_dir: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let csv = run_dir.join("metrics.csv");
    std::fs::write(&csv, to_csv(history)).map_err(|e| io_error(&csv, e))?;
    write_json(&run_dir.join("metrics.json"), &history)?;
    plot::curves(run_dir, history)
}

/// Writes pretty JSON atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(value).expect("serialisable"),
    )
    .map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// Reads a JSON file written by sepnet.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
}
