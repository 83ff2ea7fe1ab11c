//! A module of a program's own — sepnet's layers, one layer in plain burn, burn's dropout —
//! trains through `sepnet_train::custom`, is killed (the process aborted mid-epoch) and
//! resumes to exactly the run that was never killed; `sepnet`'s own entry points refuse it
//! by name.

use std::process::Command;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};
use sepnet_model::layers::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Dense, DenseConfig, GlobalAvgPool,
};
use sepnet_model::{Activation, Classifier};
use sepnet_train::custom::{self, DataShape, OwnModel, Registry};
use sepnet_train::report::Reporter;
use sepnet_train::{EpochMetrics, ResumeRequest, Run, TrainConfig, TrainError, Weights};
use serde::{Deserialize, Serialize};

use crate::common::{StopAtStep, config, quiet, strip, turn};

/// A per-channel learnt scale, written in plain burn.
#[derive(Module, Debug)]
struct Scale {
    gamma: Param<Tensor<1>>,
}

impl Scale {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [c] = self.gamma.dims();
        x * self.gamma.val().reshape([1, c, 1, 1])
    }
}

#[derive(Module, Debug)]
struct Small {
    conv: Conv2d,
    bn: BatchNorm,
    scale: Scale,
    drop: Dropout,
    head: Dense,
}

impl Classifier for Small {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self
            .scale
            .forward(self.bn.forward(self.conv.forward(images)));
        self.head
            .forward(self.drop.forward(GlobalAvgPool.forward(x.clamp_min(0.0))))
    }
}

#[derive(Serialize, Deserialize)]
struct Settings {
    width: usize,
    dropout: f64,
}

fn small(settings: &Settings, shape: DataShape, device: &Device) -> Small {
    let width = settings.width;
    Small {
        conv: Conv2dConfig::new(shape.channels(), width, [3, 3])
            .with_stride([2, 2])
            .init(device),
        bn: BatchNormConfig::new(width).init(device),
        scale: Scale {
            gamma: Param::from_tensor(Tensor::ones([width], device)),
        },
        drop: DropoutConfig::new(settings.dropout).init(),
        head: DenseConfig::new(width, shape.classes)
            .with_activation(Activation::Linear)
            .init(device),
    }
}

fn registry() -> Registry<Small> {
    Registry::new().register("small", small)
}

fn model() -> OwnModel {
    let settings = Settings {
        width: 12,
        dropout: 0.1,
    };
    OwnModel::new("small", &settings).unwrap()
}

fn settings() -> TrainConfig {
    let mut c = config("ignored: a module of the program's own", 3, 25);
    c.augment = true;
    c.validation = sepnet_train::Validation::Images(1000);
    c
}

/// Aborts the process where [`StopAtStep`] would ask to stop: a kill, with no checkpoint of
/// the epoch so far.
struct AbortAtStep(StopAtStep);

impl Reporter for AbortAtStep {
    fn epoch_start(&mut self, _: usize, _: usize, _: usize) {}
    fn step(&mut self, _: usize, _: f64, _: f64) {}
    fn epoch_end(&mut self, _: &EpochMetrics) -> bool {
        true
    }
    fn message(&mut self, _: &str) {}
    fn should_stop(&self) -> bool {
        if self.0.should_stop() {
            std::process::abort();
        }
        false
    }
}

/// The child the kill test starts: trains into `SEPNET_OWN_RUN` and aborts in epoch 2.
#[test]
#[ignore = "started by a_killed_run_of_a_module_of_ones_own_resumes_bit_identically"]
fn killed_child() {
    let dir = std::env::var("SEPNET_OWN_RUN").expect("started by the kill test");
    let mut reporter = AbortAtStep(StopAtStep::new(37));
    let result = custom::train(
        &registry(),
        &model(),
        &settings(),
        dir.as_ref(),
        &mut reporter,
    );
    panic!("the run was to be killed in epoch 2, and ended: {result:?}");
}

