//! Distillation (`TrainConfig::distill`): the temperature and the weight are both used, a
//! distilled run resumes bit for bit, and a teacher that cannot teach is refused before
//! anything is written.

use std::path::Path;

use sepnet_data::InputScaling;
use sepnet_train::compare::{self, PlannedRun};
use sepnet_train::run::RunDir;
use sepnet_train::{
    Distillation, ResumeRequest, Run, RunSummary, TeacherWeights, TrainConfig, resume, train,
};

use crate::common::{StopAfterEpoch, StopAtStep, config, quiet, strip, turn};

const TEACHER: &str = "conv:8:3,bn,relu,pool,flatten,dense:10";
const STUDENT: &str = "sep:8:3,relu,pool,flatten,dense:10";

fn teacher_config() -> TrainConfig {
    config(TEACHER, 1, 20)
}

/// A student of the teacher in `teacher` with temperature `t` and weight `a`.
fn student(teacher: &Path, t: f64, a: f64) -> TrainConfig {
    TrainConfig {
        distill: Some(Distillation {
            temperature: t,
            distill_weight: a,
            ..Distillation::new(teacher.to_path_buf())
        }),
        ..config(STUDENT, 2, 15)
    }
}

fn history(dir: &Path) -> Vec<(usize, f64, f64, f64, f64, f64)> {
    strip(&Run::open(dir).unwrap().state().unwrap().unwrap().history)
}

