//! `models`, `summary`, `data` and `bench`: answers and clear errors for bad input.

use crate::common::{TINY, fails, ok, ok_env};

#[test]
fn models_and_summary() {
    let models: serde_json::Value = serde_json::from_str(&ok(&["models", "--json"])).unwrap();
    assert_eq!(models.as_array().unwrap().len(), 20);
    let b0 = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "efficientnet-b0");
    assert_eq!(b0.unwrap()["params"], 5_330_564);
    assert_eq!(models[5]["name"], "vgg-full");
    assert_eq!(models[5]["params"], 1_186_378);
    let summary: serde_json::Value =
        serde_json::from_str(&ok(&["summary", "vgg-separable", "--json"])).unwrap();
    assert_eq!(summary["total_params"], 174_821);
    let text = ok(&["summary", "mobilenet", "--alpha", "0.5", "--check"]);
    assert!(text.contains("dwsep_block"), "{text}");
    assert!(fails(&["summary", "conv:32:3,sep:64:x"]).contains("^^^^^^^^"));
    assert!(fails(&["summary", "resnet50"]).contains("unknown model `resnet50`"));
    assert!(fails(&["summary", "vgg-full", "--input", "32x32"]).contains("HxWxC"));
    assert!(
        fails(&["summary", "vgg-full", "--backend", "tpu"]).contains("possible values: flex, wgpu")
    );
    let keras = ok(&["summary", "vgg-separable", "--depthwise-fans", "keras"]);
    assert!(keras.contains("sep:64:3:relu:fans=keras"), "{keras}");
    assert!(
        fails(&["summary", "vgg-separable", "--depthwise-fans", "he"])
            .contains("possible values: group, keras, torch")
    );
    assert!(
        fails(&["train", "--model", TINY, "--input-scaling", "zscore"])
            .contains("possible values: standardize, unit, raw")
    );
}

#[test]
fn data_errors_name_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().to_str().unwrap();
    let err = fails(&["data", "mnist", "--data-dir", missing, "--offline"]);
    assert!(
        err.contains("train-images-idx3-ubyte.gz") && err.contains(missing),
        "{err}"
    );
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte"),
        [0, 0, 8, 1, 0, 0, 0, 1],
    )
    .unwrap();
    for f in [
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(dir.path().join(f), [0u8; 4]).unwrap();
    }
    let err = fails(&["data", "mnist", "--data-dir", missing, "--offline"]);
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("IDX labels file"),
        "{err}"
    );
}

/// `bench --json` reports the documented fields for a built-in and a spec; `--layers` adds
/// one row per layer, with separable layers split into their depthwise and pointwise parts
/// (on one input channel, too few for the blocked layout, the layer runs in NCHW).
#[test]
fn bench_reports_medians_and_a_layer_profile() {
    let spec = "sep:8:3:relu,pool,flatten,dense:10";
    let out = ok(&[
        "bench",
        "--models",
        &format!("mnist-full;{spec}"),
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--layers",
        "--json",
    ]);
    let results: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        for key in [
            "forward_ms",
            "train_step_ms",
            "first_step_ms",
            "train_images_per_s",
        ] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{key} in {r}");
        }
        assert_eq!(r["backend"], "flex");
        assert_eq!(r["batch_size"], 4);
    }
    assert_eq!(results[0]["model"], "mnist-full");
    assert_eq!(results[0]["params"], 1_630_090);
    let layers: Vec<&str> = results[1]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        [
            "sep:8:3:relu/dw",
            "sep:8:3:relu/pw",
            "maxpool:2",
            "flatten",
            "dense:10"
        ]
    );
    let err = fails(&["bench", "--models", "mnist-full", "--steps", "0"]);
    assert!(err.contains("--steps"), "{err}");
}

/// `--layers` times each layer in the form the network runs it: a run of convolutions and a
/// pool in the blocked layout (the convolution before it writing the layout), a BatchNorm and
/// its activation as one. Two threads, so a batch of 4 has the image per thread a run needs.
#[test]
fn bench_layers_time_each_layer_as_the_network_runs_it() {
    let spec = "conv:16:3:relu,conv:16:3:relu,conv:16:3:relu,pool,conv:8:3:nobias,bn,relu6,\
                flatten,dense:2";
    let args = [
        "bench",
        "--models",
        spec,
        "--batch-size",
        "4",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--layers",
        "--json",
    ];
    let out = ok_env(&[("RAYON_NUM_THREADS", "2")], &args);
    let results: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = results[0]["layers"].as_array().unwrap();
    let layers: Vec<&str> = rows.iter().map(|l| l["layer"].as_str().unwrap()).collect();
    assert_eq!(
        layers,
        [
            "conv:16:3:relu [blocked]",
            "conv:16:3:relu [blocked]",
            "conv:16:3:relu [blocked]",
            "maxpool:2 [blocked]",
            "conv:8:3:nobias",
            "bn,relu6",
            "flatten",
            "dense:2"
        ]
    );
    let indices: Vec<u64> = rows.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 5, 7, 8]);
    assert_eq!(rows[1]["input"], serde_json::json!([4, 16, 28, 28]));
    assert_eq!(rows[1]["forward_flop"], 2 * 4 * 16 * 16 * 9 * 28 * 28);
}
