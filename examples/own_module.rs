//! A network of your own — sepnet's layers plus one layer in plain burn — trained, resumed
//! and compared with a built-in, as `sepnet train` and `sepnet compare` do a spec. Any dataset
//! sepnet reads: `cargo run --release -p sepnet-examples --example own_module -- fashion DIR`

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use sepnet_model::layers::{
    Conv2d, Conv2dConfig, Dense, DenseConfig, GlobalAvgPool, SeparableConv2d, SeparableConv2dConfig,
};
use sepnet_model::{Activation, Classifier};
use sepnet_train::custom::{self, DataShape, OwnModel, Registry};
use sepnet_train::report::{Console, Style};
use sepnet_train::{ResumeRequest, TrainConfig, compare};

/// `x + gain · separable(x)` in plain burn around a sepnet layer: LayerScale (Touvron et al.
/// 2021), a per-channel gain small at first, so each block starts close to the identity.
#[derive(Module, Debug)]
struct ScaledResidual {
    conv: SeparableConv2d,
    gain: Param<Tensor<1>>,
}

impl ScaledResidual {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let gain = self.gain.val().reshape([1, self.gain.dims()[0], 1, 1]);
        x.clone() + self.conv.forward(x) * gain
    }
}

#[derive(Module, Debug)] // a stem, two residual separable blocks, a classifier
struct ResidualSeparable {
    stem: Conv2d,
    blocks: Vec<ScaledResidual>,
    head: Dense,
}

impl Classifier for ResidualSeparable {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = (self.blocks.iter()).fold(self.stem.forward(images), |x, b| b.forward(x));
        self.head.forward(GlobalAvgPool.forward(x))
    }
}

/// The constructor `config.json` names (with the width): resume rebuilds the network with it.
fn residual_separable(width: &usize, shape: DataShape, device: &Device) -> ResidualSeparable {
    let block = || ScaledResidual {
        conv: SeparableConv2dConfig::new(*width, *width, [3, 3])
            .with_activation(Activation::Relu)
            .init(device),
        gain: Param::from_tensor(Tensor::full([*width], 0.1, device)),
    };
    ResidualSeparable {
        stem: Conv2dConfig::new(shape.channels(), *width, [3, 3])
            .with_stride([2, 2])
            .with_activation(Activation::Relu)
            .init(device),
        blocks: vec![block(), block()],
        head: DenseConfig::new(*width, shape.classes).init(device),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config = TrainConfig {
        dataset: args.next().as_deref().unwrap_or("fashion").parse()?,
        data_dir: args.next().map(Into::into),
        epochs: 1,
        max_steps_per_epoch: Some(60),
        ..TrainConfig::default()
    };
    let out = tempfile::tempdir()?;
    let (ours, builtin) = (out.path().join("own"), out.path().join("builtin"));
    // Train one epoch, then resume the run for a second, as after a stop or a kill.
    let registry = Registry::new().register("residual-separable", residual_separable);
    let model = OwnModel::new("residual-separable", &16)?;
    let mut console = Console::new(Style::Human, model.name());
    custom::train(&registry, &model, &config, &ours, &mut console)?;
    let mine = custom::resume(&registry, &ours, &ResumeRequest::epochs(2), &mut console)?;

    // A built-in of sepnet's, under the same protocol.
    let spec_config = TrainConfig {
        model: "mnist-depthwise-literal".into(),
        epochs: 2,
        ..config.clone()
    };
    let mut console = Console::new(Style::Human, &spec_config.model);
    let theirs = sepnet_train::train(&spec_config, &builtin, &mut console)?;

    let names = [model.name().to_string(), spec_config.model.clone()];
    let rows = compare::rows(&[
        (names[0].clone(), vec![&mine]),
        (names[1].clone(), vec![&theirs]),
    ]);
    print!(
        "{}",
        compare::markdown(&compare::title(&names, &spec_config, 1), &rows)
    );
    Ok(())
}
