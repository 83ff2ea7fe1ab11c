//! `train --teacher` and `compare --distill-from` end to end: the flags reach config.json,
//! the table gains its distillation columns, and flags without a teacher are refused.

use crate::common::{FASHION, TINY, fails, json, ok};

const DATA: [&str; 4] = ["--dataset", "fashion-mnist", "--data-dir", FASHION];
const STUDENT: &str = "sep:8:3:relu,pool,flatten,dense:10";

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn train_records_the_teacher_and_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (teacher, student) = (dir.path().join("teacher"), dir.path().join("student"));
    let short = ["--epochs", "1", "--max-steps", "3", "--quiet"];
    let teacher_s = teacher.to_str().unwrap();
    ok(&[
        &["train", "--model", TINY, "--out", teacher_s][..],
        &short,
        &DATA,
    ]
    .concat());
    let distil = [
        "train",
        "--model",
        STUDENT,
        "--out",
        student.to_str().unwrap(),
        "--teacher",
        teacher_s,
        "--temperature",
        "2.5",
        "--distill-weight",
        "0.7",
        "--teacher-weights",
        "last",
        "--cache-teacher",
    ];
    ok(&[&distil[..], &short, &DATA].concat());
    let config = json(&student.join("config.json"));
    let kd = &config["config"]["distill"];
    assert_eq!(kd["teacher"], teacher_s);
    assert_eq!(
        (kd["temperature"].as_f64(), kd["distill_weight"].as_f64()),
        (Some(2.5), Some(0.7))
    );
    assert_eq!(kd["teacher_weights"], "last");
    assert_eq!(kd["cache_teacher"], true);
    assert_eq!(config["teacher"]["epoch"], 1);
    let summary = json(&student.join("summary.json"));
    assert!(
        summary["teacher"]["agreement"].as_f64().is_some(),
        "{summary}"
    );

    // Resuming with another temperature is refused by name.
    let err = fails(&[
        "train",
        "--resume",
        student.to_str().unwrap(),
        "--temperature",
        "3",
    ]);
    assert!(err.contains("--temperature 3.0 (this run: 2.5)"), "{err}");
}

#[test]
fn distillation_flags_without_a_teacher_are_refused() {
    for flag in [
        ["--cache-teacher", "--augment"],
        ["--temperature", "3"],
        ["--distill-weight", "0.5"],
        ["--teacher-weights", "last"],
    ] {
        let err = fails(&[&["train", "--model", TINY][..], &flag, &DATA].concat());
        assert!(
            err.contains(flag[0]) && err.contains("--teacher RUN"),
            "{err}"
        );
        let err = fails(&[&["compare", "--models", TINY][..], &flag, &DATA].concat());
        assert!(err.contains("--distill-from MODEL"), "{err}");
    }
    let err = fails(
        &[
            &["compare", "--models", TINY, "--distill-from", TINY][..],
            &DATA,
        ]
        .concat(),
    );
    assert!(err.contains("name the students"), "{err}");
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn compare_trains_the_teacher_first_and_adds_the_distilled_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = [
        "compare",
        "--models",
        STUDENT,
        "--distill-from",
        TINY,
        "--repeats",
        "2",
        "--epochs",
        "1",
        "--max-steps",
        "3",
        "--out",
        out,
    ];
    ok(&[&args[..], &DATA, &["--quiet"]].concat());
    let table = json(&dir.path().join("compare.json"));
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows[0]["model"], TINY, "the teacher is the reference");
    assert!(rows[0]["distilled_test_accuracy"].is_null());
    assert!(
        rows[1]["distilled_test_accuracy"].as_f64().is_some(),
        "{table}"
    );
    assert!(rows[1]["distillation_gain"].as_f64().is_some());
    assert!(table["title"].as_str().unwrap().contains("distilled from"));
    let markdown = std::fs::read_to_string(dir.path().join("compare.md")).unwrap();
    assert!(markdown.contains("Δ distilled"), "{markdown}");
    // Each student's seed learnt from the teacher's run of the same seed.
    let students = std::fs::read_dir(dir.path()).unwrap().flatten();
    let distilled = students
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-distilled"));
    let distilled = distilled.expect("a folder of distilled runs");
    for seed in ["seed-42", "seed-43"] {
        let config = json(&distilled.join(seed).join("config.json"));
        let teacher = config["config"]["distill"]["teacher"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(teacher.ends_with(seed), "{teacher}");
    }
    // Again: everything is reused.
    let again = ok(&[&args[..], &DATA, &["--json"]].concat());
    assert!(again.contains("distilled_test_accuracy"));
}
