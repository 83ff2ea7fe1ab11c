//! `sepnet quantize`: every flag, the files it writes, and clear errors for what it cannot
//! quantize.

use std::path::Path;

use crate::common::{FASHION, fails, json, ok};

/// A spec with a BatchNorm to fold.
const WITH_BN: &str = "conv:8:3:nobias,bn,relu,pool,flatten,dense:10";

fn trained(dir: &Path, spec: &str) -> String {
    let run = dir.join("run").to_str().unwrap().to_string();
    let data = ["--dataset", "fashion-mnist", "--data-dir", FASHION];
    let rest = [
        "--epochs",
        "1",
        "--max-steps",
        "20",
        "--quiet",
        "--out",
        &run,
    ];
    ok(&[&["train", "--model", spec][..], &data, &rest].concat());
    run
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn quantize_writes_the_int8_model_and_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), WITH_BN);
    let text = ok(&["quantize", &run, "--calibration", "64"]);
    assert!(
        text.contains("int8 per-channel") && text.contains("1 BatchNorms folded"),
        "{text}"
    );
    let report = json(&Path::new(&run).join("quantization.json"));
    assert_eq!(report["granularity"], "per-channel");
    assert_eq!(report["calibration_images"], 64);
    assert_eq!(report["folded_batch_norms"], 1);
    let (float, int8) = (&report["float"], &report["int8"]);
    let lost = float["test_accuracy"].as_f64().unwrap() - int8["test_accuracy"].as_f64().unwrap();
    assert!(lost.abs() < 0.03, "int8 lost {lost}");
    assert!(report["agreement"].as_f64().unwrap() > 0.95, "{report}");
    assert_eq!(int8["per_class_accuracy"].as_array().unwrap().len(), 10);
    // int8 weights: about a quarter of the float file.
    let size = int8["onnx_bytes"].as_f64().unwrap() / float["onnx_bytes"].as_f64().unwrap();
    assert!((0.2..0.4).contains(&size), "int8/float size {size}");
    let onnx = std::fs::read(Path::new(&run).join("model.int8.onnx")).unwrap();
    assert_eq!(onnx.len() as u64, int8["onnx_bytes"].as_u64().unwrap());
    assert!(
        report["tensors"][0]["tensor"] == "images",
        "{}",
        report["tensors"]
    );
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn every_flag_of_quantize_does_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), WITH_BN);
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let quantize = |name: &str, flags: &[&str]| -> serde_json::Value {
        let base = ["quantize", &run, "--calibration", "32", "--out"];
        let text = ok(&[&base[..], &[&out(name), "--json"], flags].concat());
        serde_json::from_str(&text).unwrap()
    };
    let a = quantize(
        "a.onnx",
        &[
            "--granularity",
            "per-tensor",
            "--seed",
            "7",
            "--samples",
            "16",
        ],
    );
    assert_eq!(
        a,
        json(&dir.path().join("a.json")),
        "--json prints the report it writes"
    );
    assert_eq!(
        (&a["granularity"], &a["calibration_seed"]),
        (&"per-tensor".into(), &7.into())
    );
    let samples = std::fs::read(out("a.onnx") + ".samples.safetensors").unwrap();
    assert!(samples.len() > 16 * 784 * 4, "16 images with their logits");
    // The same seed chooses the same calibration images: the same bytes. Another seed, others.
    quantize("b.onnx", &["--granularity", "per-tensor", "--seed", "7"]);
    quantize("c.onnx", &["--granularity", "per-tensor", "--seed", "8"]);
    let bytes = |name: &str| std::fs::read(out(name)).unwrap();
    assert_eq!(bytes("a.onnx"), bytes("b.onnx"));
    assert_ne!(bytes("a.onnx"), bytes("c.onnx"));
    // Per-channel: a scale per output channel, so a larger file than per-tensor.
    let d = quantize(
        "d.onnx",
        &["--granularity", "per-channel", "--weights", "last"],
    );
    assert!(d["int8"]["onnx_bytes"].as_u64() > a["int8"]["onnx_bytes"].as_u64());
    assert_eq!(d["weights"], "last");
    // The data found where the flags say (where the run found them, here).
    let flags = [
        "--reduce-range",
        "--calibration-method",
        "percentile",
        "--dataset",
        "fashion-mnist",
    ];
    let e = quantize("e.onnx", &[&flags[..], &["--data-dir", FASHION]].concat());
    assert_eq!(
        (&e["reduce_range"], &e["calibration_method"]),
        (&true.into(), &"percentile".into())
    );
    assert_eq!(e["float"]["test_accuracy"], a["float"]["test_accuracy"]);
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn what_cannot_be_quantized_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path(), "conv:8:3,relu,bn,flatten,dense:10");
    let err = fails(&["quantize", &run]);
    assert!(err.contains("BatchNorm") && err.contains("folded"), "{err}");
    assert!(!Path::new(&run).join("model.int8.onnx").exists());
    let err = fails(&["quantize", &run, "--calibration", "0"]);
    assert!(err.contains("--calibration 0"), "{err}");
    let err = fails(&["quantize", &run, "--calibration", "60001"]);
    assert!(err.contains("the training split has 60000 images"), "{err}");
    let err = fails(&["quantize", &run, "--granularity", "per-row"]);
    assert!(err.contains("per-tensor, per-channel"), "{err}");
    let folder = dir.path().to_str().unwrap();
    assert!(fails(&["quantize", folder]).contains("not a sepnet run directory"));
    let err = fails(&["quantize", &run, "--out", folder]);
    assert!(err.contains("is a folder"), "{err}");
    let config = Path::new(&run).join("config.json");
    let err = fails(&["quantize", &run, "--out", config.to_str().unwrap()]);
    assert!(err.contains("a file of the run"), "{err}");
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn compare_int8_adds_what_each_model_keeps_at_8_bits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let out_s = out.to_str().unwrap();
    let models = format!("{WITH_BN};conv:8:3:relu,dw:3,bn,relu,conv:16:1,bn,relu,gap,dense:10");
    let base = [
        "compare",
        "--models",
        &models,
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        FASHION,
        "--epochs",
        "1",
        "--max-steps",
        "10",
        "--out",
        out_s,
    ];
    let text = ok(&[&base[..], &["--int8"]].concat());
    assert!(
        text.contains("int8 per-tensor acc") && text.contains("int8/float size"),
        "{text}"
    );
    let table = json(&out.join("compare.json"));
    assert!(
        table["title"]
            .as_str()
            .unwrap()
            .contains("int8: last weights"),
        "{}",
        table["title"]
    );
    for row in table["rows"].as_array().unwrap() {
        for column in [
            "int8_per_tensor_test_accuracy",
            "int8_per_channel_test_accuracy",
        ] {
            let int8 = row[column].as_f64().unwrap();
            let float = row["final_test_accuracy"].as_f64().unwrap();
            assert!(
                (int8 - float).abs() < 0.05,
                "{column}: {int8} against {float}"
            );
        }
    }
    // A dense layer of 15,690 weights: a quarter of the bytes. (The 562 parameters of the
    // second model weigh less than its scales and quantizer nodes: its int8 file is larger.)
    let ratio = table["rows"][0]["int8_size_ratio"].as_f64().unwrap();
    assert!((0.2..0.4).contains(&ratio), "int8/float size {ratio}");
    let runs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(runs.len(), 2, "a run per model");
    for run in &runs {
        for file in [
            "model.int8-per-tensor.onnx",
            "quantization-per-channel.json",
        ] {
            assert!(
                run.path().join(file).is_file(),
                "{:?} lacks {file}",
                run.path()
            );
        }
    }
    // One granularity: the other column says so; the runs are reused, not trained again.
    ok(&[&base[..], &["--int8", "per-channel", "--quiet"]].concat());
    let table = json(&out.join("compare.json"));
    assert!(table["rows"][0]["int8_per_tensor_test_accuracy"].is_null());
    assert!(table["rows"][0]["int8_per_channel_test_accuracy"].is_f64());
    let plan = dir.path().join("plan");
    let err = fails(&[&base[..], &["--int8", "--plan", plan.to_str().unwrap()]].concat());
    assert!(err.contains("--int8 with --plan"), "{err}");
    assert!(!plan.exists());
}

