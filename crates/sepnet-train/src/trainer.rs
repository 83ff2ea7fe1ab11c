//! The training loop, one idea per function: a step, an epoch, its evaluation, its checkpoint,
//! the end of the run. A stop asked for between two steps (Ctrl-C) writes a checkpoint of the
//! epoch so far, and a resumed run continues it bit for bit.

use std::time::Instant;

use sepnet_data::{BatchConfig, Batches, Dataset, Shard};
use sepnet_model::{Classifier, NonFinite};

use crate::blueprint::Blueprint;
use crate::checkpoint::{self, Best, PartialEpoch, StepRecord, TrainState};
use crate::config::TrainConfig;
use crate::distributed::{Collective, DistributedSummary};
use crate::evaluate::{Evaluation, evaluate};
use crate::init::Initial;
use crate::learner::Start;
use crate::learner::{EpochSums, Learner, step_seed};
use crate::metrics::{EpochMetrics, RunSummary};
use crate::prepare::Prepared;
use crate::record::RunConfig;
use crate::report::Reporter;
use crate::run::{DATASET, RunDir, SUMMARY};
use crate::teacher::{Teacher, TeacherSummary};
use crate::{TrainError, history};

/// How often (in steps) the running loss is read back for the progress display and the
/// non-finite check; reading it every step would force a device sync per step.
const READ_EVERY: usize = 20;

/// A run being trained: its directory (locked), settings, data, learner and checkpoint state.
pub(crate) struct Trainer<'r, M> {
    run: RunDir,
    record: RunConfig,
    data: Prepared,
    blueprint: Blueprint<'r, M>,
    learner: Learner<M>,
    state: TrainState,
    steps_per_epoch: usize,
    reporter: &'r mut dyn Reporter,
    /// The processes training together (one: [`crate::distributed::Solo`]).
    world: &'r dyn Collective,
    /// The weights' fingerprint every process agreed on at the last checkpoint.
    fingerprint: String,
}

/// What the training part of an epoch produced, before its evaluation.
struct TrainedEpoch {
    loss: f64,
    accuracy: f64,
    lr: f64,
    seconds: f64,
    seen: usize,
    allreduce_seconds: f64,
}

/// What a trainer is given: the run's directory, record, data and model, and where it stands.
pub(crate) struct Setup<'r, M> {
    pub(crate) run: RunDir,
    pub(crate) record: RunConfig,
    pub(crate) data: Prepared,
    pub(crate) blueprint: Blueprint<'r, M>,
    pub(crate) state: Option<TrainState>,
    pub(crate) teacher: Option<Teacher>,
    /// The weights a fine-tuned run starts from (unused once it has a checkpoint).
    pub(crate) initial: Option<Initial>,
}

