//! Flags of train, eval, predict, export and compare that the workflow tests leave at their
//! defaults: each given once, and seen to take effect.

use crate::common::{FASHION, TINY, fails, json, ok, sepnet, test_image};

const DATA: [&str; 4] = ["--dataset", "fashion-mnist", "--data-dir", FASHION];

fn stderr_of(args: &[&str]) -> String {
    let out = sepnet(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn training_flags_are_recorded_and_reading_flags_choose_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let train = [
        "train",
        "--model",
        TINY,
        "--epochs",
        "3",
        "--max-steps",
        "4",
        "--val-split",
        "500",
        "--augment",
        "--early-stopping",
        "1",
        "--quiet",
        "--out",
        run_s,
    ];
    ok(&[&train[..], &DATA].concat());
    let config = json(&run.join("config.json"));
    assert_eq!(
        config["config"]["validation"],
        serde_json::json!({"images": 500})
    );
    assert_eq!(config["config"]["augment"], true);
    assert_eq!(config["config"]["early_stopping"], 1);
    let metrics = json(&run.join("metrics.json"));
    assert!(!metrics.as_array().unwrap().is_empty());

    let on_test = dir.path().join("on-test");
    let args = [
        "train",
        "--model",
        TINY,
        "--epochs",
        "1",
        "--max-steps",
        "2",
        "--validate-on-test",
        "--quiet",
        "--out",
        on_test.to_str().unwrap(),
    ];
    ok(&[&args[..], &DATA].concat());
    assert_eq!(
        json(&on_test.join("config.json"))["config"]["validation"],
        "test-split"
    );
    reading_flags_choose_the_weights(dir.path(), run_s);
}

/// eval, predict and export on `run`: `--split`, `--weights`, and what predict refuses.
fn reading_flags_choose_the_weights(dir: &std::path::Path, run_s: &str) {
    let eval: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--checkpoint",
        run_s,
        "--split",
        "train",
        "--weights",
        "last",
        "--json",
    ]))
    .unwrap();
    assert_eq!(eval["images"], 60_000);
    let image = test_image(dir).display().to_string();
    let said = stderr_of(&[
        "predict",
        "--checkpoint",
        run_s,
        "--weights",
        "last",
        &image,
    ]);
    assert!(said.contains("last weights"), "{said}");
    let said = stderr_of(&["predict", "--checkpoint", run_s, &image]);
    assert!(said.contains("best weights"), "{said}");
    let fifo = dir.join("fifo.png");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    for odd in [fifo.to_str().unwrap(), "/dev/zero"] {
        let err = fails(&["predict", "--checkpoint", run_s, odd]);
        assert!(err.contains("not a regular file"), "{odd}: {err}");
    }
    let out = dir.join("last.onnx");
    let said = stderr_of(&[
        "export",
        run_s,
        "--format",
        "onnx",
        "--weights",
        "last",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(said.contains("last weights"), "{said}");
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn compare_flags_plan_train_refuse_and_collect_partially() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("sweep");
    let plan_s = plan.to_str().unwrap();
    let models = format!("{TINY};conv:4:3:relu,gap,dense:10");
    let args = [
        "compare",
        "--models",
        &models,
        "--epochs",
        "1",
        "--max-steps",
        "3",
        "--validate-on-test",
        "--augment",
        "--early-stopping",
        "1",
        "--plan",
        plan_s,
    ];
    ok(&[&args[..], &DATA].concat());
    let written = json(&plan.join("plan.json"));
    let config = &written["tasks"][1]["config"];
    assert_eq!(config["validation"], "test-split");
    assert_eq!(config["augment"], true);
    assert_eq!(config["early_stopping"], 1);
    ok(&["compare", "--run-task", plan_s, "--task", "0", "--quiet"]);
    let err = fails(&["compare", "--collect", plan_s]);
    assert!(err.contains("1 of 2 tasks have not finished"), "{err}");
    let table = ok(&["compare", "--collect", plan_s, "--partial"]);
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| conv")).collect();
    assert!(rows.len() == 1 && rows[0].contains(TINY), "{table}");

    let out = dir.path().join("cmp");
    let args = [
        "compare",
        "--models",
        TINY,
        "--epochs",
        "1",
        "--max-steps",
        "3",
        "--val-split",
        "5%",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    ok(&[&args[..], &DATA].concat());
    let err = fails(&[&args[..], &DATA, &["--fresh"]].concat());
    assert!(err.contains("already holds a run"), "{err}");
}
