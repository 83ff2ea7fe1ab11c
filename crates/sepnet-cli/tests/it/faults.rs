//! Faults, created here: two processes racing for one run directory, a disk that fills up,
//! kills (SIGKILL and Ctrl-C) at random moments, NaN and absurd values for every number.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{FASHION, TINY, fails, json, ok, sepnet};

/// `train` arguments for a short Fashion-MNIST run into `out`.
fn train_args(out: &Path, epochs: usize, steps: usize) -> Vec<String> {
    let mut args: Vec<String> = ["train", "--model", TINY, "--dataset", "fashion-mnist"]
        .map(String::from)
        .to_vec();
    args.extend([
        "--data-dir".into(),
        FASHION.into(),
        "--batch-size".into(),
        "64".into(),
    ]);
    args.extend([
        "--epochs".into(),
        epochs.to_string(),
        "--max-steps".into(),
        steps.to_string(),
    ]);
    args.extend([
        "--seed".into(),
        "7".into(),
        "--quiet".into(),
        "--out".into(),
    ]);
    args.push(out.display().to_string());
    args
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sepnet"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every file of a run directory is whole: JSON parses, PNGs decode, the CSV has a row per
/// epoch, and no temporary file is left behind.
fn assert_complete(dir: &Path, epochs: usize) {
    for name in [
        "config.json",
        "dataset.json",
        "summary.json",
        "metrics.json",
        "checkpoint/state.json",
    ] {
        json(&dir.join(name));
    }
    for name in ["loss.png", "accuracy.png"] {
        image::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), epochs + 1, "{csv}");
    for folder in [dir.to_path_buf(), dir.join("checkpoint")] {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp"),
                "{} left {name}",
                folder.display()
            );
        }
    }
}

/// Per-epoch metrics without wall-clock fields.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let mut rows = json(&dir.join("metrics.json")).as_array().unwrap().clone();
    for row in &mut rows {
        let row = row.as_object_mut().unwrap();
        row.remove("train_seconds");
        row.remove("images_per_second");
    }
    rows
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn two_processes_racing_for_one_run_directory_leave_one_good_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let args = train_args(&run, 2, 40);
    let (a, b) = (spawn(&args), spawn(&args));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() != b.status.success(),
        "exactly one of the two writes the run"
    );
    let loser = if a.status.success() { b } else { a };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        err.contains("another sepnet process") || err.contains("already holds a run"),
        "{err}"
    );
    assert_complete(&run, 2);
    ok(&["eval", "--checkpoint", run.to_str().unwrap(), "--json"]);
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_full_disk_keeps_every_file_whole_and_resume_restores_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // A file-size limit of 100 blocks of 512 bytes: the config fits, the checkpoint does not.
    let limited = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 100 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sepnet"))
        .args(train_args(&run, 2, 20))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&limited.stderr);
    assert_eq!(limited.status.code(), Some(1), "{err}");
    assert!(
        err.contains("checkpoint") && err.contains("too large"),
        "{err}"
    );
    json(&run.join("config.json"));
    assert!(!run.join("checkpoint/state.json").exists());

    let run_s = run.to_str().unwrap();
    ok(&["train", "--resume", run_s, "--quiet"]);
    assert_complete(&run, 2);
    // Files lost after the run finished come back with a resume.
    for name in ["metrics.csv", "loss.png", "summary.json"] {
        std::fs::remove_file(run.join(name)).unwrap();
    }
    ok(&["train", "--resume", run_s, "--quiet"]);
    assert_complete(&run, 2);
}

/// A tiny seeded generator for the kill moments (the test must be repeatable).
fn delays(seed: u64, count: usize) -> Vec<Duration> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Duration::from_millis(200 + (state >> 33) % 1800)
        })
        .collect()
}

