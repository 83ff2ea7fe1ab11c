//! Helpers shared by the tests.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

use sepnet_data::DatasetKind;
use sepnet_train::report::{Console, Reporter, Style};
use sepnet_train::{EpochMetrics, TrainConfig};

/// Debian's Fashion-MNIST.
pub const FASHION: &str = "/usr/share/datasets/fashion-mnist";

/// burn's random generator is per device and process-wide, and training seeds it: two
/// trainings at once in one process would draw from each other's stream. `sepnet` trains one
/// model at a time; these tests take turns.
static ONE_TRAINING_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Waits for the turn to train.
pub fn turn() -> MutexGuard<'static, ()> {
    ONE_TRAINING_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A short Fashion-MNIST training of `model`.
pub fn config(model: &str, epochs: usize, steps: usize) -> TrainConfig {
    TrainConfig {
        model: model.into(),
        dataset: DatasetKind::FashionMnist,
        data_dir: Some(FASHION.into()),
        epochs,
        batch_size: 64,
        max_steps_per_epoch: Some(steps),
        ..Default::default()
    }
}

/// A reporter that prints nothing.
pub fn quiet() -> Console {
    Console::new(Style::Quiet, "")
}

/// Stops a run after `epochs` epochs (cleanly, once that epoch's checkpoint is written).
pub struct StopAfterEpoch(pub usize);

impl Reporter for StopAfterEpoch {
    fn epoch_start(&mut self, _: usize, _: usize, _: usize) {}
    fn step(&mut self, _: usize, _: f64, _: f64) {}
    fn epoch_end(&mut self, m: &EpochMetrics) -> bool {
        m.epoch < self.0
    }
    fn message(&mut self, _: &str) {}
}

/// Asks to stop between two steps once `steps` steps were taken in total, as Ctrl-C does.
pub struct StopAtStep {
    pub steps: usize,
    /// `should_stop` is asked once before every step: its calls count the steps.
    pub asked: Cell<usize>,
}

impl StopAtStep {
    pub fn new(steps: usize) -> Self {
        StopAtStep {
            steps,
            asked: Cell::new(0),
        }
    }
}

impl Reporter for StopAtStep {
    fn epoch_start(&mut self, _: usize, _: usize, _: usize) {}
    fn step(&mut self, _: usize, _: f64, _: f64) {}
    fn epoch_end(&mut self, _: &EpochMetrics) -> bool {
        true
    }
    fn message(&mut self, _: &str) {}
    fn should_stop(&self) -> bool {
        self.asked.set(self.asked.get() + 1);
        self.asked.get() > self.steps
    }
}

/// Per-epoch metrics without the wall-clock fields (which differ between runs).
pub fn strip(history: &[EpochMetrics]) -> Vec<(usize, f64, f64, f64, f64, f64)> {
    history
        .iter()
        .map(|m| {
            (
                m.epoch,
                m.train_loss,
                m.train_accuracy,
                m.val_loss,
                m.val_accuracy,
                m.lr,
            )
        })
        .collect()
}