fn trained(config: &TrainConfig) -> (tempfile::TempDir, RunSummary) {
    let dir = tempfile::tempdir().unwrap();
    let summary = train(config, dir.path(), &mut quiet()).unwrap();
    (dir, summary)
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn temperature_and_weight_are_used_and_a_distilled_run_resumes_bit_for_bit() {
    let _turn = turn();
    let (teacher, taught) = trained(&teacher_config());
    let (unbroken, summary) = trained(&student(teacher.path(), 4.0, 0.9));
    let expected = history(unbroken.path());

    let stats = summary
        .teacher
        .as_ref()
        .expect("the summary names the teacher");
    assert_eq!(stats.run, teacher.path());
    assert_eq!(stats.test_accuracy, taught.test_accuracy);
    assert!(
        (0.0..=1.0).contains(&stats.agreement) && stats.agreement > 0.3,
        "{stats:?}"
    );

    // Another temperature, another weight: other training.
    for (t, a) in [(2.0, 0.9), (4.0, 0.5)] {
        let (other, _) = trained(&student(teacher.path(), t, a));
        assert_ne!(
            history(other.path()),
            expected,
            "T = {t}, A = {a} changed nothing"
        );
    }
    // Weight 0: exactly the labels' loss, so exactly the run without a teacher.
    let (zero, _) = trained(&student(teacher.path(), 4.0, 0.0));
    let (plain, _) = trained(&TrainConfig {
        distill: None,
        ..student(teacher.path(), 4.0, 0.0)
    });
    assert_eq!(history(zero.path()), history(plain.path()));

    // Stopped inside epoch 2 (Ctrl-C), then resumed: the unbroken run's numbers.
    let stopped = tempfile::tempdir().unwrap();
    let config = student(teacher.path(), 4.0, 0.9);
    train(&config, stopped.path(), &mut StopAtStep::new(21)).unwrap_err();
    let resumed = resume(stopped.path(), &ResumeRequest::unchanged(), &mut quiet()).unwrap();
    assert_eq!(history(stopped.path()), expected);
    assert_eq!(resumed.test_loss, summary.test_loss);
    assert_eq!(resumed.teacher, summary.teacher);
    let record = Run::open(stopped.path()).unwrap().config;
    assert_eq!(record.config.distill, config.distill);
    assert_eq!(record.teacher.unwrap().epoch, 1);
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_cached_teacher_teaches_as_on_the_fly_and_resumes_bit_for_bit() {
    let _turn = turn();
    let (teacher, _) = trained(&teacher_config());
    let (on_the_fly, _) = trained(&student(teacher.path(), 4.0, 0.9));
    let mut cached = student(teacher.path(), 4.0, 0.9);
    if let Some(kd) = &mut cached.distill {
        kd.cache_teacher = true;
    }
    let (unbroken, _) = trained(&cached);
    // The cached logits come from batches of 500, not the student's: equal up to rounding.
    let (a, b) = (history(on_the_fly.path()), history(unbroken.path()));
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x.1 - y.1).abs() < 0.02 * x.1 && (x.4 - y.4).abs() < 0.02,
            "{x:?} vs {y:?}"
        );
    }
    let stopped = tempfile::tempdir().unwrap();
    train(&cached, stopped.path(), &mut StopAtStep::new(21)).unwrap_err();
    resume(stopped.path(), &ResumeRequest::unchanged(), &mut quiet()).unwrap();
    assert_eq!(history(stopped.path()), b);

    let augmented = TrainConfig {
        augment: true,
        ..cached
    };
    let out = tempfile::tempdir().unwrap();
    let err = train(&augmented, out.path(), &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--cache-teacher") && err.contains("--augment"),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_resume_follows_a_moved_teacher_and_refuses_a_retrained_one() {
    let _turn = turn();
    let root = tempfile::tempdir().unwrap();
    let (teacher, moved) = (root.path().join("teacher"), root.path().join("moved"));
    train(&teacher_config(), &teacher, &mut quiet()).unwrap();
    let mut config = TrainConfig {
        epochs: 3,
        ..student(&teacher, 4.0, 0.9)
    };
    if let Some(kd) = &mut config.distill {
        kd.teacher_weights = TeacherWeights::Last;
    }
    let student_dir = root.path().join("student");
    train(&config, &student_dir, &mut StopAfterEpoch(1)).unwrap_err();

    std::fs::rename(&teacher, &moved).unwrap();
    let err = resume(&student_dir, &ResumeRequest::unchanged(), &mut quiet()).unwrap_err();
    assert!(err.to_string().contains("--teacher"), "{err}");
    let mut elsewhere = ResumeRequest::unchanged();
    elsewhere.config.distill = Some(Distillation::new(moved.clone()));
    elsewhere.given = vec!["distill.teacher".into()];
    let stopped = resume(&student_dir, &elsewhere, &mut StopAfterEpoch(2)).unwrap_err();
    assert!(
        stopped.to_string().contains("stopped after epoch 2"),
        "{stopped}"
    );
    let record = Run::open(&student_dir).unwrap().config;
    assert_eq!(record.config.distill.unwrap().teacher, moved);

    // The teacher trains one more epoch: its last weights are no longer the ones that taught.
    let more = ResumeRequest {
        config: TrainConfig {
            epochs: 2,
            ..teacher_config()
        },
        given: vec!["epochs".into()],
    };
    resume(&moved, &more, &mut quiet()).unwrap();
    let err = resume(&student_dir, &ResumeRequest::unchanged(), &mut quiet()).unwrap_err();
    assert!(
        err.to_string()
            .contains("not the weights this run learnt from"),
        "{err}"
    );
    // Nor does `compare` reuse it.
    if let Some(kd) = &mut config.distill {
        kd.teacher = moved;
    }
    let planned = PlannedRun {
        model: "student".into(),
        config,
        dir: student_dir,
    };
    let Err(err) = compare::run_one(&planned, false, None, &mut quiet()) else {
        panic!("a student of a retrained teacher was reused");
    };
    assert!(
        err.to_string().contains("distilled from other weights"),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn teachers_that_cannot_teach_are_refused_before_anything_is_written() {
    let _turn = turn();
    let root = tempfile::tempdir().unwrap();
    let teacher = root.path().join("teacher");
    let out = root.path().join("student");
    let refused = |config: &TrainConfig, out: &Path| {
        let err = train(config, out, &mut quiet()).unwrap_err().to_string();
        assert!(!out.exists(), "{err}");
        err
    };

    let err = refused(&student(&teacher, 4.0, 0.9), &out);
    assert!(
        err.contains("--teacher") && err.contains("not a sepnet run directory"),
        "{err}"
    );

    // Unfinished: stopped after its first of two epochs.
    let unfinished = TrainConfig {
        epochs: 2,
        ..teacher_config()
    };
    train(&unfinished, &teacher, &mut StopAfterEpoch(1)).unwrap_err();
    let err = refused(&student(&teacher, 4.0, 0.9), &out);
    assert!(err.contains("has not finished"), "{err}");
    resume(&teacher, &ResumeRequest::unchanged(), &mut quiet()).unwrap();

    {
        let _writer = RunDir::open(&teacher).unwrap();
        let err = refused(&student(&teacher, 4.0, 0.9), &out);
        assert!(err.contains("still being written"), "{err}");
    }
    let err = train(&student(&teacher, 4.0, 0.9), &teacher, &mut quiet()).unwrap_err();
    assert!(
        err.to_string().contains("cannot learn from itself"),
        "{err}"
    );

    let raw = TrainConfig {
        input_scaling: InputScaling::Raw,
        ..student(&teacher, 4.0, 0.9)
    };
    let err = refused(&raw, &out);
    assert!(err.contains("scaled otherwise"), "{err}");

    for (t, a) in [(0.0, 0.5), (f64::NAN, 0.5), (4.0, 1.5), (4.0, f64::NAN)] {
        let err = refused(&student(&teacher, t, a), &out);
        assert!(
            err.contains("--temperature") || err.contains("--distill-weight"),
            "{err}"
        );
    }
    // And a sound student trains.
    train(&student(&teacher, 4.0, 0.9), &out, &mut quiet()).unwrap();
}

#[test]
#[cfg_attr(
    not(all(has_fashion, has_shared_mnist)),
    ignore = "needs Fashion-MNIST (apt-get install dataset-fashion-mnist) and ../shared/datasets/mnist"
)]
fn a_teacher_of_other_data_is_refused() {
    let _turn = turn();
    let (teacher, _) = trained(&teacher_config());
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/mnist");
    let config = TrainConfig {
        dataset: sepnet_data::DatasetKind::Mnist,
        data_dir: Some(mnist.canonicalize().unwrap()),
        ..student(teacher.path(), 4.0, 0.9)
    };
    let out = tempfile::tempdir().unwrap();
    let err = train(&config, out.path(), &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("other data than the student's mnist"), "{err}");
    assert!(!out.path().join("config.json").exists());
}
