//! `se:R`, squeeze-and-excitation: its spec text, its counts, and its forward pass against a
//! plain loop over its own weights.

use burn::tensor::{Device, Distribution, Tensor};
use sepnet_model::kinds::SqueezeExcite;
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Layer, Network, Summary};

#[test]
fn se_specs_print_parse_and_are_refused_by_name() {
    for text in [
        "se:0.25",
        "se:16",
        "se:0.5:silu",
        "se:4:gate=hardsigmoid",
        "se:1.0:relu6:gate=hardsigmoid",
    ] {
        let full = format!("conv:32:3,{text},gap,dense:2");
        let spec = NetworkSpec::parse(&full, [8, 8, 3]).unwrap();
        assert_eq!(spec.to_string(), full);
    }
    let spec = NetworkSpec::parse("conv:32:3,se:0.25:relu:gate=sigmoid,gap,dense:2", [8, 8, 3]);
    assert_eq!(spec.unwrap().to_string(), "conv:32:3,se:0.25,gap,dense:2");
    for (bad, says) in [
        ("se:1.5", "ratio in (0, 1]"),
        ("se:0", "squeezed channels"),
        ("se:0.25:gate=banana", "gate=banana"),
        ("se:0.25:s=2", "does not take"),
        ("se", "takes the squeeze ratio"),
    ] {
        let err =
            NetworkSpec::parse(&format!("conv:8:3,{bad},gap,dense:2"), [8, 8, 3]).unwrap_err();
        assert!(err.to_string().contains(says), "{bad}: {err}");
    }
    let flat = NetworkSpec::parse("flatten,se:0.25,dense:2", [8, 8, 3]).unwrap_err();
    assert!(flat.to_string().contains("spatial"), "{flat}");
}

/// 32 channels squeezed to 8: 32·8 + 8 and 8·32 + 32 parameters, 2 · 256 multiply-adds.
#[test]
fn se_counts_two_pointwise_convolutions_with_bias() {
    let spec = NetworkSpec::parse("conv:32:3,se:0.25,gap,dense:2", [8, 8, 3]).unwrap();
    let summary = Summary::of(&spec).unwrap();
    let se = &summary.layers[1];
    assert_eq!((se.params, se.macs), (264 + 288, 512));
    let names: Vec<&str> = se.sublayers.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        names,
        [
            "GlobalAveragePooling2D",
            "Conv2D",
            "ReLU",
            "Conv2D",
            "Activation",
            "Multiply"
        ]
    );
    let wide = NetworkSpec::parse("conv:32:3,se:3,gap,dense:2", [8, 8, 3]).unwrap();
    assert_eq!(
        Summary::of(&wide).unwrap().layers[1].params,
        32 * 3 + 3 + 3 * 32 + 32
    );
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The layer's output equals mean → W₁·s + b₁ → relu → W₂·z + b₂ → hard sigmoid → x · gate,
/// computed with loops from its own weights.
#[test]
fn se_forward_matches_a_plain_loop() {
    let _rng = crate::rng_lock();
    let device = Device::flex();
    let spec = NetworkSpec::parse("se:3:gate=hardsigmoid,gap,dense:2", [5, 4, 6]).unwrap();
    let net = Network::new(&spec, &device).unwrap();
    let Layer::SqueezeExcite(se) = &net.layers[0] else {
        panic!("an se layer")
    };
    let x = Tensor::<4>::random([2, 6, 5, 4], Distribution::Normal(0.0, 1.0), &device);
    let ours = values(SqueezeExcite::forward(se, x.clone()));
    let (xs, w1, b1) = (
        values(x),
        values(se.reduce.weight.val()),
        values(se.reduce.bias.as_ref().unwrap().val()),
    );
    let (w2, b2) = (
        values(se.expand.weight.val()),
        values(se.expand.bias.as_ref().unwrap().val()),
    );
    let (c, s, plane) = (6, 3, 20);
    for n in 0..2 {
        let image = &xs[n * c * plane..(n + 1) * c * plane];
        let mean: Vec<f32> = image
            .chunks(plane)
            .map(|p| p.iter().sum::<f32>() / plane as f32)
            .collect();
        let z: Vec<f32> = (0..s)
            .map(|j| (b1[j] + (0..c).map(|i| w1[j * c + i] * mean[i]).sum::<f32>()).max(0.0))
            .collect();
        for i in 0..c {
            let e = b2[i] + (0..s).map(|j| w2[i * s + j] * z[j]).sum::<f32>();
            let gate = ((e + 3.0) / 6.0).clamp(0.0, 1.0);
            for p in 0..plane {
                let (want, got) = (image[i * plane + p] * gate, ours[(n * c + i) * plane + p]);
                assert!(
                    (want - got).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{want} vs {got}"
                );
            }
        }
    }
}
