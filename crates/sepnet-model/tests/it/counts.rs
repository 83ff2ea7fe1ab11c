//! Parameter counts, MACs and shapes against Keras's published figures, the MobileNet paper,
//! and PyTorch (verified with `sepnet models --json | python3 reference/torch_models.py verify`).

use sepnet_model::spec::NetworkSpec;
use sepnet_model::{BUILTIN_MODELS, LayerSummary, ModelOptions, Summary, resolve_model};

fn summary(model: &str) -> Summary {
    Summary::of(&resolve_model(model, &ModelOptions::default()).unwrap()).unwrap()
}

fn spec_summary(text: &str, input: [usize; 3]) -> Summary {
    Summary::of(&NetworkSpec::parse(text, input).unwrap()).unwrap()
}

#[test]
fn keras_published_parameter_totals() {
    assert_eq!(summary("vgg-full").total_params, 1_186_378);
    assert_eq!(summary("vgg-separable").total_params, 174_821);
    assert_eq!(
        spec_summary("sep:64:3:valid", [32, 32, 3]).total_params,
        283
    );
    assert_eq!(
        spec_summary("dw:3:valid:bias,conv:64:1", [32, 32, 3]).total_params,
        286
    );
    assert_eq!(
        spec_summary("conv:64:3:valid", [32, 32, 3]).total_params,
        1_792
    );
}

#[test]
fn mobilenet_paper_figures() {
    // Table 8 of Howard et al.: 1.0 MobileNet-224: 4.2 M params, 569 M mult-adds;
    // Table 4: Conv MobileNet 29.3 M params, 4866 M mult-adds.
    let mobilenet = summary("mobilenet-imagenet");
    let full = summary("mobilenet-full-imagenet");
    let millions = |n: u64| n as f64 / 1e6;
    assert!(
        (millions(mobilenet.trainable_params) - 4.2).abs() < 0.05,
        "{}",
        mobilenet.trainable_params
    );
    assert!(
        (millions(mobilenet.macs) - 569.0).abs() < 1.0,
        "{}",
        mobilenet.macs
    );
    assert!(
        (millions(full.trainable_params) - 29.3).abs() < 0.05,
        "{}",
        full.trainable_params
    );
    assert!((millions(full.macs) - 4866.0).abs() < 2.0, "{}", full.macs);
    // Keras's MobileNet (alpha 1, 224, include_top): 4,253,864 total, 21,888 non-trainable.
    assert_eq!(mobilenet.total_params, 4_253_864);
    assert_eq!(mobilenet.non_trainable_params, 21_888);
}

#[test]
fn mobilenet_paper_single_layer_example() {
    // Section 3.1: a 3×3 layer at 14×14×512 → 512. Separable: 52.3 M mult-adds, 0.27 M params;
    // full: 462 M and 2.36 M.
    let sep = spec_summary("sep:512:3:nobias,gap,dense:1", [14, 14, 512]);
    let full = spec_summary("conv:512:3:nobias,gap,dense:1", [14, 14, 512]);
    let (s, f) = (&sep.layers[0], &full.layers[0]);
    assert_eq!(s.macs, 52_283_392);
    assert_eq!(s.params, 266_752);
    assert_eq!(f.macs, 462_422_016);
    assert_eq!(f.params, 2_359_296);
    let cost = s.separable.as_ref().unwrap();
    assert_eq!(cost.full_conv_macs, f.macs);
    assert!((cost.relative_macs - (1.0 / 512.0 + 1.0 / 9.0)).abs() < 1e-12);
    assert!((cost.closed_form - (1.0 / 512.0 + 1.0 / 9.0)).abs() < 1e-12);
}