/// Kills a run `kills` times at random moments — alternately SIGKILL and SIGINT (Ctrl-C) —
/// resuming it after each, and checks it ends exactly as an unbroken run does.
fn killed_runs_resume_exactly(kills: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    ok(&train_args(&reference, 3, 60)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let run = dir.path().join("killed");
    let first = train_args(&run, 3, 60);
    let resume = ["train", "--resume", run.to_str().unwrap(), "--quiet"]
        .map(String::from)
        .to_vec();
    let mut started = false;
    for (k, delay) in delays(seed, kills).into_iter().enumerate() {
        let mut child = spawn(if started { &resume } else { &first });
        std::thread::sleep(delay);
        let signal = if k % 2 == 0 { "KILL" } else { "INT" };
        Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        started |= run.join("config.json").exists();
        if status.success() {
            break; // it finished before the signal
        }
    }
    let args = if started { resume } else { first };
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_complete(&run, 3);
    assert_eq!(metrics(&run), metrics(&reference));
    let (a, b) = (
        json(&run.join("summary.json")),
        json(&reference.join("summary.json")),
    );
    assert_eq!(a["confusion_matrix"], b["confusion_matrix"]);
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_run_killed_at_random_moments_resumes_bit_identically() {
    killed_runs_resume_exactly(4, 42);
}

/// The long version: `cargo test -- --ignored many_kills`.
#[test]
#[ignore = "long: 30 kills; run with `cargo test -p sepnet-cli -- --ignored many_kills`"]
fn many_kills_at_random_moments_resume_bit_identically() {
    killed_runs_resume_exactly(30, 7);
}

/// Refused before the data are even looked for: no dataset needed.
#[test]
fn nan_and_absurd_numbers_are_refused_before_anything_is_created() {
    let cases: [(&[&str], &str); 12] = [
        (&["--lr", "nan"], "--lr"),
        (&["--lr", "inf"], "--lr"),
        (&["--lr=-1"], "--lr"),
        (&["--momentum", "nan"], "--momentum"),
        (&["--weight-decay", "nan"], "--weight-decay"),
        (&["--label-smoothing", "NaN"], "--label-smoothing"),
        (&["--grad-clip", "nan"], "--grad-clip"),
        (&["--alpha", "nan"], "--alpha"),
        (&["--schedule", "onecycle:nan"], "onecycle"),
        (&["--schedule", "step:0:0.5"], "step"),
        (&["--epochs", "0"], "--epochs"),
        (&["--batch-size", "0"], "--batch-size"),
    ];
    refused_before_anything_is_created(&cases);
}

/// Refused once the network is fitted to the data, still before anything is created.
#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn impossible_networks_are_refused_before_anything_is_created() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--model", "conv:8:3,flatten,dense:10:m=2"],
            "dense:10:m=2",
        ),
        (&["--model", "conv:8:65535,flatten,dense:10"], "memory"),
        (
            &["--model", "conv:8:3:pad=100000,flatten,dense:10"],
            "more values per image",
        ),
        (
            &["--model", "dw:3:m=4294967296,flatten,dense:10"],
            "at most",
        ),
    ];
    refused_before_anything_is_created(&cases);
}

fn refused_before_anything_is_created(cases: &[(&[&str], &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    for &(extra, expected) in cases {
        let mut args = vec![
            "train",
            "--out",
            out_s,
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            FASHION,
        ];
        if !extra.contains(&"--model") {
            args.extend(["--model", TINY]);
        }
        args.extend(extra);
        let err = fails(&args);
        assert!(err.contains(expected), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} created {}", out.display());
    }
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_relative_data_dir_still_resumes_from_another_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(FASHION, dir.path().join("data")).unwrap();
    let run: PathBuf = dir.path().join("run");
    let mut args = train_args(&run, 1, 5);
    let at = args.iter().position(|a| a == FASHION).unwrap();
    args[at] = "data".into();
    let status = Command::new(env!("CARGO_BIN_EXE_sepnet"))
        .args(&args)
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = sepnet(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        "2",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Weights that turn NaN or infinite fail the run after that step, naming the layer — even
/// when the loss would stay finite — and a run that never checkpointed leaves its folder free.
#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn weights_that_turn_nan_fail_the_run_naming_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let args = |lr: &'static str| {
        let mut args = train_args(&run, 1, 10);
        args.extend(["--optimizer", "sgd", "--lr", lr].map(String::from));
        args
    };
    let out = Command::new(env!("CARGO_BIN_EXE_sepnet"))
        .args(args("1e30"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("holds NaN or infinite values"), "{err}");
    assert!(
        err.contains("layer ") && err.contains("can be used again"),
        "{err}"
    );
    assert!(!run.join("checkpoint").exists() && !run.join("config.json").exists());
    let status = Command::new(env!("CARGO_BIN_EXE_sepnet"))
        .args(args("0.01"))
        .status()
        .unwrap();
    assert!(status.success(), "the folder is used again");
    assert_complete(&run, 1);
}

/// A hand edit of any record, or a lost `state.json`, is refused by `--resume`; the restored
/// file resumes.
#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn edited_or_lost_records_are_refused_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    ok(&train_args(&run, 1, 5)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let edits = [
        ("config.json", "\"lr\": 0.001", "\"lr\": 0.002"),
        ("config.json", "\"seed\": 7", "\"seed\": 8"),
        (
            "dataset.json",
            "\"test_images\": 10000",
            "\"test_images\": 9999",
        ),
        (
            "checkpoint/state.json",
            "\"epochs_done\": 1",
            "\"epochs_done\": 0",
        ),
        ("checkpoint/state.json", "\"steps\": 5", "\"steps\": 4"),
    ];
    let resume = ["train", "--resume", run_s, "--epochs", "2", "--quiet"];
    for (file, from, to) in edits {
        let path = run.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let err = fails(&resume);
        assert!(
            err.contains("changed after sepnet wrote it"),
            "{file}: {err}"
        );
        std::fs::write(&path, text).unwrap();
    }
    let state = run.join("checkpoint/state.json");
    let kept = std::fs::read(&state).unwrap();
    std::fs::remove_file(&state).unwrap();
    let err = fails(&resume);
    assert!(err.contains("is missing, but the run has trained"), "{err}");
    std::fs::write(&state, kept).unwrap();
    ok(&resume);
    assert_complete(&run, 2);
}

/// A run directory moved away while training stops the run with an error at its next write:
/// nothing is written at the old path, and the moved run keeps its files.
#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_run_directory_moved_while_training_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_sepnet"))
        .args(train_args(&run, 3, 300))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while !run.join("dataset.json").exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let moved = dir.path().join("moved");
    std::fs::rename(&run, &moved).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("moved or deleted"), "{err}");
    assert!(!run.exists(), "nothing was written at the old path");
    assert!(moved.join("config.json").is_file());
}
