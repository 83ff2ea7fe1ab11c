//! The model being trained with its optimizer and loss, one step at a time, and the running
//! sums of an epoch that a stop between two steps saves and a resume restores exactly.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sepnet_data::Batch;
use sepnet_model::Network;

use crate::checkpoint::{self, PartialEpoch, TrainState};
use crate::config::TrainConfig;
use crate::prepare::Prepared;
use crate::run::RunDir;
use crate::step::minimise;
use crate::teacher::Teacher;
use crate::{TrainError, optimizer};

/// Mixes a step into the seed for burn's device RNG (dropout), so each step's masks depend
/// only on (seed, step) and a resumed run draws exactly what an unbroken one would.
pub(crate) fn step_seed(seed: u64, step: usize) -> u64 {
    seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The model, its optimizer and the loss (with the teacher of a distilled run), on the
/// training device.
pub(crate) struct Learner {
    pub(crate) model: Network,
    pub(crate) optim: ModuleOptimizer,
    pub(crate) loss_fn: CrossEntropyLoss,
    pub(crate) teacher: Option<Teacher>,
    pub(crate) device: Device,
}

/// Running sums of an epoch, kept on the device until read.
pub(crate) struct EpochSums {
    pub(crate) loss: Option<Tensor<1>>,
    pub(crate) correct: Option<Tensor<1>>,
    pub(crate) seen: usize,
    pub(crate) steps_done: usize,
    pub(crate) seconds_before: f64,
}

impl Learner {
    /// A fresh model and optimizer for `config`, or the checkpointed ones of `state`.
    pub(crate) fn new(
        run: &RunDir,
        config: &TrainConfig,
        data: &Prepared,
        state: Option<&TrainState>,
        teacher: Option<Teacher>,
    ) -> Result<Learner, TrainError> {
        let device = data.device.clone().autodiff();
        device.seed(config.seed);
        let mut model =
            Network::new(&data.spec, &device).map_err(|e| TrainError::Config(e.message))?;
        let mut optim = optimizer::build(config);
        if let Some(state) = state {
            model = checkpoint::load_model(run.path(), &state.model, model)?;
            optim = checkpoint::load_optimizer(run.path(), &state.optimizer, optim)?;
        }
        let loss_fn = CrossEntropyLossConfig::new()
            .with_smoothing((config.label_smoothing > 0.0).then_some(config.label_smoothing as f32))
            .init(&device);
        Ok(Learner {
            model,
            optim,
            loss_fn,
            teacher,
            device,
        })
    }

    /// One optimizer step; the batch's loss and correct count join `sums`.
    pub(crate) fn step(&mut self, mut batch: Batch, lr: f64, sums: &mut EpochSums) {
        let n = batch.labels.len();
        let indices = std::mem::take(&mut batch.indices);
        let (images, labels) = batch.into_tensors(&self.device);
        // The optimizer takes the model by value; an empty network holds its place meanwhile
        // (a clone would share the parameters and cost the optimizer its in-place updates).
        let model = std::mem::replace(&mut self.model, Network { layers: Vec::new() });
        let loss_fn = &self.loss_fn;
        let taught = (self.teacher.as_ref()).map(|t| (t, t.taught(&images, &indices)));
        let out = minimise(model, &mut self.optim, images, lr, |logits| {
            let hard = loss_fn.forward(logits.clone(), labels.clone());
            match taught {
                Some((teacher, taught)) => teacher.loss(logits, taught, hard),
                None => hard,
            }
        });
        self.model = out.model;
        sums.add(out.loss * n as f64, correct(out.logits, labels.inner()), n);
    }
}

fn correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    logits
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(labels)
        .int()
        .sum()
        .float()
}

impl EpochSums {
    pub(crate) fn new(partial: Option<&PartialEpoch>, device: &Device) -> Self {
        let scalar = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), device);
        EpochSums {
            loss: partial.map(|p| scalar(p.loss_sum)),
            correct: partial.map(|p| scalar(p.correct_sum)),
            seen: partial.map_or(0, |p| p.seen),
            steps_done: partial.map_or(0, |p| p.steps_done),
            seconds_before: partial.map_or(0.0, |p| p.seconds),
        }
    }

    pub(crate) fn add(&mut self, loss: Tensor<1>, correct: Tensor<1>, images: usize) {
        self.loss = Some(self.loss.take().map_or(loss.clone(), |s| s + loss));
        self.correct = Some(self.correct.take().map_or(correct.clone(), |s| s + correct));
        self.seen += images;
        self.steps_done += 1;
    }

    fn read(sum: &Option<Tensor<1>>) -> f32 {
        sum.clone().map_or(0.0, |s| s.into_scalar::<f32>())
    }

    /// Mean loss and accuracy so far.
    pub(crate) fn means(&self) -> (f64, f64) {
        let n = self.seen.max(1) as f64;
        (
            Self::read(&self.loss) as f64 / n,
            Self::read(&self.correct) as f64 / n,
        )
    }

    pub(crate) fn to_partial(&self, seconds: f64) -> PartialEpoch {
        PartialEpoch {
            steps_done: self.steps_done,
            seen: self.seen,
            loss_sum: Self::read(&self.loss),
            correct_sum: Self::read(&self.correct),
            seconds: self.seconds_before + seconds,
        }
    }
}