/// (model, total params, non-trainable, MACs, per-layer output shapes), every number
/// measured on PyTorch 2.15 twins built by `reference/torch_models.py`.
const PYTORCH_VERIFIED: &[(&str, u64, u64, u64, &str)] = &[
    (
        "mnist-full",
        1630090,
        0,
        5449216,
        "28x28x32 14x14x32 14x14x64 7x7x64 3136 512 10",
    ),
    (
        "mnist-separable",
        1613747,
        0,
        2100752,
        "28x28x32 14x14x32 14x14x64 7x7x64 3136 512 10",
    ),
    (
        "mnist-hybrid",
        1613994,
        0,
        2294400,
        "28x28x32 14x14x32 14x14x64 7x7x64 3136 512 10",
    ),
    (
        "mnist-depthwise-literal",
        11276,
        0,
        124416,
        "10x10x1 5x5x1 2x2x1 1x1x1 1 512 10",
    ),
    (
        "mnist-hybrid-literal",
        202602,
        0,
        3573248,
        "28x28x32 14x14x32 5x5x32 2x2x32 128 512 10",
    ),
    (
        "vgg-full",
        1186378,
        0,
        152805376,
        "32x32x64 32x32x64 16x16x64 16x16x128 16x16x128 8x8x128 8x8x256 8x8x256 4x4x256 4096 10",
    ),
    (
        "vgg-separable",
        174821,
        0,
        18295808,
        "32x32x64 32x32x64 16x16x64 16x16x128 16x16x128 8x8x128 8x8x256 8x8x256 4x4x256 4096 10",
    ),
    (
        "vgg-hybrid",
        176330,
        0,
        19841024,
        "32x32x64 32x32x64 16x16x64 16x16x128 16x16x128 8x8x128 8x8x256 8x8x256 4x4x256 4096 10",
    ),
    (
        "mobilenet",
        3239114,
        21888,
        46354432,
        "32x32x32 32x32x32 32x32x32 32x32x64 16x16x128 16x16x128 8x8x256 8x8x256 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 2x2x1024 2x2x1024 1024 1024 10",
    ),
    (
        "mobilenet-full",
        28291306,
        11968,
        397256704,
        "32x32x32 32x32x32 32x32x32 32x32x64 32x32x64 32x32x64 16x16x128 16x16x128 16x16x128 16x16x128 16x16x128 16x16x128 8x8x256 8x8x256 8x8x256 8x8x256 8x8x256 8x8x256 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 4x4x512 2x2x1024 2x2x1024 2x2x1024 2x2x1024 2x2x1024 2x2x1024 1024 1024 10",
    ),
    (
        "mobilenet-v2",
        2270794,
        34112,
        87976448,
        "32x32x32 32x32x32 32x32x32 32x32x16 32x32x24 32x32x24 16x16x32 16x16x32 16x16x32 8x8x64 8x8x64 8x8x64 8x8x64 8x8x96 8x8x96 8x8x96 4x4x160 4x4x160 4x4x160 4x4x320 4x4x1280 4x4x1280 4x4x1280 1280 10",
    ),
    (
        "mobilenet-imagenet",
        4253864,
        21888,
        568740352,
        "112x112x32 112x112x32 112x112x32 112x112x64 56x56x128 56x56x128 28x28x256 28x28x256 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 7x7x1024 7x7x1024 1024 1024 1000",
    ),
    (
        "mobilenet-full-imagenet",
        29306056,
        11968,
        4867293184,
        "112x112x32 112x112x32 112x112x32 112x112x64 112x112x64 112x112x64 56x56x128 56x56x128 56x56x128 56x56x128 56x56x128 56x56x128 28x28x256 28x28x256 28x28x256 28x28x256 28x28x256 28x28x256 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 14x14x512 7x7x1024 7x7x1024 7x7x1024 7x7x1024 7x7x1024 7x7x1024 1024 1024 1000",
    ),
    (
        "mobilenet-v2-imagenet",
        3538984,
        34112,
        300774272,
        "112x112x32 112x112x32 112x112x32 112x112x16 56x56x24 56x56x24 28x28x32 28x28x32 28x28x32 14x14x64 14x14x64 14x14x64 14x14x64 14x14x96 14x14x96 14x14x96 7x7x160 7x7x160 7x7x160 7x7x320 7x7x1280 7x7x1280 7x7x1280 1280 1000",
    ),
    (
        "mobilenet-v3-small",
        2554968,
        12112,
        56510400,
        "112x112x16 112x112x16 112x112x16 56x56x16 28x28x24 28x28x24 14x14x40 14x14x40 14x14x40 14x14x48 14x14x48 7x7x96 7x7x96 7x7x96 7x7x576 7x7x576 7x7x576 576 1024 1024 1000",
    ),
    (
        "mobilenet-v3-large",
        5507432,
        24400,
        216589760,
        "112x112x16 112x112x16 112x112x16 112x112x16 56x56x24 56x56x24 28x28x40 28x28x40 28x28x40 14x14x80 14x14x80 14x14x80 14x14x80 14x14x112 14x14x112 7x7x160 7x7x160 7x7x160 7x7x960 7x7x960 7x7x960 960 1280 1280 1000",
    ),
    (
        "efficientnet-b0",
        5330564,
        42016,
        385814752,
        "112x112x32 112x112x32 112x112x32 112x112x16 56x56x24 56x56x24 28x28x40 28x28x40 14x14x80 14x14x80 14x14x80 14x14x112 14x14x112 14x14x112 7x7x192 7x7x192 7x7x192 7x7x192 7x7x320 7x7x1280 7x7x1280 7x7x1280 1280 1280 1000",
    ),
    (
        "mobilenet-v3-small-cifar",
        1540218,
        12112,
        17507328,
        "32x32x16 32x32x16 32x32x16 32x32x16 16x16x24 16x16x24 8x8x40 8x8x40 8x8x40 8x8x48 8x8x48 4x4x96 4x4x96 4x4x96 4x4x576 4x4x576 4x4x576 576 1024 1024 10",
    ),
    (
        "mobilenet-v3-large-cifar",
        4239242,
        24400,
        66459008,
        "32x32x16 32x32x16 32x32x16 32x32x16 32x32x24 32x32x24 16x16x40 16x16x40 16x16x40 8x8x80 8x8x80 8x8x80 8x8x80 8x8x112 8x8x112 4x4x160 4x4x160 4x4x160 4x4x960 4x4x960 4x4x960 960 1280 1280 10",
    ),
    (
        "efficientnet-b0-cifar",
        4062374,
        42016,
        116167168,
        "32x32x32 32x32x32 32x32x32 32x32x16 32x32x24 32x32x24 16x16x40 16x16x40 8x8x80 8x8x80 8x8x80 8x8x112 8x8x112 8x8x112 4x4x192 4x4x192 4x4x192 4x4x192 4x4x320 4x4x1280 4x4x1280 4x4x1280 1280 1280 10",
    ),
];

