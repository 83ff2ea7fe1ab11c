//! `bneck` and `mbconv`, MobileNet v3's and EfficientNet's blocks: spec text, counts written out
//! by hand, refusals by name, and the residual where stride and channels allow.

use sepnet_model::Summary;
use sepnet_model::spec::NetworkSpec;

fn parse(text: &str, input: [usize; 3]) -> Result<NetworkSpec, String> {
    NetworkSpec::parse(text, input).map_err(|e| e.to_string())
}

#[test]
fn block_specs_print_back_and_bad_ones_are_refused_by_name() {
    for text in [
        "bneck:16:16:3:s=2:se=0.25",
        "bneck:24:72:3",
        "bneck:40:96:5:s=2:se=0.25:hardswish",
        "mbconv:24:3:s=2:se=0.25",
        "mbconv:16:5:e=1",
        "mbconv:16:3:se=0.5:relu6",
    ] {
        let full = format!("{text},gap,dense:2");
        assert_eq!(parse(&full, [32, 32, 16]).unwrap().to_string(), full);
    }
    for (bad, says) in [
        ("bneck:16:48", "filters, expanded channels and kernel"),
        ("bneck:16:48:3:se=2", "ratio in (0, 1]"),
        ("bneck:16:48:3:e=2", "does not take"),
        ("mbconv:16", "filters and kernel"),
        ("mbconv:16:3:gate=sigmoid", "does not take"),
        ("mbconv:16:3:se=0", "ratio in (0, 1]"),
    ] {
        let err = parse(&format!("{bad},gap,dense:2"), [32, 32, 16]).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// `bneck:16:48:5:se=0.25:hardswish` on 8×8×16: expand 16·48, BN 4·48, depthwise 25·48, BN 4·48,
/// SE to make_divisible(12) = 16: 48·16 + 16 and 16·48 + 48, project 48·16, BN 4·16; a
/// residual. `mbconv:24:3:s=2:se=0.25` on 8×8×16: expand to 96, SE to 0.25 · 16 = 4 (the
/// block's input), no residual.
#[test]
fn block_counts_written_out() {
    let s = Summary::of(&parse("bneck:16:48:5:se=0.25:hardswish,gap,dense:2", [8, 8, 16]).unwrap())
        .unwrap();
    let bneck = &s.layers[0];
    let se = 48 * 16 + 16 + 16 * 48 + 48;
    assert_eq!(
        bneck.params,
        16 * 48 + 4 * 48 + 25 * 48 + 4 * 48 + se + 48 * 16 + 4 * 16
    );
    assert!(bneck.sublayers.iter().any(|r| r.kind == "Add"));
    let kinds: Vec<&str> = bneck.sublayers.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds[2], "Activation",
        "hard swish is Keras's Activation layer"
    );
    let s =
        Summary::of(&parse("mbconv:24:3:s=2:se=0.25,gap,dense:2", [8, 8, 16]).unwrap()).unwrap();
    let mb = &s.layers[0];
    let se = 96 * 4 + 4 + 4 * 96 + 96;
    assert_eq!(
        mb.params,
        16 * 96 + 4 * 96 + 9 * 96 + 4 * 96 + se + 96 * 24 + 4 * 24
    );
    assert_eq!(mb.output_shape.to_vec(), [4, 4, 24]);
    assert!(!mb.sublayers.iter().any(|r| r.kind == "Add"));
    // Without expansion there is no expand convolution.
    let s = Summary::of(&parse("mbconv:16:3:e=1,gap,dense:2", [8, 8, 16]).unwrap()).unwrap();
    assert!(
        !s.layers[0]
            .sublayers
            .iter()
            .any(|r| r.name.ends_with(".expand"))
    );
}