/// `train --init-from --init-weights --fake-quant --fake-quant-reduce-range`: the settings
/// reach `config.json`, the model comes from the run started from, and quantizing that run
/// another way is warned about.
#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn quantization_aware_fine_tuning_reaches_the_run_and_its_quantizing() {
    let dir = tempfile::tempdir().unwrap();
    let base = trained(dir.path(), WITH_BN);
    let tuned = dir.path().join("qat");
    let tuned_s = tuned.to_str().unwrap();
    let flags = "--init-weights last --fake-quant per-tensor --fake-quant-reduce-range \
                 --max-steps 5 --lr 1e-4 --quiet";
    let init = ["train", "--init-from", &base, "--out", tuned_s];
    ok(&[&init[..], &flags.split_whitespace().collect::<Vec<_>>()].concat());
    let record = json(&tuned.join("config.json"));
    let config = &record["config"];
    let started = json(&Path::new(&base).join("config.json"));
    for inherited in [
        "dataset",
        "data_dir",
        "epochs",
        "batch_size",
        "seed",
        "input_scaling",
    ] {
        assert_eq!(
            config[inherited], started["config"][inherited],
            "{inherited}"
        );
    }
    assert_eq!(config["lr"], 1e-4);
    assert_eq!(config["max_steps_per_epoch"], 5);
    assert_eq!(
        config["model"], WITH_BN,
        "the model of the run started from"
    );
    assert_eq!(config["init_from"]["run"], base.as_str());
    assert_eq!(config["init_from"]["weights"], "last");
    assert_eq!(config["fake_quant"]["granularity"], "per-tensor");
    assert_eq!(config["fake_quant"]["reduce_range"], true);
    assert_eq!(record["init_weights"]["epoch"], 1);

    let out = crate::common::sepnet(&["quantize", tuned_s, "--calibration", "32"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("trained quantization-aware") && err.contains("instead rounds"),
        "per-channel after 7-bit per-tensor training: {err}"
    );
}

#[test]
fn fine_tuning_flags_without_their_partner_are_refused() {
    let err = fails(&["train", "--model", WITH_BN, "--init-weights", "last"]);
    assert!(err.contains("--init-from RUN"), "{err}");
    let err = fails(&["train", "--model", WITH_BN, "--fake-quant-reduce-range"]);
    assert!(err.contains("--fake-quant"), "{err}");
    let err = fails(&["train", "--resume", "runs/x", "--fake-quant", "per-tensor"]);
    assert!(
        err.contains("--fake-quant") && err.contains("--resume"),
        "{err}"
    );
}
