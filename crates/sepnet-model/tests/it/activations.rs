//! The activations: each against its formula, each parsed, printed and summarised, and each
//! fused into a convolution (on sepnet's kernels: a smooth activation after the fused pass)
//! equal to the same activation as a layer of its own, forward and backward.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use sepnet_model::layers::Activation;
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Network, Summary};

/// The error function, Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * (-x * x).exp()).copysign(x)
}

/// The plain formula of each activation, in f64.
fn reference(activation: Activation, x: f64) -> f64 {
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let hard_sigmoid = |v: f64| (v + 3.0).clamp(0.0, 6.0) / 6.0;
    match activation {
        Activation::Linear => x,
        Activation::Relu => x.max(0.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Silu => x * sigmoid(x),
        Activation::Hardswish => x * hard_sigmoid(x),
        Activation::Hardsigmoid => hard_sigmoid(x),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
    }
}

#[test]
fn every_activation_matches_its_formula() {
    let device = Device::flex();
    let xs: Vec<f32> = (0..161).map(|i| -8.0 + 0.1 * i as f32).collect();
    for activation in Activation::ALL {
        let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device);
        let ys = activation.apply(x).into_data().try_to_vec::<f32>().unwrap();
        for (&x, &y) in xs.iter().zip(&ys) {
            let want = reference(activation, f64::from(x));
            assert!(
                (f64::from(y) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{activation:?}({x}) = {y}, not {want}"
            );
        }
    }
}

/// Each name as a layer and as the fused option of the convolution kinds: printed back in its
/// canonical name (`swish` is `silu`), summarised as Keras names its layer.
#[test]
fn every_activation_parses_prints_and_summarises() {
    let names = [
        "relu",
        "relu6",
        "sigmoid",
        "tanh",
        "silu",
        "hardswish",
        "hardsigmoid",
        "gelu",
    ];
    for name in names.into_iter().chain(["swish"]) {
        let canonical = if name == "swish" { "silu" } else { name };
        let text = format!(
            "conv:4:3:{name},dw:3:bias:{name},sep:4:3:{name},dwsep:4:{name},{name},gap,dense:2:{name}"
        );
        let spec = NetworkSpec::parse(&text, [8, 8, 1]).unwrap();
        let printed = spec.to_string();
        assert_eq!(
            NetworkSpec::parse(&printed, [8, 8, 1]).unwrap(),
            spec,
            "{name}"
        );
        // dwsep's default (relu) is left out; every other use prints the canonical name.
        let uses = printed.matches(&format!(":{canonical}")).count();
        assert_eq!(uses, if name == "relu" { 4 } else { 5 }, "{printed}");
        let summary = Summary::of(&spec).unwrap().to_string();
        let layer = if matches!(name, "relu" | "relu6") {
            "(ReLU"
        } else {
            "(Activation)"
        };
        assert!(summary.contains(layer), "{name}: {summary}");
    }
    let err = NetworkSpec::parse("conv:4:3:swishy,gap,dense:2", [8, 8, 1]).unwrap_err();
    assert!(err.to_string().contains("swishy"), "{err}");
}

/// `conv:F:K:ACT` (the activation fused into the convolution's bias pass, or after it) and
/// `conv:F:K,ACT` (a layer of its own) give the same outputs and weight gradients, with and
/// without autodiff.
#[test]
fn a_fused_activation_equals_the_same_activation_as_a_layer() {
    let _rng = crate::rng_lock();
    for activation in Activation::ALL {
        let name = activation.name().unwrap_or("linear");
        let fused = format!("conv:4:3:{name},flatten,dense:3");
        let layer = format!("conv:4:3,{name},flatten,dense:3");
        for device in [Device::flex(), Device::flex().autodiff()] {
            let run = |text: &str| {
                device.seed(7);
                let spec = NetworkSpec::parse(text, [6, 6, 2]).unwrap();
                let net = Network::new(&spec, &device).unwrap();
                device.seed(8);
                let x = Tensor::<4>::random([2, 2, 6, 6], Distribution::Normal(0.0, 2.0), &device);
                let x = if device.is_autodiff() {
                    x.require_grad()
                } else {
                    x
                };
                let y = net.forward(x.clone());
                let values = y.clone().into_data().try_to_vec::<f32>().unwrap();
                let grad = match device.is_autodiff() {
                    true => {
                        let grads = y.sum().backward();
                        x.grad(&grads)
                            .unwrap()
                            .into_data()
                            .try_to_vec::<f32>()
                            .unwrap()
                    }
                    false => Vec::new(),
                };
                (values, grad)
            };
            let (a, b) = (run(&fused), run(&layer));
            for (u, v) in a.0.iter().chain(&a.1).zip(b.0.iter().chain(&b.1)) {
                assert!(
                    (u - v).abs() <= 1e-5 * (1.0 + v.abs()),
                    "{name}: {u} vs {v}"
                );
            }
            assert_eq!(a.1.len(), b.1.len());
        }
    }
}
