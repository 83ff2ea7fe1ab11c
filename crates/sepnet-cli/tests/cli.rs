//! The `sepnet` binary end to end: models, summary, data, train → eval → predict, compare,
//! and clear errors for bad input.

use std::path::Path;
use std::process::{Command, Output};

const FASHION: &str = "/usr/share/datasets/fashion-mnist";
const TINY: &str = "conv:8:3:relu,pool,flatten,dense:10";

fn sepnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepnet"))
        .args(args)
        .output()
        .expect("the sepnet binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = sepnet(args);
    assert!(
        out.status.success(),
        "sepnet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = sepnet(args);
    assert!(!out.status.success(), "sepnet {args:?} should fail");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains("panicked"),
        "sepnet {args:?} panicked: {stderr}"
    );
    stderr
}

#[test]
fn models_and_summary() {
    let models: serde_json::Value = serde_json::from_str(&ok(&["models", "--json"])).unwrap();
    assert_eq!(models.as_array().unwrap().len(), 12);
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
    assert!(fails(&["summary", "vgg-full", "--backend", "tpu"]).contains("unknown backend"));
    let keras = ok(&["summary", "vgg-separable", "--depthwise-fans", "keras"]);
    assert!(keras.contains("sep:64:3:relu:fans=keras"), "{keras}");
    assert!(
        fails(&["summary", "vgg-separable", "--depthwise-fans", "he"])
            .contains("group, keras or torch")
    );
    assert!(
        fails(&["train", "--model", TINY, "--input-scaling", "zscore"])
            .contains("standardize, unit or raw")
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

#[test]
fn train_eval_predict_compare_on_fashion_mnist() {
    if !Path::new(FASHION).is_dir() {
        eprintln!("skipped: {FASHION} is absent (apt-get install dataset-fashion-mnist)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let common = [
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        FASHION,
        "--batch-size",
        "64",
        "--max-steps",
        "40",
        "--quiet",
    ];
    // Inputs in [0, 1] rather than standardised: eval and predict must scale the same way.
    let mut args = vec![
        "train",
        "--model",
        TINY,
        "--epochs",
        "2",
        "--input-scaling",
        "unit",
        "--out",
        run_s,
    ];
    args.extend(common);
    let quiet = sepnet(&args);
    assert!(quiet.status.success());
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "--quiet prints nothing: {}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["input_scaling"], "unit");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    for key in [
        "model",
        "dataset",
        "params",
        "macs",
        "epochs",
        "test_accuracy",
        "best_val_accuracy",
        "train_seconds",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert!(summary["test_accuracy"].as_f64().unwrap() > 0.5);

    let eval: serde_json::Value =
        serde_json::from_str(&ok(&["eval", "--checkpoint", run_s, "--json"])).unwrap();
    assert_eq!(
        eval["accuracy"], summary["test_accuracy"],
        "eval reproduces the run's test accuracy"
    );

    // A test image as a PNG: a 28×28 grayscale image from the real test split.
    let d = sepnet_data::mnist::load(Path::new(FASHION), "fashion-mnist").unwrap();
    let png = dir.path().join("item.png");
    image::GrayImage::from_raw(28, 28, d.test.images[..784].to_vec())
        .unwrap()
        .save(&png)
        .unwrap();
    let predicted: serde_json::Value = serde_json::from_str(&ok(&[
        "predict",
        "--checkpoint",
        run_s,
        png.to_str().unwrap(),
        "--top",
        "2",
        "--json",
    ]))
    .unwrap();
    let top = predicted[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    assert!(top[0]["probability"].as_f64().unwrap() >= top[1]["probability"].as_f64().unwrap());
    assert!(
        fails(&["predict", "--checkpoint", run_s, "/nonexistent.png"]).contains("/nonexistent.png")
    );

    // Resume extends a finished run by one epoch.
    ok(&["train", "--resume", run_s, "--epochs", "3", "--quiet"]);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);

    let out = dir.path().join("cmp");
    let models = format!("{TINY};conv:8:3:relu,pool,sep:16:3:relu,gap,dense:10");
    let mut args = vec![
        "compare",
        "--models",
        &models,
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(common);
    ok(&args);
    for file in [
        "compare.json",
        "compare.csv",
        "compare.md",
        "val_accuracy.png",
        "accuracy_vs_macs.png",
    ] {
        assert!(out.join(file).is_file(), "compare wrote no {file}");
    }
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["params_ratio"], 1.0);
}

/// `bench --json` reports the documented fields for a built-in and a spec; `--layers` adds
/// one row per layer, with separable layers split into their depthwise and pointwise parts.
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
