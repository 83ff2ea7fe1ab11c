//! Real training on Fashion-MNIST (Debian's dataset-fashion-mnist, which CI installs): a short
//! run must reach accuracy far above chance, and a run killed after an epoch and resumed must
//! end with exactly the metrics of one never interrupted.

use std::path::Path;

use sepnet_train::report::{Console, Reporter, Style};
use sepnet_train::{
    EpochMetrics, OptimizerKind, Schedule, TrainConfig, TrainError, checkpoint, train,
};

/// Interrupts a run after `epochs` epochs, as a kill would (but only once the checkpoint is
/// written; a kill mid-epoch loses that epoch's partial work and nothing else).
struct KillAfter(usize);

impl Reporter for KillAfter {
    fn epoch_start(&mut self, _: usize, _: usize, _: usize) {}
    fn step(&mut self, _: usize, _: f64, _: f64) {}
    fn epoch_end(&mut self, m: &EpochMetrics) -> bool {
        m.epoch < self.0
    }
    fn message(&mut self, _: &str) {}
}

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

/// burn's random generator is per device and process-wide, and every epoch re-seeds it (dropout
/// masks, initialisation): two trainings at once in one process would draw from each other's
/// stream. `sepnet` trains one model at a time; these tests take turns.
static ONE_TRAINING_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fashion_present() -> bool {
    let present = Path::new(FASHION).is_dir();
    if !present {
        eprintln!("skipped: {FASHION} is absent (apt-get install dataset-fashion-mnist)");
    }
    present
}

fn config(model: &str, epochs: usize, steps: usize) -> TrainConfig {
    TrainConfig {
        model: model.into(),
        dataset: "fashion-mnist".into(),
        data_dir: Some(FASHION.into()),
        epochs,
        batch_size: 64,
        max_steps_per_epoch: Some(steps),
        ..Default::default()
    }
}

#[test]
fn short_fashion_mnist_training_learns() {
    if !fashion_present() {
        return;
    }
    let _turn = ONE_TRAINING_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let config = config(
        "conv:16:3:relu,pool,sep:32:3:relu,pool,flatten,dense:10",
        3,
        100,
    );
    let summary = train(
        &config,
        out.path(),
        false,
        &mut Console::new(Style::Quiet, ""),
    )
    .unwrap();
    // 300 steps of batch 64; chance is 10%.
    assert!(
        summary.test_accuracy > 0.75,
        "test accuracy {}",
        summary.test_accuracy
    );
    assert_eq!(summary.epochs, 3);
    assert_eq!(
        summary.confusion_matrix.iter().flatten().sum::<u64>(),
        10_000
    );
    for file in [
        "config.json",
        "metrics.csv",
        "metrics.json",
        "summary.json",
        "loss.png",
        "accuracy.png",
        "checkpoint/state.json",
    ] {
        assert!(out.path().join(file).is_file(), "missing {file}");
    }
    let csv = std::fs::read_to_string(out.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "header + 3 epochs");
}

#[test]
fn killed_and_resumed_run_ends_with_the_same_metrics() {
    if !fashion_present() {
        return;
    }
    let _turn = ONE_TRAINING_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // BatchNorm, dropout, augmentation, SGD momentum and a schedule: all state that resume restores.
    let model = "conv:8:3,bn,relu,pool,flatten,dropout:0.2,dense:10";
    let mut full = config(model, 3, 25);
    full.optimizer = OptimizerKind::Sgd;
    full.lr = 0.05;
    full.schedule = Schedule::Cosine;
    full.augment = true;
    full.val_split = 1000;
    let quiet = || Console::new(Style::Quiet, "");

    let unbroken = tempfile::tempdir().unwrap();
    let reference = train(&full, unbroken.path(), false, &mut quiet()).unwrap();

    // The "killed" run: it completed one epoch, and died while writing the next checkpoint.
    let broken = tempfile::tempdir().unwrap();
    let killed = train(&full, broken.path(), false, &mut KillAfter(1)).unwrap_err();
    assert!(matches!(killed, TrainError::Stopped(_)), "{killed}");
    assert_eq!(
        checkpoint::load_state(broken.path()).unwrap().epochs_done,
        1
    );
    std::fs::write(
        checkpoint::folder(broken.path()).join("model-epoch2.bpk.tmp"),
        b"half-written",
    )
    .unwrap();
    assert!(
        train(&full, broken.path(), false, &mut quiet()).is_err(),
        "a fresh run refuses to overwrite"
    );
    let resumed = train(&full, broken.path(), true, &mut quiet()).unwrap();

    let strip = |h: &[sepnet_train::EpochMetrics]| -> Vec<(usize, f64, f64, f64, f64, f64)> {
        h.iter()
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
    };
    let history = |dir: &Path| checkpoint::load_state(dir).unwrap().history;
    assert_eq!(
        strip(&history(broken.path())),
        strip(&history(unbroken.path()))
    );
    assert_eq!(resumed.test_accuracy, reference.test_accuracy);
    assert_eq!(resumed.test_loss, reference.test_loss);
    assert_eq!(resumed.confusion_matrix, reference.confusion_matrix);

    // A resume with other settings is refused.
    let other = TrainConfig {
        lr: 0.1,
        ..full.clone()
    };
    let err = train(&other, broken.path(), true, &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("other settings"), "{err}");
}