#[test]
fn every_builtin_matches_its_pinned_counts() {
    assert_eq!(
        PYTORCH_VERIFIED.len(),
        BUILTIN_MODELS.len(),
        "every built-in model is pinned"
    );
    for &(name, params, non_trainable, macs, shapes) in PYTORCH_VERIFIED {
        let s = summary(name);
        assert_eq!(
            (s.total_params, s.non_trainable_params, s.macs),
            (params, non_trainable, macs),
            "{name}"
        );
        let ours: Vec<String> = s
            .layers
            .iter()
            .map(|l| {
                l.output_shape
                    .to_vec()
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            })
            .collect();
        assert_eq!(ours.join(" "), shapes, "{name}");
    }
}

#[test]
fn width_and_resolution_multipliers() {
    // Keras MobileNet(alpha=0.5, 160×160): channels int(c·α); paper Table 6/7 rows:
    // 0.50 MobileNet-224: 1.32 M params, 149 M mult-adds; 1.0 MobileNet-160: 290 M mult-adds (Table 7).
    let half = Summary::of(
        &resolve_model(
            "mobilenet-imagenet",
            &ModelOptions {
                alpha: 0.5,
                ..Default::default()
            },
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        (half.trainable_params as f64 / 1e6 - 1.32).abs() < 0.02,
        "{}",
        half.trainable_params
    );
    assert!(
        (half.macs as f64 / 1e6 - 149.0).abs() < 1.5,
        "{}",
        half.macs
    );
    let low = resolve_model(
        "mobilenet-imagenet",
        &ModelOptions {
            rho: 160.0 / 224.0,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(low.input, [160, 160, 3]);
    let low = Summary::of(&low).unwrap();
    assert!((low.macs as f64 / 1e6 - 290.0).abs() < 1.5, "{}", low.macs);
    assert_eq!(
        low.total_params, 4_253_864,
        "resolution does not change parameters"
    );
}

#[test]
fn literal_models_warn_about_kernels_larger_than_input() {
    let s = summary("mnist-depthwise-literal");
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("32×32") && s.warnings[1].contains("64×64"));
    assert!(summary("mnist-full").warnings.is_empty());
}

#[test]
fn json_has_the_documented_fields() {
    let json: serde_json::Value = serde_json::from_str(&summary("mnist-hybrid").to_json()).unwrap();
    for key in [
        "model",
        "input",
        "total_params",
        "trainable_params",
        "non_trainable_params",
        "macs",
        "layers",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["input"], serde_json::json!([28, 28, 1]));
    let first = &json["layers"][0];
    assert_eq!(first["name"], "conv2d");
    assert_eq!(first["kind"], "Conv2D");
    assert_eq!(first["output_shape"], serde_json::json!([28, 28, 32]));
    assert_eq!(first["params"], 320);
    assert_eq!(first["macs"], 28 * 28 * 9 * 32);
    assert_eq!(json["layers"][4]["output_shape"], serde_json::json!([3136]));
}

#[test]
fn bad_options_are_refused() {
    let err = |model: &str, options: ModelOptions| {
        resolve_model(model, &options).unwrap_err().to_string()
    };
    assert!(
        err(
            "mobilenet",
            ModelOptions {
                alpha: 1.5,
                ..Default::default()
            }
        )
        .contains("--alpha must be in (0, 1]")
    );
    assert!(
        err(
            "vgg-full",
            ModelOptions {
                alpha: 0.5,
                ..Default::default()
            }
        )
        .contains("MobileNet")
    );
    assert!(err("resnet", ModelOptions::default()).contains("unknown model `resnet`"));
    // A smaller input that the VGG's pools cannot take.
    assert!(
        err(
            "vgg-full",
            ModelOptions {
                input: Some([4, 4, 3]),
                ..Default::default()
            }
        )
        .contains("does not fit")
    );
}

/// Keras's `MobileNetV2(weights=None)` reports 3,538,984 parameters of which 34,112 are
/// BatchNorm's moving statistics; the paper (Sandler et al., Table 4) gives 3.4 M parameters
/// and 300 M multiply-adds at 224×224, α = 1.
#[test]
fn mobilenet_v2_matches_keras_and_the_paper() {
    let s = summary("mobilenet-v2-imagenet");
    assert_eq!(s.total_params, 3_538_984);
    assert_eq!(s.non_trainable_params, 34_112);
    assert_eq!(s.macs / 1_000_000, 300);
    // The first block has no expansion; the residual is added where stride 1 and channels match.
    let blocks: Vec<&LayerSummary> = s
        .layers
        .iter()
        .filter(|l| l.kind == "InvertedResidual")
        .collect();
    assert_eq!(blocks.len(), 17);
    assert!(
        !blocks[0]
            .sublayers
            .iter()
            .any(|r| r.name.ends_with(".expand"))
    );
    let adds = blocks
        .iter()
        .filter(|b| b.sublayers.iter().any(|r| r.kind == "Add"))
        .count();
    assert_eq!(adds, 10, "stride-1 blocks whose channels do not change");
}

/// Keras 3's `MobileNetV3Small`/`MobileNetV3Large(weights=None)` and `EfficientNetB0` at
/// 224×224 with their 1000-class top (`reference/keras_counts.py`): 2,554,968, 5,507,432 and
/// 5,330,571 parameters — EfficientNet's 7 more are its `Normalization` layer's mean, variance
/// and count, which sepnet keeps outside the network (Keras's `Rescaling` layers have none).
/// The papers: Small 2.9 M / 66 M mult-adds and Large 5.4 M / 219 M (Howard et al., Table 3,
/// whose Small differs from the released one), B0 5.3 M / 0.39 B FLOPs (Tan & Le, Table 2).
#[test]
fn mobilenet_v3_and_efficientnet_b0_match_keras_and_the_papers() {
    let small = summary("mobilenet-v3-small");
    let large = summary("mobilenet-v3-large");
    let b0 = summary("efficientnet-b0");
    assert_eq!(
        (small.total_params, small.non_trainable_params),
        (2_554_968, 12_112)
    );
    assert_eq!(
        (large.total_params, large.non_trainable_params),
        (5_507_432, 24_400)
    );
    assert_eq!(
        (b0.total_params + 7, b0.non_trainable_params + 7),
        (5_330_571, 42_023)
    );
    let millions = |n: u64| n as f64 / 1e6;
    assert!((millions(large.macs) - 219.0).abs() < 3.0, "{}", large.macs);
    assert!((millions(b0.macs) - 390.0).abs() < 5.0, "{}", b0.macs);
    assert!((millions(b0.total_params) - 5.3).abs() < 0.05);
    assert!((millions(large.total_params) - 5.4).abs() < 0.15);
    // Residuals where the stride is 1 and the channels match; squeeze-and-excitation where the
    // tables say.
    let count = |s: &Summary, kind: &str, part: &str| {
        (s.layers.iter().filter(|l| l.kind == kind))
            .filter(|b| b.sublayers.iter().any(|r| r.name.ends_with(part)))
            .count()
    };
    assert_eq!(
        (
            count(&small, "Bneck", ".add"),
            count(&small, "Bneck", ".se_gate")
        ),
        (6, 9)
    );
    assert_eq!(
        (
            count(&large, "Bneck", ".add"),
            count(&large, "Bneck", ".se_gate")
        ),
        (10, 8)
    );
    assert_eq!(
        (
            count(&b0, "MBConv", ".add"),
            count(&b0, "MBConv", ".se_gate")
        ),
        (9, 16)
    );
    // Keras leaves out the first block's expansion (its width is the input's).
    assert_eq!(count(&small, "Bneck", ".expand"), 10);
    assert_eq!(count(&b0, "MBConv", ".expand"), 15);
}
