//! Every built-in model prints a spec, and building from that spec gives the identical network.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use sepnet_model::layers::DepthwiseFans;
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{BUILTIN_MODELS, ModelOptions, Network, Summary, resolve_model};

#[test]
fn builtin_specs_round_trip() {
    for model in BUILTIN_MODELS {
        for options in [
            ModelOptions::default(),
            ModelOptions {
                classes: Some(7),
                ..Default::default()
            },
        ] {
            let builtin = model.spec(&options).unwrap();
            let text = builtin.to_string();
            let reparsed = NetworkSpec::parse(&text, builtin.input).unwrap();
            assert_eq!(reparsed.layers, builtin.layers, "{}: {text}", model.name);
            assert_eq!(
                reparsed.to_string(),
                text,
                "{}: printing is canonical",
                model.name
            );
            let (a, b) = (
                Summary::of(&builtin).unwrap(),
                Summary::of(&reparsed).unwrap(),
            );
            assert_eq!(
                (a.total_params, a.macs),
                (b.total_params, b.macs),
                "{}",
                model.name
            );
        }
    }
}

#[test]
fn built_networks_have_the_summarised_parameters() {
    let _rng = crate::rng_lock();
    let device = Device::flex();
    for model in BUILTIN_MODELS {
        let spec = model.spec(&ModelOptions::default()).unwrap();
        let network = Network::new(&spec, &device).unwrap();
        let summary = Summary::of(&spec).unwrap();
        // burn counts every tensor of the module, BatchNorm's running statistics included.
        assert_eq!(
            network.num_params() as u64,
            summary.total_params,
            "{}",
            model.name
        );
    }
}

#[test]
fn forward_pass_of_every_builtin_gives_the_expected_shape() {
    let _rng = crate::rng_lock();
    let device = Device::flex();
    for model in BUILTIN_MODELS {
        let spec = model.spec(&ModelOptions::default()).unwrap();
        let network = Network::new(&spec, &device).unwrap();
        let [h, w, c] = spec.input;
        let logits = network.forward(Tensor::random(
            [2, c, h, w],
            burn::tensor::Distribution::Default,
            &device,
        ));
        assert_eq!(logits.dims(), [2, model.classes], "{}", model.name);
        let values: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{}", model.name);
    }
}

#[test]
fn spec_errors_point_at_the_layer_that_does_not_fit() {
    let err = NetworkSpec::parse("conv:8:3,flatten,conv:8:3,dense:10", [8, 8, 1]).unwrap_err();
    assert_eq!(&err.spec[err.span.0..err.span.1], "conv:8:3");
    assert_eq!(err.span.0, 17);
    assert!(err.message.contains("spatial input"), "{}", err.message);
    let err = NetworkSpec::parse("conv:8:3,dense:10", [8, 8, 1]).unwrap_err();
    assert!(
        err.message.contains("add `flatten` or `gap`"),
        "{}",
        err.message
    );
    let err = NetworkSpec::parse("conv:8:5:valid,flatten,dense:2", [4, 4, 1]).unwrap_err();
    assert!(err.message.contains("does not fit"), "{}", err.message);
    let spatial_output = resolve_model("conv:8:3", &ModelOptions::default()).unwrap();
    assert!(
        Network::new(&spatial_output, &Device::flex()).is_err(),
        "a classifier must end flat"
    );
}

#[test]
fn depthwise_fans_print_only_when_not_the_default_and_round_trip() {
    let text =
        "conv:8:3,dw:3:fans=keras,sep:16:3:relu:fans=keras,dwsep:16:s=2:fans=keras,gap,dense:10";
    let spec = NetworkSpec::parse(text, [16, 16, 3]).unwrap();
    assert_eq!(spec.to_string(), text);
    let group = spec.with_depthwise_fans(DepthwiseFans::Group);
    assert_eq!(
        group.to_string(),
        "conv:8:3,dw:3,sep:16:3:relu,dwsep:16:s=2,gap,dense:10"
    );
    let torch = group.with_depthwise_fans(DepthwiseFans::Torch).to_string();
    assert_eq!(
        torch,
        "conv:8:3,dw:3:fans=torch,sep:16:3:relu:fans=torch,dwsep:16:s=2:fans=torch,gap,dense:10"
    );
    assert_eq!(
        NetworkSpec::parse(&torch, [16, 16, 3]).unwrap().to_string(),
        torch
    );
    let options = ModelOptions {
        depthwise_fans: Some(DepthwiseFans::Keras),
        ..Default::default()
    };
    let mobilenet = resolve_model("mobilenet", &options).unwrap();
    assert!(mobilenet.to_string().contains("dwsep:64:fans=keras"));
}

/// A network's weights are drawn when it is built, not lazily at first use (when a training
/// step would already have reseeded the RNG for dropout).
#[test]
fn weights_are_drawn_at_build_time() {
    let _rng = crate::rng_lock();
    struct Lazy {
        params: usize,
        lazy: usize,
    }
    impl ModuleVisitor for Lazy {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.params += 1;
            self.lazy += usize::from(!param.is_initialized());
        }
    }
    let spec = NetworkSpec::parse(
        "conv:4:3,bn,relu,sep:8:3,dwsep:8,flatten,dense:3",
        [8, 8, 1],
    );
    let network = Network::new(&spec.unwrap(), &Device::flex()).unwrap();
    let mut count = Lazy { params: 0, lazy: 0 };
    network.visit(&mut count);
    assert!(count.params >= 10, "{} parameters", count.params);
    assert_eq!(count.lazy, 0, "parameters left to draw at first use");
}
