//! The teacher of a distilled run: a finished run, checked against the student's data and
//! network before anything is written, its weights loaded for inference; and what the
//! student's `config.json` and `summary.json` record about it.

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use sepnet_data::{BatchConfig, Batches};
use sepnet_model::Network;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::checkpoint::{self, FileRef};
use crate::config::{Distillation, TeacherWeights};
use crate::distill::{mix, soft_loss};
use crate::prepare::Prepared;
use crate::record::Run;
use crate::run::is_being_written;

/// Which weights taught a distilled run (in its `config.json`): a resume refuses a teacher
/// whose weights have changed since.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeacherRecord {
    /// The teacher run's id (its `config.json`).
    pub run_id: String,
    /// SHA-256 of the weights file that teaches.
    pub weights_sha256: String,
    /// The epoch those weights come from.
    pub epoch: usize,
}

impl TeacherRecord {
    /// The first 12 hex digits of the weights' SHA-256, for a message.
    fn short_sha(&self) -> &str {
        self.weights_sha256
            .get(..12)
            .unwrap_or(&self.weights_sha256)
    }
}

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
    pub(crate) record: TeacherRecord,
    cache: Option<Tensor<2>>,
}

fn refuse(distill: &Distillation, problem: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!(
        "--teacher {}: {problem}",
        distill.teacher.display()
    ))
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
        recorded: Option<&TeacherRecord>,
    ) -> Result<Teacher, TrainError> {
        let dir = &distill.teacher;
        let same = |a: &Path, b: &Path| {
            a.canonicalize()
                .ok()
                .is_some_and(|a| b.canonicalize().ok() == Some(a))
        };
        if same(dir, student_dir) {
            return Err(refuse(
                distill,
                "this is the student's own run directory: a run cannot teach itself",
            ));
        }
        if is_being_written(dir) {
            return Err(refuse(
                distill,
                "the run is still being written by another sepnet process; wait until it finishes",
            ));
        }
        let run = Run::open(dir).map_err(|e| refuse(distill, e))?;
        if run.summary()?.is_none() {
            return Err(refuse(
                distill,
                format!(
                    "the run has not finished (no summary.json); finish it first with `sepnet train --resume {}`",
                    dir.display()
                ),
            ));
        }
        check_matches(distill, &run, data)?;
        let (file, record) = teaching_weights(distill, &run)?;
        if let Some(recorded) = recorded {
            check_unchanged(distill, recorded, &record)?;
        }
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

/// Refuses teaching weights (`found`) other than those that taught the run so far.
fn check_unchanged(
    distill: &Distillation,
    recorded: &TeacherRecord,
    found: &TeacherRecord,
) -> Result<(), TrainError> {
    if found == recorded {
        return Ok(());
    }
    Err(refuse(
        distill,
        format!(
            "the teacher is not the one this run learnt from (run {} epoch {} with weights {}; \
             found run {} epoch {} with weights {}): a resumed student would learn from another teacher",
            recorded.run_id,
            recorded.epoch,
            recorded.short_sha(),
            found.run_id,
            found.epoch,
            found.short_sha(),
        ),
    ))
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

/// The weights file of the teacher `run` that `distill` asks for, and its record.
pub(crate) fn teaching_weights(
    distill: &Distillation,
    run: &Run,
) -> Result<(FileRef, TeacherRecord), TrainError> {
    let state = run
        .state()?
        .ok_or_else(|| refuse(distill, "the run has no checkpoint"))?;
    let (file, epoch) = match (distill.teacher_weights, &state.best) {
        (TeacherWeights::Best, Some(best)) => (best.model.clone(), best.epoch),
        _ => (state.model.clone(), state.epochs_done),
    };
    let record = TeacherRecord {
        run_id: run.config.run_id.clone(),
        weights_sha256: file.sha256.clone(),
        epoch,
    };
    Ok((file, record))
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
