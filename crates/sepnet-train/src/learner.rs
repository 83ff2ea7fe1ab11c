//! The model being trained with its optimizer and loss, one step at a time, and the running
//! sums of an epoch that a stop between two steps saves and a resume restores exactly.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sepnet_data::Batch;
use sepnet_model::Classifier;

use crate::blueprint::Blueprint;
use crate::checkpoint::{self, PartialEpoch, TrainState};
use crate::config::TrainConfig;
use crate::distributed::Collective;
use crate::distributed::sync::{self, Totals};
use crate::init::Initial;
use crate::prepare::Prepared;
use crate::run::RunDir;
use crate::step::{gradients, minimise};
use crate::teacher::Teacher;
use crate::{TrainError, optimizer};

/// Mixes a step (and the process of a data-parallel job) into the seed for burn's device RNG
/// (dropout), so each step's masks depend only on (seed, step, rank) and a resumed run draws
/// exactly what an unbroken one would; process 0 draws what a one-process run draws.
pub(crate) fn step_seed(seed: u64, step: usize, rank: usize) -> u64 {
    seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (rank as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// The model, its optimizer and the loss (with the teacher of a distilled run), on the
/// training device.
pub(crate) struct Learner<M> {
    /// The model; `None` only inside a step, while the optimizer holds it.
    model: Option<M>,
    pub(crate) optim: ModuleOptimizer,
    pub(crate) loss_fn: CrossEntropyLoss,
    pub(crate) teacher: Option<Teacher>,
    /// The training device (with autodiff).
    pub(crate) device: Device,
    /// The same device without autodiff, where gradients live.
    pub(crate) plain: Device,
}

/// Where a learner's model and optimizer start.
pub(crate) struct Start<'a> {
    /// The run's own checkpoint, if it has one.
    pub(crate) state: Option<&'a TrainState>,
    /// Another run's weights a fine-tuned run starts from (without a checkpoint yet).
    pub(crate) initial: Option<&'a Initial>,
}

/// Running sums of an epoch, kept on the device until read.
pub(crate) struct EpochSums {
    pub(crate) loss: Option<Tensor<1>>,
    pub(crate) correct: Option<Tensor<1>>,
    pub(crate) seen: usize,
    pub(crate) steps_done: usize,
    pub(crate) seconds_before: f64,
    /// Seconds spent in the gradient all-reduce (data-parallel runs).
    pub(crate) allreduce_seconds: f64,
}

impl<M: Classifier> Learner<M> {
    /// A model (from `blueprint`) and optimizer for `config`, where `start` says: fresh, the
    /// checkpointed ones, or a fresh optimizer on another run's weights.
    pub(crate) fn new(
        run: &RunDir,
        config: &TrainConfig,
        data: &Prepared,
        start: Start,
        teacher: Option<Teacher>,
        blueprint: &Blueprint<M>,
    ) -> Result<Learner<M>, TrainError> {
        let device = data.device.clone().autodiff();
        let mut model = blueprint.build(&device, config.seed)?;
        let mut optim = optimizer::build(config);
        match (start.state, start.initial) {
            (Some(state), _) => {
                model = checkpoint::load_model(run.path(), &state.model, model)?;
                optim = checkpoint::load_optimizer(run.path(), &state.optimizer, optim)?;
            }
            (None, Some(initial)) => model = initial.load(model)?,
            (None, None) => {}
        }
        let loss_fn = CrossEntropyLossConfig::new()
            .with_smoothing((config.label_smoothing > 0.0).then_some(config.label_smoothing as f32))
            .init(&device);
        Ok(Learner {
            model: Some(model),
            optim,
            loss_fn,
            teacher,
            device,
            plain: data.device.clone(),
        })
    }

    /// The model being trained.
    pub(crate) fn model(&self) -> &M {
        self.model.as_ref().expect("a model between steps")
    }

    /// One step of this process of `world`, its dropout seeded by `seed`: alone, or sharing the
    /// gradients with the others. Returns whether a data-parallel job stops after it —
    /// together, once every process has taken it (`asked`: whether this one was asked to).
    pub(crate) fn step_in(
        &mut self,
        world: &dyn Collective,
        asked: bool,
        seed: u64,
        batch: Batch,
        lr: f64,
        sums: &mut EpochSums,
    ) -> bool {
        self.device.seed(seed);
        if world.size() == 1 {
            self.step(batch, lr, sums);
            return false;
        }
        self.step_shared(batch, lr, sums, world, asked)
    }

    /// One optimizer step; the batch's loss and correct count join `sums`.
    pub(crate) fn step(&mut self, mut batch: Batch, lr: f64, sums: &mut EpochSums) {
        let n = batch.labels.len();
        let indices = std::mem::take(&mut batch.indices);
        let (images, labels) = batch.into_tensors(&self.device);
        // The optimizer takes the model by value (a clone would share the parameters and cost
        // the optimizer its in-place updates).
        let model = self.model.take().expect("a model between steps");
        let loss = loss_of(
            &self.loss_fn,
            self.teacher.as_ref(),
            &images,
            &indices,
            &labels,
        );
        let out = minimise(model, &mut self.optim, images, lr, loss);
        self.model = Some(out.model);
        sums.add(out.loss * n as f64, correct(out.logits, labels.inner()), n);
    }

    /// One optimizer step of a data-parallel job: `batch` is this process's shard of the
    /// global batch, and the gradients are averaged over `world` before the update. Returns
    /// whether any process was asked to stop (`stop` is this one's answer): all then stop
    /// after this step together.
    pub(crate) fn step_shared(
        &mut self,
        mut batch: Batch,
        lr: f64,
        sums: &mut EpochSums,
        world: &dyn Collective,
        stop: bool,
    ) -> bool {
        let n = batch.labels.len();
        let model = self.model.take().expect("a model between steps");
        let (grads, mut local) = if n == 0 {
            (burn::optim::GradientsParams::new(), Totals::default())
        } else {
            let indices = std::mem::take(&mut batch.indices);
            let (images, labels) = batch.into_tensors(&self.device);
            let loss = loss_of(
                &self.loss_fn,
                self.teacher.as_ref(),
                &images,
                &indices,
                &labels,
            );
            let (grads, loss, logits) = gradients(&model, images, loss);
            let totals = Totals {
                loss_sum: loss.into_scalar::<f32>() * n as f32,
                correct: correct(logits, labels.inner()).into_scalar::<f32>(),
                images: n as f32,
                stops: 0.0,
            };
            (grads, totals)
        };
        local.stops = f32::from(u8::from(stop));
        let synced = sync::all_reduce(world, model, grads, local, &self.plain);
        self.model = Some(self.optim.step(lr, synced.model, synced.grads));
        let totals = synced.totals;
        let scalar = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &self.plain);
        sums.add(
            scalar(totals.loss_sum),
            scalar(totals.correct),
            totals.images as usize,
        );
        sums.allreduce_seconds += synced.seconds;
        totals.stops > 0.0
    }
}

/// The loss of a batch's logits: cross-entropy with the labels, and with the teacher's
/// softened outputs in a distilled run.
fn loss_of<'a>(
    loss_fn: &'a CrossEntropyLoss,
    teacher: Option<&'a Teacher>,
    images: &Tensor<4>,
    indices: &[u32],
    labels: &Tensor<1, Int>,
) -> impl FnOnce(Tensor<2>) -> Tensor<1> + 'a {
    let taught = teacher.map(|t| (t, t.taught(images, indices)));
    let labels = labels.clone();
    move |logits| {
        let hard = loss_fn.forward(logits.clone(), labels);
        match taught {
            Some((teacher, taught)) => teacher.loss(logits, taught, hard),
            None => hard,
        }
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
            allreduce_seconds: partial.map_or(0.0, |p| p.allreduce_seconds),
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
            allreduce_seconds: self.allreduce_seconds,
        }
    }
}