/// Every weight and BatchNorm statistic of the run's last model, in the module's order.
fn weights(dir: &std::path::Path) -> Vec<f32> {
    struct Values(Vec<f32>);
    impl ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().into_data().iter::<f32>());
        }
    }
    let run = Run::open(dir).unwrap();
    let model = custom::load(&registry(), &run, &Device::flex(), Weights::Last).unwrap();
    let mut values = Values(Vec::new());
    model.visit(&mut values);
    values.0
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_killed_run_of_a_module_of_ones_own_resumes_bit_identically() {
    let _turn = turn();
    let unbroken = tempfile::tempdir().unwrap();
    let reference = custom::train(
        &registry(),
        &model(),
        &settings(),
        unbroken.path(),
        &mut quiet(),
    )
    .unwrap();
    let run = Run::open(unbroken.path()).unwrap();
    let own = run.config.network.module.as_ref().unwrap();
    assert_eq!(
        (own.name.as_str(), own.config["width"].as_u64()),
        ("small", Some(12))
    );
    assert_eq!(run.config.network.params, reference.params);
    assert_eq!(reference.params, 12 * 9 + 12 + 4 * 12 + 12 + 12 * 10 + 10);

    let killed = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "own_module::killed_child",
            "--ignored",
            "--nocapture",
        ])
        .env("SEPNET_OWN_RUN", killed.path())
        .output()
        .unwrap();
    assert!(!status.status.success(), "the child was killed");
    let epochs = Run::open(killed.path()).unwrap().state().unwrap().unwrap();
    assert_eq!((epochs.epochs_done, epochs.partial.is_none()), (1, true));

    let resumed = custom::resume(
        &registry(),
        killed.path(),
        &ResumeRequest::unchanged(),
        &mut quiet(),
    )
    .unwrap();
    let history = |dir: &std::path::Path| Run::open(dir).unwrap().state().unwrap().unwrap().history;
    assert_eq!(
        strip(&history(killed.path())),
        strip(&history(unbroken.path()))
    );
    let (ours, theirs) = (weights(killed.path()), weights(unbroken.path()));
    assert_eq!(ours.len(), 310);
    assert!(
        ours.iter()
            .zip(&theirs)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "bit-identical weights"
    );
    assert_eq!(resumed.test_accuracy, reference.test_accuracy);
    assert_eq!(resumed.confusion_matrix, reference.confusion_matrix);

    // Loaded back, it evaluates to the summary's test accuracy.
    let device = Device::flex();
    let net = custom::load(&registry(), &run, &device, Weights::Last).unwrap();
    let data = run.load_dataset(None, None, false).unwrap();
    let shape = run.dataset.image_shape;
    let norm = &run.dataset.normalization;
    let evaluation = sepnet_train::evaluate(&net, &data.test, shape, norm, 10, &device);
    assert_eq!(evaluation.accuracy, reference.test_accuracy);
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn what_cannot_be_done_with_a_module_of_ones_own_is_a_clear_error() {
    let _turn = turn();
    let mut one_epoch = settings();
    one_epoch.epochs = 1;
    let dir = tempfile::tempdir().unwrap();
    custom::train(&registry(), &model(), &one_epoch, dir.path(), &mut quiet()).unwrap();
    let config_before = std::fs::read(dir.path().join("config.json")).unwrap();

    let by_spec = sepnet_train::resume(dir.path(), &ResumeRequest::unchanged(), &mut quiet());
    let run = Run::open(dir.path()).unwrap();
    let loaded = run.network(&Device::flex(), Weights::Best);
    for err in [by_spec.unwrap_err(), loaded.unwrap_err()] {
        let text = err.to_string();
        assert!(matches!(err, TrainError::Config(_)), "{text}");
        assert!(
            text.contains("`small`") && text.contains("sepnet_train::custom"),
            "{text}"
        );
    }

    let other = Registry::<Small>::new().register("wide", small);
    let more = ResumeRequest::epochs(2);
    let err = custom::resume(&other, dir.path(), &more, &mut quiet()).unwrap_err();
    assert!(
        err.to_string()
            .contains("no module `small` is registered (this program's registry holds: wide)"),
        "{err}"
    );
    let wrong = OwnModel::new("small", &"twelve").unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let err = custom::train(&registry(), &wrong, &one_epoch, fresh.path(), &mut quiet());
    let err = err.unwrap_err().to_string();
    assert!(
        err.contains("the settings of module `small` do not fit it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(fresh.path()).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(
        std::fs::read(dir.path().join("config.json")).unwrap(),
        config_before
    );
}

#[test]
fn bench_times_a_module_of_ones_own() {
    let _turn = turn();
    let shape = DataShape {
        input: [28, 28, 1],
        classes: 10,
    };
    let settings = Settings {
        width: 12,
        dropout: 0.1,
    };
    let config = sepnet_train::bench::BenchConfig {
        batch_size: 8,
        steps: 3,
        warmup: 1,
        seed: 1,
    };
    let build = |device: &Device| small(&settings, shape, device);
    let device = Device::flex();
    let result = sepnet_train::bench::bench_module(
        "small",
        build,
        shape,
        sepnet_model::Backend::Flex,
        &device,
        &config,
    )
    .unwrap();
    assert_eq!(
        (result.model.as_str(), result.params, result.macs),
        ("small", 310, 0)
    );
    assert_eq!((result.steps, result.batch_size), (3, 8));
    assert!(result.train_step_ms > 0.0 && result.forward_ms > 0.0);
    let wrong = sepnet_train::bench::BenchConfig { steps: 0, ..config };
    let err = sepnet_train::bench::bench_module(
        "small",
        build,
        shape,
        sepnet_model::Backend::Flex,
        &device,
        &wrong,
    );
    assert!(err.is_err(), "zero timed steps are refused");
}
