//! Fine-tuning (`TrainConfig::init_from`) and quantization-aware training
//! (`TrainConfig::fake_quant`): both change training, a fine-tuned quantization-aware run
//! resumes bit for bit, and a run that cannot be started from is refused before anything is
//! written.

use std::path::Path;

use sepnet_quant::{Granularity, Scheme};
use sepnet_train::{InitFrom, ResumeRequest, Run, TeacherWeights, TrainConfig, resume, train};

use crate::common::{StopAtStep, config, quiet, strip, turn};

const NET: &str = "conv:8:3,bn,relu,pool,dw:3,bn,relu,conv:16:1,bn,relu,gap,dense:10";

fn history(dir: &Path) -> Vec<(usize, f64, f64, f64, f64, f64)> {
    strip(&Run::open(dir).unwrap().state().unwrap().unwrap().history)
}

fn scheme(granularity: Granularity) -> Option<Scheme> {
    Some(Scheme {
        granularity,
        reduce_range: false,
    })
}

/// Two short epochs of `NET` from `base`'s last weights, through int8 weights of `fake_quant`.
fn tuned(base: &Path, fake_quant: Option<Scheme>) -> TrainConfig {
    TrainConfig {
        init_from: Some(InitFrom {
            run: base.to_path_buf(),
            weights: TeacherWeights::Last,
        }),
        fake_quant,
        lr: 1e-4,
        ..config(NET, 2, 12)
    }
}

fn trained(config: &TrainConfig) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    train(config, dir.path(), &mut quiet()).unwrap();
    dir
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn starting_weights_and_fake_quantization_are_used_and_resume_bit_for_bit() {
    let _turn = turn();
    let base = trained(&config(NET, 1, 25));
    let per_tensor = tuned(base.path(), scheme(Granularity::PerTensor));
    let unbroken = trained(&per_tensor);
    let expected = history(unbroken.path());

    // Each setting changes training: no start, no rounding, the other granularity.
    let fresh = TrainConfig {
        init_from: None,
        ..per_tensor.clone()
    };
    for other in [
        fresh,
        tuned(base.path(), None),
        tuned(base.path(), scheme(Granularity::PerChannel)),
    ] {
        let dir = trained(&other);
        assert_ne!(history(dir.path()), expected, "{:?}", other.fake_quant);
    }
    let record = Run::open(unbroken.path()).unwrap().config;
    let base_state = Run::open(base.path()).unwrap().state().unwrap().unwrap();
    let started = record.init_weights.expect("the starting weights recorded");
    assert_eq!(started.weights_sha256, base_state.model.sha256);

    // Stopped inside epoch 2 (Ctrl-C), then resumed: the unbroken run's numbers.
    let stopped = tempfile::tempdir().unwrap();
    train(&per_tensor, stopped.path(), &mut StopAtStep::new(17)).unwrap_err();
    resume(stopped.path(), &ResumeRequest::unchanged(), &mut quiet()).unwrap();
    assert_eq!(history(stopped.path()), expected);
}

fn refusal(config: &TrainConfig, out: &Path) -> String {
    let err = train(config, out, &mut quiet()).unwrap_err().to_string();
    assert!(
        !out.join("config.json").exists(),
        "nothing written before the refusal: {err}"
    );
    err
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn what_cannot_be_started_from_is_refused_before_anything_is_written() {
    let _turn = turn();
    let base = trained(&config(NET, 1, 5));
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("tuned");

    let other_net = TrainConfig {
        model: "conv:8:3,bn,relu,gap,dense:10".into(),
        ..tuned(base.path(), None)
    };
    let err = refusal(&other_net, &out);
    assert!(
        err.contains("--init-from") && err.contains("another network"),
        "{err}"
    );

    let unfinished = scratch.path().join("unfinished");
    train(&config(NET, 2, 5), &unfinished, &mut StopAtStep::new(3)).unwrap_err();
    let err = refusal(&tuned(&unfinished, None), &out);
    assert!(err.contains("has not finished"), "{err}");

    let missing = tuned(&scratch.path().join("nowhere"), None);
    let err = refusal(&missing, &out);
    assert!(
        err.contains("--init-from") && err.contains("nowhere"),
        "{err}"
    );

    // Its own run directory: a finished run cannot be written again from itself.
    let err = train(&tuned(base.path(), None), base.path(), &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot learn from itself"), "{err}");
}
