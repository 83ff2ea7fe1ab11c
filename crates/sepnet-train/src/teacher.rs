//! The teacher of a distilled run: a finished run, checked against the student's data and
//! network before anything is written, its weights loaded for inference; and what the
//! student's `config.json` and `summary.json` record about it.

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use sepnet_data::{BatchConfig, Batches};
use sepnet_model::Network;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::checkpoint;
use crate::config::Distillation;
use crate::distill::{mix, soft_loss};
use crate::prepare::Prepared;
use crate::record::Run;
use crate::source::{self, WeightsRecord, check_unchanged, chosen_weights, open_finished};

/// How the student compares with its teacher on the test split (in its `summary.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeacherSummary {
    /// The teacher's run directory.
    pub run: std::path::PathBuf,
    /// The teaching weights' test accuracy.
    pub test_accuracy: f64,
    /// Fraction of test images on which the student's last model predicts the teacher's class.
    pub agreement: f64,
}

/// A finished run's network teaching a student, on the student's inference device; with
/// `--cache-teacher`, its logits of every training image, in the split's order.
pub(crate) struct Teacher {
    pub(crate) network: Network,
    pub(crate) distill: Distillation,
    pub(crate) record: WeightsRecord,
    cache: Option<Tensor<2>>,
}

fn refuse(distill: &Distillation, problem: impl std::fmt::Display) -> TrainError {
    source::refuse("--teacher", &distill.teacher, problem)
}

impl Teacher {
    /// Opens the teacher of `distill` for the student to be written in `student_dir`, refusing
    /// the student's own run, a run still being written or unfinished, one trained on other
    /// data, inputs or classes, and — for a resumed student, which `recorded` what taught it —
    /// other weights. Every check comes before the weights are loaded or the cache computed.
    pub(crate) fn open(
        distill: &Distillation,
        data: &Prepared,
        student_dir: &Path,
        recorded: Option<&WeightsRecord>,
    ) -> Result<Teacher, TrainError> {
        let run = open_finished("--teacher", &distill.teacher, student_dir)?;
        check_matches(distill, &run, data)?;
        let (file, record) = chosen_weights("--teacher", &run, distill.teacher_weights)?;
        if let Some(recorded) = recorded {
            check_unchanged("--teacher", &distill.teacher, recorded, &record)?;
        }
        let dir = &distill.teacher;
        let spec = run.config.network.network_spec()?;
        let fresh = Network::new(&spec, &data.device).map_err(|e| TrainError::Config(e.message))?;
        let network = checkpoint::load_model(dir, &file, fresh)?;
        let cache = distill
            .cache_teacher
            .then(|| logits_of_training_images(&network, data));
        Ok(Teacher {
            network,
            distill: distill.clone(),
            record,
            cache,
        })
    }

    /// The teacher's logits of a batch: `images` (the student's, on either device), which
    /// are the training split's images at `indices`.
    pub(crate) fn taught(&self, images: &Tensor<4>, indices: &[u32]) -> Tensor<2> {
        match &self.cache {
            Some(all) => {
                let rows: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
                let rows = TensorData::new(rows, [indices.len()]);
                all.clone()
                    .select(0, Tensor::<1, Int>::from_data(rows, &all.device()))
            }
            None => self.network.forward(images.clone().inner()),
        }
    }

    /// The training loss of a batch: the student's `logits` against the teacher's, `taught`,
    /// and the labels' cross-entropy `hard`.
    pub(crate) fn loss(&self, logits: Tensor<2>, taught: Tensor<2>, hard: Tensor<1>) -> Tensor<1> {
        let soft = soft_loss(logits, taught, self.distill.temperature);
        mix(soft, hard, self.distill.distill_weight)
    }
}

/// The teacher's logits of every training image, in the split's order (in batches of 500, as
/// evaluation runs).
fn logits_of_training_images(network: &Network, data: &Prepared) -> Tensor<2> {
    let (train, _) = data.splits();
    let shape = data.dataset.image_shape;
    let batches = Batches::new(train, shape, &data.norm, BatchConfig::eval(500), 0, 0);
    let logits = batches.map(|batch| network.forward(batch.into_tensors(&data.device).0));
    Tensor::cat(logits.collect(), 0)
}

/// Refuses a teacher trained on other data (images, labels, normalisation) or with another
/// input shape or number of classes than the student.
fn check_matches(distill: &Distillation, run: &Run, data: &Prepared) -> Result<(), TrainError> {
    let differences = run.dataset.differences(&data.info);
    if !differences.is_empty() {
        return Err(refuse(
            distill,
            format!(
                "the teacher was trained on other data than the student's {}: {}",
                data.info.name,
                differences.join("; ")
            ),
        ));
    }
    if run.dataset.normalization != data.info.normalization {
        return Err(refuse(
            distill,
            format!(
                "the teacher saw its inputs scaled otherwise ({:?}, the student's: {:?}); train the \
             student with the teacher's --input-scaling",
                run.dataset.normalization, data.info.normalization
            ),
        ));
    }
    let (input, classes) = (data.dataset.image_shape, data.dataset.classes.len());
    let network = &run.config.network;
    if network.input != input || network.classes != classes {
        return Err(refuse(
            distill,
            format!(
                "the teacher takes {:?} inputs into {} classes, the student {input:?} into {classes}",
                network.input, network.classes
            ),
        ));
    }
    Ok(())
}