impl<'r, M: Classifier> Trainer<'r, M> {
    /// A trainer for `setup`, continuing its state when given. Loads (and verifies) the
    /// checkpoint before anything is written.
    pub(crate) fn new(
        setup: Setup<'r, M>,
        reporter: &'r mut dyn Reporter,
        world: &'r dyn Collective,
    ) -> Result<Trainer<'r, M>, TrainError> {
        let Setup {
            run,
            record,
            data,
            blueprint,
            state,
            teacher,
            initial,
        } = setup;
        let config = &record.config;
        let start = Start {
            state: state.as_ref(),
            initial: initial.as_ref(),
        };
        let learner = Learner::new(&run, config, &data, start, teacher, &blueprint)?;
        let (train, _) = data.splits();
        let batches = Batches::new(
            train,
            data.dataset.image_shape,
            &data.norm,
            batch_config(config),
            0,
            0,
        );
        let full_epoch = batches.count();
        let steps_per_epoch = config
            .max_steps_per_epoch
            .map_or(full_epoch, |m| m.min(full_epoch));
        let state = state.unwrap_or_else(|| fresh_state(&record.run_id));
        Ok(Trainer {
            run,
            record,
            data,
            blueprint,
            learner,
            state,
            steps_per_epoch,
            reporter,
            world,
            fingerprint: String::new(),
        })
    }

    fn config(&self) -> &TrainConfig {
        &self.record.config
    }

    /// Writes `config.json` and `dataset.json` (once every check has passed).
    pub(crate) fn write_record(&self) -> Result<(), TrainError> {
        crate::record::write(&self.run, &self.record)?;
        self.run.write_json(DATASET, &self.data.info)
    }

    /// Passes a note to the reporter.
    pub(crate) fn note(&mut self, text: &str) {
        self.reporter.message(text);
    }

    /// What is about to run, said before the first step.
    fn header(&self) -> String {
        let (config, network) = (&self.record.config, &self.record.network);
        let [h, w, c] = network.input;
        let (train, validation) = self.data.splits();
        let validated_on = format!("validation: {}", config.validation);
        let threads = self.record.threads;
        let count = |n: usize| sepnet_model::group_thousands(n as u64);
        let mut text = format!(
            "{}\n  {h}×{w}×{c} → {} classes, {} params, {} per image\n  \
             data: {}, {} training / {} test images ({validated_on}, {} images); \
             {} steps of {} per epoch, {} epochs\n  backend: {} ({threads} threads); run: {}",
            network.spec,
            network.classes,
            sepnet_model::group_thousands(network.params),
            match network.module {
                None => format!("{} MACs", sepnet_model::human(network.macs)),
                Some(_) => "MACs not counted (a module of the program's own)".into(),
            },
            config.dataset,
            count(train.len()),
            count(self.data.dataset.test.len()),
            count(validation.len()),
            self.steps_per_epoch,
            config.batch_size,
            config.epochs,
            config.backend,
            self.run.path().display()
        );
        let ranks = self.world.size();
        if ranks > 1 {
            text += &format!(
                "\n  data-parallel: rank {} of {ranks}, global batch {} = {ranks} × {} per process \
                 (gradients averaged over MPI each step)",
                self.world.rank(),
                config.batch_size,
                per_process(config.batch_size, ranks)
            );
        }
        if let (Some(kd), Some(teacher)) = (&config.distill, &self.record.teacher) {
            text += &format!(
                "\n  distilled from {} (epoch {}'s weights), temperature {}, distillation weight {}",
                kd.teacher.display(),
                teacher.epoch,
                kd.temperature,
                kd.distill_weight
            );
        }
        if let (Some(init), Some(weights)) = (&config.init_from, &self.record.init_weights) {
            text += &format!(
                "\n  fine-tuned from {} (epoch {}'s weights)",
                init.run.display(),
                weights.epoch
            );
        }
        if let Some(scheme) = &config.fake_quant {
            text += &format!(
                "\n  quantization-aware: int8 weights {}{} (BatchNorm folded and frozen), float activations",
                scheme.granularity,
                if scheme.reduce_range { ", 7-bit" } else { "" }
            );
        }
        if !network.adaptation.is_none() {
            text += &format!(
                "\n  the built-in model was fitted to the dataset: {}",
                network.adaptation
            );
        }
        text
    }

    /// Trains the remaining epochs and finishes the run; the summary is rank 0's to give.
    pub(crate) fn fit(mut self) -> Result<Option<RunSummary>, TrainError> {
        let header = self.header();
        self.reporter.message(&header);
        if let Some(partial) = &self.state.partial {
            self.reporter.message(&format!(
                "resuming {} in epoch {} after step {}",
                self.run.path().display(),
                self.state.epochs_done + 1,
                partial.steps_done
            ));
        } else if self.state.epochs_done > 0 {
            self.reporter.message(&format!(
                "resuming {} after epoch {}",
                self.run.path().display(),
                self.state.epochs_done
            ));
        }
        history::write(&self.run, &self.record, &self.state, self.steps_per_epoch)?;
        for epoch in self.state.epochs_done..self.config().epochs {
            if let Some(note) = self.early_stop() {
                self.reporter.message(&note);
                break;
            }
            let trained = self.train_epoch(epoch)?;
            self.end_epoch(epoch, trained)?;
        }
        self.finish()
    }

    /// Why the run stops before its last epoch, if the validation accuracy has not improved for
    /// `--early-stopping` epochs. A function of the history, so a finished run resumed stays
    /// finished.
    fn early_stop(&self) -> Option<String> {
        let patience = self.config().early_stopping?;
        let best = self.state.best.as_ref()?;
        let since = self.state.epochs_done.checked_sub(best.epoch)?;
        (since >= patience).then(|| {
            format!(
                "early stopping after epoch {}: no better validation accuracy than epoch {}'s {:.2}% for {since} epochs",
                self.state.epochs_done,
                best.epoch,
                100.0 * best.val_accuracy
            )
        })
    }

    /// The training part of epoch `epoch` (0-based), from where a partial epoch stopped.
    fn train_epoch(&mut self, epoch: usize) -> Result<TrainedEpoch, TrainError> {
        let config = self.record.config.clone();
        let mut sums = EpochSums::new(self.state.partial.as_ref(), &self.data.device);
        let (train, _) = self.data.splits();
        let mut batches = Batches::new(
            train,
            self.data.dataset.image_shape,
            &self.data.norm,
            batch_config(&config),
            config.seed,
            epoch as u64,
        )
        .shard(self.shard());
        batches.skip_batches(sums.steps_done);
        self.reporter
            .epoch_start(epoch + 1, config.epochs, self.steps_per_epoch);
        let (started, total_steps) = (Instant::now(), self.steps_per_epoch * config.epochs);
        let val_losses: Vec<f64> = self.state.history.iter().map(|m| m.val_loss).collect();
        let base = config.schedule.after_plateaus(config.lr, &val_losses);
        let mut lr = base;
        let mut outcome = Ok(());
        let alone = self.world.size() == 1;
        for batch in batches.take(self.steps_per_epoch - sums.steps_done) {
            let asked = self.reporter.should_stop();
            if asked && alone {
                outcome = Err(None);
                break;
            }
            lr = config
                .schedule
                .lr(base, self.state.steps, total_steps, self.steps_per_epoch);
            let seed = step_seed(config.seed, self.state.steps, self.world.rank());
            let stopping = (self.learner).step_in(self.world, asked, seed, batch, lr, &mut sums);
            self.state.steps += 1;
            match self.after_step(epoch, &sums, started) {
                Err(error) => {
                    outcome = Err(Some(error));
                    break;
                }
                Ok(Some(record)) => {
                    self.reporter
                        .step(sums.steps_done, record.loss, record.accuracy);
                    self.state.steps_log.push(record);
                }
                Ok(None) => {}
            }
            if stopping {
                outcome = Err(None);
                break;
            }
        }
        match outcome {
            Ok(()) => {}
            Err(Some(error)) => return Err(error),
            Err(None) => {
                let partial = sums.to_partial(started.elapsed().as_secs_f64());
                return Err(self.stop_inside(epoch, partial));
            }
        }
        let (loss, accuracy) = sums.means();
        if !loss.is_finite() || sums.seen == 0 {
            return Err(self.non_finite(epoch + 1, sums.steps_done));
        }
        let seconds = sums.seconds_before + started.elapsed().as_secs_f64();
        Ok(TrainedEpoch {
            loss,
            accuracy,
            lr,
            seconds,
            seen: sums.seen,
            allreduce_seconds: sums.allreduce_seconds,
        })
    }

    /// This process's share of every batch.
    fn shard(&self) -> Shard {
        Shard {
            rank: self.world.rank(),
            ranks: self.world.size(),
        }
    }

    /// Checks a step's weights (every step: the weights change only in steps, so no checkpoint
    /// can hold a NaN) and loss (every [`READ_EVERY`] steps, when the running sums are read
    /// back); then returns the progress record for the display and the TensorBoard curves.
    fn after_step(
        &self,
        epoch: usize,
        sums: &EpochSums,
        started: Instant,
    ) -> Result<Option<StepRecord>, TrainError> {
        if let Some(bad) = sepnet_model::first_non_finite(self.learner.model()) {
            return Err(self.non_finite_weights(epoch + 1, sums.steps_done, &bad));
        }
        if !sums.steps_done.is_multiple_of(READ_EVERY) {
            return Ok(None);
        }
        let (loss, accuracy) = sums.means();
        if !loss.is_finite() {
            return Err(self.non_finite(epoch + 1, sums.steps_done));
        }
        let done: f64 = self.state.history.iter().map(|m| m.train_seconds).sum();
        Ok(Some(StepRecord {
            step: self.state.steps,
            loss,
            accuracy,
            seconds: done + sums.seconds_before + started.elapsed().as_secs_f64(),
        }))
    }

    /// Evaluates an epoch, records it, checkpoints it; stops the run if the reporter asks.
    fn end_epoch(&mut self, epoch: usize, trained: TrainedEpoch) -> Result<(), TrainError> {
        self.reporter.evaluating();
        let val = self.evaluate_on(self.data.splits().1, &self.learner.model().valid());
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: trained.loss,
            train_accuracy: trained.accuracy,
            val_loss: val.loss,
            val_accuracy: val.accuracy,
            lr: trained.lr,
            train_seconds: trained.seconds,
            images_per_second: trained.seen as f64 / trained.seconds.max(1e-9),
            allreduce_seconds: trained.allreduce_seconds,
        };
        self.state.history.push(metrics.clone());
        self.state.epochs_done = epoch + 1;
        self.state.partial = None;
        self.save_checkpoint(&format!("epoch{}", epoch + 1), Some(val.accuracy))?;
        history::write(&self.run, &self.record, &self.state, self.steps_per_epoch)?;
        if !self.reporter.epoch_end(&metrics) && epoch + 1 < self.config().epochs {
            return Err(TrainError::Stopped(format!(
                "stopped after epoch {}; continue with {}",
                epoch + 1,
                self.resume_hint()
            )));
        }
        Ok(())
    }

    /// Writes the model and optimizer under `tag` and commits the state; with a validation
    /// accuracy, the epoch becomes the best one when it beats it.
    fn save_checkpoint(&mut self, tag: &str, val_accuracy: Option<f64>) -> Result<(), TrainError> {
        let model = checkpoint::model_bytes(self.learner.model())?;
        let (model_ref, optim_ref) =
            checkpoint::write_files(&self.run, tag, &model, &self.learner.optim)?;
        self.check_identical()?;
        self.state.model = model_ref.clone();
        self.state.optimizer = optim_ref;
        if let Some(accuracy) = val_accuracy {
            let beaten = self
                .state
                .best
                .as_ref()
                .is_none_or(|b| accuracy > b.val_accuracy);
            if beaten {
                self.state.best = Some(Best {
                    epoch: self.state.epochs_done,
                    val_accuracy: accuracy,
                    model: model_ref,
                });
            }
        }
        checkpoint::commit(&self.run, &self.state)
    }

    /// Refuses to go on unless every process holds the same weights bit for bit: the processes of a data-parallel job apply the same averaged gradients, so any
    /// difference is a fault, found at the checkpoint before it could be saved.
    fn check_identical(&mut self) -> Result<(), TrainError> {
        if self.world.size() == 1 {
            return Ok(());
        }
        let fingerprint = crate::distributed::sync::fingerprint(self.learner.model());
        let prefix = u64::from_str_radix(&fingerprint[..16], 16).unwrap_or(0);
        self.fingerprint = fingerprint;
        let all = self.world.gather(prefix);
        match all.iter().position(|&p| p != all[0]) {
            None => Ok(()),
            Some(rank) => Err(TrainError::Checkpoint(format!(
                "after step {} the weights of rank {rank} differ from rank 0's; nothing was \
                 saved. {}",
                self.state.steps,
                self.keep_or_release_after_failure()
            ))),
        }
    }

    /// Checkpoints an epoch stopped between two steps and says how to continue.
    fn stop_inside(&mut self, epoch: usize, partial: PartialEpoch) -> TrainError {
        let step = partial.steps_done;
        self.state.partial = Some(partial);
        let tag = format!("epoch{}-step{step}", epoch + 1);
        if let Err(e) = self.save_checkpoint(&tag, None) {
            return e;
        }
        TrainError::Stopped(format!(
            "stopped in epoch {} after step {step}; the checkpoint is saved: continue with \
             {}",
            epoch + 1,
            self.resume_hint()
        ))
    }

    /// How the user continues this run: the command for a spec network, the library call for
    /// a module of their own (which only their program can build).
    fn resume_hint(&self) -> String {
        let dir = self.run.path().display();
        match &self.record.network.module {
            None => format!("`sepnet train --resume {dir}`"),
            Some(_) => {
                format!("`sepnet_train::custom::resume` of {dir} in the program that trained it")
            }
        }
    }

    /// What is kept after a failure: the last good checkpoint, or — when none was written —
    /// nothing at all (the run's files are removed, so its folder can be used again).
    fn keep_or_release_after_failure(&self) -> String {
        match (&self.state.history.last(), &self.state.best) {
            (Some(last), Some(best)) => format!(
                "The checkpoint of epoch {} is kept in {}/checkpoint (the best, epoch {}, too)",
                last.epoch,
                self.run.path().display(),
                best.epoch
            ),
            _ if !self.state.model.file.is_empty() => format!(
                "The last good checkpoint is kept in {}/checkpoint",
                self.run.path().display()
            ),
            _ => {
                self.run.remove_records();
                format!(
                    "No checkpoint was written, and the run's files were removed: {} can be used \
                     again",
                    self.run.path().display()
                )
            }
        }
    }

    fn non_finite(&self, epoch: usize, step: usize) -> TrainError {
        TrainError::NonFinite(format!(
            "the training loss became NaN or infinite in epoch {epoch} near step {step}; stopped. \
             {}. Try a lower --lr or --grad-clip 1.0",
            self.keep_or_release_after_failure()
        ))
    }

    fn non_finite_weights(&self, epoch: usize, step: usize, bad: &NonFinite) -> TrainError {
        let layer = match &self.blueprint.spec {
            Some(_) => format!(
                "layer {}{}",
                bad.layer + 1,
                self.blueprint.layer_name(bad.layer)
            ),
            None => "the module".into(),
        };
        TrainError::NonFinite(format!(
            "after step {step} of epoch {epoch} (step {} of the run), {layer} holds NaN or \
             infinite values ({}); stopped, and no checkpoint holds them. {}. Try a lower --lr or \
             --grad-clip 1.0",
            self.state.steps,
            bad.path,
            self.keep_or_release_after_failure()
        ))
    }

    fn evaluate_on<C: Classifier>(&self, split: &sepnet_data::Split, model: &C) -> Evaluation {
        let classes = self.data.dataset.classes.len();
        let shape = self.data.dataset.image_shape;
        evaluate(
            model,
            split,
            shape,
            &self.data.norm,
            classes,
            &self.data.device,
        )
    }

    /// Evaluates the last and the best model on the test split and writes `summary.json` (on
    /// rank 0; the other processes of a data-parallel job have nothing left to do).
    fn finish(mut self) -> Result<Option<RunSummary>, TrainError> {
        if !self.run.writes() {
            return Ok(None);
        }
        self.reporter.evaluating();
        let started = Instant::now();
        let test = self.evaluate_on(&self.data.dataset.test, &self.learner.model().valid());
        let inference_seconds = started.elapsed().as_secs_f64();
        let (best_epoch, best_test) = self.best_on_test(&test)?;
        let teacher = self
            .learner
            .teacher
            .as_ref()
            .map(|t| self.compare_with(t, &test));
        let mut summary = summarise(
            &self.record,
            &self.data.dataset,
            &self.state.history,
            &test,
            (best_epoch, best_test),
            inference_seconds,
        );
        summary.teacher = teacher;
        summary.distributed = (self.world.size() > 1).then(|| DistributedSummary {
            processes: self.world.size(),
            weights_sha256: self.fingerprint.clone(),
            allreduce_seconds: self.state.history.iter().map(|m| m.allreduce_seconds).sum(),
        });
        self.run.write_json(SUMMARY, &summary)?;
        Ok(Some(summary))
    }

    /// The teacher's test accuracy and how often the student (`student`: its last model's test
    /// evaluation) predicts the teacher's class.
    fn compare_with(&self, teacher: &Teacher, student: &Evaluation) -> TeacherSummary {
        let taught = self.evaluate_on(&self.data.dataset.test, &teacher.network);
        TeacherSummary {
            run: teacher.distill.teacher.clone(),
            test_accuracy: taught.accuracy,
            agreement: student.agreement(&taught),
        }
    }

    /// The best validation epoch and its model's test accuracy.
    fn best_on_test(&mut self, last: &Evaluation) -> Result<(usize, f64), TrainError> {
        let Some(best) = self.state.best.clone() else {
            return Ok((self.state.epochs_done, last.accuracy));
        };
        if best.model == self.state.model {
            return Ok((best.epoch, last.accuracy));
        }
        let fresh = self
            .blueprint
            .build(&self.data.device, self.config().seed)?;
        let model = checkpoint::load_model(self.run.path(), &best.model, fresh)?;
        Ok((
            best.epoch,
            self.evaluate_on(&self.data.dataset.test, &model).accuracy,
        ))
    }
}

