//! A run stopped at the end of an epoch, or between two steps (Ctrl-C), resumes to exactly
//! the metrics of one never interrupted; a resume applies or refuses each setting.

use sepnet_train::run::CONFIG;
use sepnet_train::{
    OptimizerKind, ResumeRequest, Run, Schedule, TrainConfig, TrainError, resume, train,
};

use crate::common::{StopAfterEpoch, StopAtStep, config, quiet, strip, turn};

/// BatchNorm, dropout, augmentation, SGD momentum, a schedule and a validation hold-out: all
/// the state a resume must restore.
fn stateful() -> TrainConfig {
    let mut c = config("conv:8:3,bn,relu,pool,flatten,dropout:0.2,dense:10", 3, 25);
    c.optimizer = OptimizerKind::Sgd;
    c.lr = 0.05;
    c.schedule = Schedule::Cosine;
    c.augment = true;
    c.validation = sepnet_train::Validation::Images(1000);
    c
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn stopped_runs_resume_to_the_metrics_of_an_unbroken_one() {
    let _turn = turn();
    let full = stateful();
    let unbroken = tempfile::tempdir().unwrap();
    let reference = train(&full, unbroken.path(), &mut quiet()).unwrap();
    let expected = strip(
        &Run::open(unbroken.path())
            .unwrap()
            .state()
            .unwrap()
            .unwrap()
            .history,
    );

    // Stopped after epoch 1 (as a kill after its checkpoint), and inside epoch 2 (Ctrl-C).
    let after_epoch = tempfile::tempdir().unwrap();
    let stopped = train(&full, after_epoch.path(), &mut StopAfterEpoch(1)).unwrap_err();
    assert!(matches!(stopped, TrainError::Stopped(_)), "{stopped}");
    let mid_epoch = tempfile::tempdir().unwrap();
    let stopped = train(&full, mid_epoch.path(), &mut StopAtStep::new(37)).unwrap_err();
    assert!(
        stopped.to_string().contains("in epoch 2 after step 12"),
        "{stopped}"
    );

    // Stopped before its first step: the checkpoint holds the freshly drawn weights, which
    // must be the ones the unbroken run trained.
    let before_first = tempfile::tempdir().unwrap();
    let stopped = train(&full, before_first.path(), &mut StopAtStep::new(0)).unwrap_err();
    assert!(
        stopped.to_string().contains("in epoch 1 after step 0"),
        "{stopped}"
    );

    for dir in [after_epoch.path(), mid_epoch.path(), before_first.path()] {
        let again = train(&full, dir, &mut quiet()).unwrap_err().to_string();
        assert!(
            again.contains("--resume"),
            "a fresh run refuses an existing one: {again}"
        );
        let resumed = resume(dir, &ResumeRequest::unchanged(), &mut quiet()).unwrap();
        let history = Run::open(dir).unwrap().state().unwrap().unwrap().history;
        assert_eq!(strip(&history), expected, "{}", dir.display());
        assert_eq!(resumed.test_accuracy, reference.test_accuracy);
        assert_eq!(resumed.test_loss, reference.test_loss);
        assert_eq!(resumed.confusion_matrix, reference.confusion_matrix);
        assert_eq!(resumed.best_epoch, reference.best_epoch);
    }
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_resume_applies_or_refuses_each_setting_and_changes_nothing_when_it_refuses() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let first = config("conv:4:3,pool,flatten,dense:10", 1, 3);
    train(&first, dir.path(), &mut quiet()).unwrap();
    let before = std::fs::read(dir.path().join(CONFIG)).unwrap();

    let refused = ResumeRequest {
        config: TrainConfig {
            epochs: 2,
            lr: 0.5,
            optimizer: OptimizerKind::Sgd,
            ..first.clone()
        },
        given: vec!["epochs".into(), "lr".into(), "optimizer".into()],
    };
    let err = resume(dir.path(), &refused, &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--lr 0.5 (this run: 0.001)"), "{err}");
    assert!(err.contains("--optimizer sgd (this run: adam)"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join(CONFIG)).unwrap(),
        before,
        "config.json untouched"
    );

    let more = ResumeRequest {
        config: TrainConfig {
            epochs: 2,
            ..first.clone()
        },
        given: vec!["epochs".into()],
    };
    let summary = resume(dir.path(), &more, &mut quiet()).unwrap();
    assert_eq!(summary.epochs, 2);
    assert_eq!(Run::open(dir.path()).unwrap().config.config.epochs, 2);
}
