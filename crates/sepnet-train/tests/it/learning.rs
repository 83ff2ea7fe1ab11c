//! A short real training learns, and leaves a complete run directory.

use sepnet_train::{Run, Weights, train};

use crate::common::{config, quiet, turn};

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn short_fashion_mnist_training_learns_and_loads_back() {
    let _turn = turn();
    let out = tempfile::tempdir().unwrap();
    let config = config(
        "conv:16:3:relu,pool,sep:32:3:relu,pool,flatten,dense:10",
        3,
        100,
    );
    let summary = train(&config, out.path(), &mut quiet()).unwrap();
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
        "dataset.json",
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

    // One call gives the trained network back; it scores what the summary says.
    let run = Run::open(out.path()).unwrap();
    let device = burn::tensor::Device::flex();
    let network = run.network(&device, Weights::Last).unwrap();
    let dataset = sepnet_data::Locator {
        data_dir: Some(crate::common::FASHION.into()),
        ..Default::default()
    }
    .load(&sepnet_data::DatasetKind::FashionMnist)
    .unwrap();
    let norm = &run.dataset.normalization;
    let eval = sepnet_train::evaluate(&network, &dataset.test, [28, 28, 1], norm, 10, &device);
    assert_eq!(eval.accuracy, summary.test_accuracy);
    let best = run.network(&device, Weights::Best).unwrap();
    let eval = sepnet_train::evaluate(&best, &dataset.test, [28, 28, 1], norm, 10, &device);
    assert_eq!(eval.accuracy, summary.test_accuracy_at_best_epoch);
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn built_in_models_take_their_head_from_the_dataset_and_specs_must_fit() {
    let _turn = turn();
    let out = tempfile::tempdir().unwrap();
    // Fashion-MNIST has 10 classes: a spec ending in 5 is refused before anything is written.
    let wrong = config("conv:8:3,gap,dense:5", 1, 2);
    let err = train(&wrong, &out.path().join("wrong"), &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("dense:10"), "{err}");
    assert!(!out.path().join("wrong").exists(), "nothing was created");
    // A pinned --classes that disagrees with the dataset is refused too.
    let mut pinned = config("mnist-full", 1, 2);
    pinned.model_options.classes = Some(3);
    let err = train(&pinned, &out.path().join("pinned"), &mut quiet())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--classes 3 does not match the dataset (10 classes)"),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn the_best_epoch_is_chosen_on_held_out_training_images_by_default() {
    let config = config("conv:4:3,gap,dense:10", 1, 2);
    let prepared = sepnet_train::prepare(&config).unwrap();
    let (train, validation) = prepared.splits();
    assert_eq!((train.len(), validation.len()), (54_000, 6_000));
    let on_test = sepnet_train::TrainConfig {
        validation: sepnet_train::Validation::TestSplit,
        ..config
    };
    let prepared = sepnet_train::prepare(&on_test).unwrap();
    assert_eq!(
        prepared.splits().1.len(),
        10_000,
        "the published protocol: the test split"
    );
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn early_stopping_ends_the_run_and_a_resumed_run_stays_ended() {
    let _turn = turn();
    let out = tempfile::tempdir().unwrap();
    // A rate so small that the weights do not move: validation accuracy never improves.
    let frozen = sepnet_train::TrainConfig {
        lr: 1e-20,
        early_stopping: Some(1),
        ..config("conv:4:3,gap,dense:10", 5, 3)
    };
    let summary = train(&frozen, out.path(), &mut quiet()).unwrap();
    assert_eq!((summary.epochs, summary.best_epoch), (2, 1));
    let again = sepnet_train::resume(out.path(), &Default::default(), &mut quiet()).unwrap();
    assert_eq!(again.epochs, 2);
}