fn batch_config(config: &TrainConfig) -> BatchConfig {
    BatchConfig {
        batch_size: config.batch_size,
        shuffle: true,
        drop_last: false,
        augment: config.augment,
    }
}

fn fresh_state(run_id: &str) -> TrainState {
    let none = checkpoint::FileRef {
        file: String::new(),
        sha256: String::new(),
    };
    TrainState {
        run_id: run_id.into(),
        epochs_done: 0,
        steps: 0,
        history: Vec::new(),
        steps_log: Vec::new(),
        partial: None,
        model: none.clone(),
        optimizer: none,
        best: None,
    }
}

/// The summary of a finished run: `test` is the last model's evaluation, `best` the best
/// validation epoch and its model's test accuracy.
fn summarise(
    record: &RunConfig,
    dataset: &Dataset,
    history: &[EpochMetrics],
    test: &Evaluation,
    best: (usize, f64),
    inference_seconds: f64,
) -> RunSummary {
    RunSummary {
        model: record.config.model.clone(),
        spec: record.network.spec.clone(),
        dataset: dataset.name.clone(),
        params: record.network.params,
        macs: record.network.macs,
        epochs: history.len(),
        test_accuracy: test.accuracy,
        best_epoch: best.0,
        test_accuracy_at_best_epoch: best.1,
        test_loss: test.loss,
        best_val_accuracy: history.iter().map(|m| m.val_accuracy).fold(0.0, f64::max),
        train_seconds: history.iter().map(|m| m.train_seconds).sum(),
        inference_images_per_second: test.images as f64 / inference_seconds.max(1e-9),
        per_class_accuracy: test.per_class_accuracy.clone(),
        confusion_matrix: test.confusion.clone(),
        classes: dataset.classes.clone(),
        backend: record.config.backend,
        teacher: None,
        distributed: None,
    }
}

/// Images each process takes of a global batch of `batch` (the largest share).
fn per_process(batch: usize, ranks: usize) -> usize {
    batch.div_ceil(ranks)
}
