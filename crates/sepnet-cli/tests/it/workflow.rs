//! train → eval → predict → resume → compare on real Fashion-MNIST, through the binary.

use std::path::Path;

use crate::common::{FASHION, TINY, fails, json, ok, sepnet, test_image};

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn train_eval_predict_compare_on_fashion_mnist() {
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
    let config = json(&run.join("config.json"));
    assert_eq!(config["config"]["input_scaling"], "unit");
    assert_eq!(
        config["network"]["spec"],
        "conv:8:3:relu,maxpool:2,flatten,dense:10"
    );
    let summary = json(&run.join("summary.json"));
    for key in [
        "model",
        "dataset",
        "params",
        "macs",
        "epochs",
        "test_accuracy",
        "best_val_accuracy",
        "best_epoch",
        "test_accuracy_at_best_epoch",
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
    predict_and_resume(dir.path(), &run);
    compare(dir.path(), &common);
}

/// predict on a real test image, then a resume that refuses a changed setting and extends
/// the run by one epoch.
fn predict_and_resume(dir: &Path, run: &Path) {
    let run_s = run.to_str().unwrap();
    // A test image as a PNG: a 28×28 grayscale image from the real test split.
    let png = test_image(dir);
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

    // Resume extends a finished run by one epoch; a changed setting is refused by name.
    let refused = fails(&["train", "--resume", run_s, "--epochs", "3", "--lr", "0.1"]);
    assert!(refused.contains("--lr 0.1 (this run: 0.001)"), "{refused}");
    ok(&["train", "--resume", run_s, "--epochs=3", "--quiet"]);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
}

/// compare of two specs on the same data: the table and charts it writes.
fn compare(dir: &Path, common: &[&str]) {
    let out = dir.join("cmp");
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
    args.extend(common.iter().copied());
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
    let table = json(&out.join("compare.json"));
    let rows = &table["rows"];
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["params_ratio"], 1.0);
    // The settings behind the table are recorded, and its title names the step cap.
    assert_eq!(table["settings"]["max_steps_per_epoch"], 40);
    assert_eq!(table["settings"]["batch_size"], 64);
    assert!(
        table["title"]
            .as_str()
            .unwrap()
            .contains("at most 40 steps per epoch"),
        "{table}"
    );
}

/// With stderr not a terminal (a log file, CI), compare still says what it does: a header per
/// model, a progress line as soon as there is one, the outcome, and where its outputs went.
#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_piped_compare_reports_progress_and_where_its_outputs_are() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let models = format!("{TINY};conv:4:3:relu,gap,dense:10");
    let args = [
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
        "40",
        "--out",
        out.to_str().unwrap(),
    ];
    let run = sepnet(&args);
    assert!(run.status.success());
    let log = String::from_utf8_lossy(&run.stderr);
    for expected in [
        "[1/2] conv:8:3:relu,pool,flatten,dense:10: conv:8:3:relu,maxpool:2",
        "params",
        "[1/2] conv:8:3:relu,pool,flatten,dense:10 epoch 1/1 step 20/40",
        "[1/2] conv:8:3:relu,pool,flatten,dense:10: Trained",
        "left for the other runs",
        "[2/2]",
        "written:",
    ] {
        assert!(log.contains(expected), "no `{expected}` in:\n{log}");
    }
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(
        table.contains("held out"),
        "the table says what validated: {table}"
    );
}
