//! Build a new architecture from sepnet's layers, summarise it, and run it.
//!
//! `cargo run --release -p sepnet-examples --example custom_architecture`

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use sepnet_model::layers::{
    Activation, Conv2dConfig, DenseConfig, DepthwiseSeparableBlockConfig, GlobalAvgPool,
};
use sepnet_model::{Summary, spec::NetworkSpec};

fn main() {
    let device = Device::flex();
    // Layer by layer: a stem convolution, two MobileNet blocks, a classifier.
    let stem = Conv2dConfig::new(3, 32, [3, 3])
        .with_activation(Activation::Relu)
        .init(&device);
    let block1 = DepthwiseSeparableBlockConfig::new(32, 64)
        .with_stride(2)
        .init(&device);
    let block2 = DepthwiseSeparableBlockConfig::new(64, 128)
        .with_stride(2)
        .init(&device);
    let head = DenseConfig::new(128, 10).init(&device);

    let images = Tensor::<4>::random([8, 3, 32, 32], Distribution::Default, &device); // NCHW
    let x = block2.forward(block1.forward(stem.forward(images))); // [8, 128, 8, 8]
    let logits = head.forward(GlobalAvgPool.forward(x)); // [8, 10]
    println!("logits {:?}", logits.dims());
    let params = stem.num_params() + block1.num_params() + block2.num_params() + head.num_params();
    println!("parameters (incl. BatchNorm statistics): {params}");

    // The same network as a spec, with a Keras-style summary.
    let spec = NetworkSpec::parse(
        "conv:32:3:relu,dwsep:64:s=2,dwsep:128:s=2,gap,dense:10",
        [32, 32, 3],
    )
    .unwrap();
    let summary = Summary::of(&spec).unwrap();
    assert_eq!(summary.total_params as usize, params);
    print!("{summary}");
}
