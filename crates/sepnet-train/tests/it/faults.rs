//! Faults of a run directory: a second writer, damaged or foreign checkpoint files, a loss
//! that explodes. Each is refused with a message naming the problem; nothing good is lost.

use std::path::Path;

use sepnet_train::run::RunDir;
use sepnet_train::{ResumeRequest, Run, TrainError, Weights, resume, train};

use crate::common::{StopAfterEpoch, config, quiet, turn};

/// A run of two short epochs, stopped after the first.
fn stopped_run(dir: &Path) {
    let c = config("conv:4:3,pool,flatten,dense:10", 2, 3);
    let stopped = train(&c, dir, &mut StopAfterEpoch(1)).unwrap_err();
    assert!(matches!(stopped, TrainError::Stopped(_)), "{stopped}");
}

fn checkpoint_file(dir: &Path, prefix: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir.join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap()
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_run_being_written_refuses_a_second_writer() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    stopped_run(dir.path());
    let held = RunDir::open(dir.path()).unwrap();
    let err = resume(dir.path(), &ResumeRequest::unchanged(), &mut quiet()).unwrap_err();
    assert!(matches!(err, TrainError::Busy(_)), "{err}");
    drop(held);
    resume(dir.path(), &ResumeRequest::unchanged(), &mut quiet()).unwrap();
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn damaged_and_foreign_checkpoint_files_are_refused_by_name() {
    let _turn = turn();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    stopped_run(a.path());
    stopped_run(b.path());

    // One flipped bit in the model file.
    let model = checkpoint_file(a.path(), "model-");
    let good = std::fs::read(&model).unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    std::fs::write(&model, &flipped).unwrap();
    let err = resume(a.path(), &ResumeRequest::unchanged(), &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&model.display().to_string()) && err.contains("SHA-256"),
        "{err}"
    );
    let err = Run::open(a.path())
        .unwrap()
        .network(&burn::tensor::Device::flex(), Weights::Last);
    assert!(err.unwrap_err().to_string().contains("damaged"));
    std::fs::write(&model, &good).unwrap();

    // The optimizer file of another run, under this run's name.
    let ours = checkpoint_file(a.path(), "optimizer-");
    let original = std::fs::read(&ours).unwrap();
    std::fs::copy(checkpoint_file(b.path(), "optimizer-"), &ours).unwrap();
    let err = resume(a.path(), &ResumeRequest::unchanged(), &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("optimizer-") && err.contains("from elsewhere"),
        "{err}"
    );
    std::fs::write(&ours, original).unwrap();

    // Another run's whole state.json.
    let state = a.path().join("checkpoint/state.json");
    let original = std::fs::read(&state).unwrap();
    std::fs::copy(b.path().join("checkpoint/state.json"), &state).unwrap();
    let err = resume(a.path(), &ResumeRequest::unchanged(), &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("another run directory"), "{err}");
    std::fs::write(&state, original).unwrap();

    resume(a.path(), &ResumeRequest::unchanged(), &mut quiet()).unwrap();
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn an_exploding_loss_stops_with_a_message_that_says_what_is_kept() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut absurd = config("conv:4:3,pool,flatten,dense:10", 2, 40);
    absurd.lr = 1e30;
    let err = train(&absurd, dir.path(), &mut quiet()).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("epoch 1") && text.contains("No checkpoint was written"),
        "{text}"
    );
    // The weights are checked after every step, so the failure names the layer, and the
    // folder, which holds no checkpoint, is left free for a new run.
    assert!(
        text.contains("layer") && text.contains("holds NaN or infinite"),
        "{text}"
    );
    assert!(!dir.path().join("config.json").exists());
}
