//! Before the first step: the dataset loaded and described, the network resolved against it,
//! the splits cut, and everything a run directory records about them.

use burn::tensor::Device;
use sepnet_data::{Dataset, Locator, Normalization, Split};
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Adaptation, Summary, resolve_for_dataset};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::{TrainError, memory};

/// What a run was trained on: `dataset.json`. `predict` preprocesses with it, and a resume
/// refuses data that differ from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Dataset name.
    pub name: String,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// `[h, w, c]` of the images the model takes.
    pub image_shape: [usize; 3],
    /// Normalisation applied to every image.
    pub normalization: Normalization,
    /// Training images (before any validation hold-out).
    pub train_images: usize,
    /// Test images.
    pub test_images: usize,
    /// Checksum of every label and pixel ([`Dataset::checksum`]), hex.
    pub checksum: String,
}

impl DatasetInfo {
    /// Describes a loaded dataset.
    pub fn of(dataset: &Dataset, normalization: Normalization) -> Self {
        DatasetInfo {
            name: dataset.name.clone(),
            classes: dataset.classes.clone(),
            image_shape: dataset.image_shape,
            normalization,
            train_images: dataset.train.len(),
            test_images: dataset.test.len(),
            checksum: format!("{:016x}", dataset.checksum()),
        }
    }

    /// What differs between the data a run was trained on and `now`, if anything.
    pub fn differences(&self, now: &DatasetInfo) -> Vec<String> {
        let pairs = [
            (
                "classes",
                format!("{:?}", self.classes),
                format!("{:?}", now.classes),
            ),
            (
                "image shape",
                format!("{:?}", self.image_shape),
                format!("{:?}", now.image_shape),
            ),
            (
                "training images",
                self.train_images.to_string(),
                now.train_images.to_string(),
            ),
            (
                "test images",
                self.test_images.to_string(),
                now.test_images.to_string(),
            ),
        ];
        let mut out: Vec<String> = pairs
            .into_iter()
            .filter(|(_, was, is)| was != is)
            .map(|(what, was, is)| format!("{what} {is} (the run's: {was})"))
            .collect();
        if out.is_empty() && self.checksum != now.checksum {
            out.push(format!(
                "same sizes but other images or labels (checksum {}, the run's: {})",
                now.checksum, self.checksum
            ));
        }
        out
    }
}

/// Everything a run needs before its first step.
pub struct Prepared {
    /// The dataset as loaded.
    pub dataset: Dataset,
    /// Normalisation applied to every batch.
    pub norm: Normalization,
    /// With a held-out validation split: (train minus the hold-out, the hold-out).
    pub held_out: Option<(Split, Split)>,
    /// What `dataset.json` records.
    pub info: DatasetInfo,
    /// Inference device (training runs on its autodiff twin).
    pub device: Device,
}

impl Prepared {
    /// The split trained on and the one validated on (the test split without a hold-out).
    pub fn splits(&self) -> (&Split, &Split) {
        match &self.held_out {
            Some((train, validation)) => (train, validation),
            None => (&self.dataset.train, &self.dataset.test),
        }
    }
}

/// Checks `config` and loads its data, refusing whatever cannot train: nothing is written
/// anywhere. (The network is resolved against the data apart, as only a spec run has one to
/// resolve.)
pub fn prepare(config: &TrainConfig) -> Result<Prepared, TrainError> {
    config.validate().map_err(TrainError::Config)?;
    let device = config.backend.device().map_err(TrainError::Config)?;
    let locator = Locator {
        data_dir: config.data_dir.clone(),
        offline: false,
        progress: true,
    };
    let dataset = locator.load(&config.dataset)?;
    let norm = Normalization::for_dataset(config.input_scaling, &dataset);
    let held_out = match config.validation.images(dataset.train.len()) {
        None => None,
        Some(n) => Some(
            dataset
                .validation_split(n, config.seed)
                .map_err(TrainError::Config)?,
        ),
    };
    let info = DatasetInfo::of(&dataset, norm.clone());
    let prepared = Prepared {
        dataset,
        norm,
        held_out,
        info,
        device,
    };
    check_splits(&prepared)?;
    Ok(prepared)
}

/// The network `config` asks for, resolved against `dataset`, once it is known to fit the
/// data and the machine's memory.
pub(crate) fn check_model(
    config: &TrainConfig,
    dataset: &Dataset,
) -> Result<(NetworkSpec, Adaptation), TrainError> {
    config.validate().map_err(TrainError::Config)?;
    let classes = dataset.classes.len();
    let (spec, adaptation) = resolve_for_dataset(
        &config.model,
        &config.model_options,
        dataset.image_shape,
        classes,
    )
    .map_err(|e| TrainError::Config(e.to_string()))?;
    let summary = Summary::of(&spec).map_err(|e| TrainError::Config(e.message))?;
    memory::check_fits(&summary, config.batch_size, config.backend)?;
    Ok((spec, adaptation))
}

fn check_splits(prepared: &Prepared) -> Result<(), TrainError> {
    let (train, validation) = prepared.splits();
    let name = &prepared.dataset.name;
    let empty = |which: &str| {
        TrainError::Config(format!(
            "the {which} split of {name} holds no image: nothing to {}",
            if which == "training" {
                "train on"
            } else {
                "evaluate on"
            }
        ))
    };
    if train.is_empty() {
        return Err(empty("training"));
    }
    if validation.is_empty() || prepared.dataset.test.is_empty() {
        return Err(empty("test"));
    }
    Ok(())
}
