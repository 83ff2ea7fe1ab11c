//! What a hostile user tries without any dataset: flags that once panicked, settings that were
//! silently ignored or contradicted, sizes that aborted the process, signals to commands that
//! have nothing to save. Each is a clear error (exit 1 or 2) or a prompt, clean stop.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TINY, fails, ok, sepnet};

#[test]
fn blocks_classes_and_model_options_parse_everywhere() {
    let text = ok(&[
        "summary",
        "vgg-separable",
        "--blocks",
        "16x1,32x2",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        summary["spec"].as_str().unwrap().contains("sep:32:3"),
        "{summary}"
    );
    let bench = ok(&[
        "bench",
        "--models",
        "vgg-full",
        "--blocks",
        "4x1",
        "--input",
        "8x8x3",
        "--classes",
        "3",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--json",
    ]);
    let bench: serde_json::Value = serde_json::from_str(&bench).unwrap();
    assert_eq!(bench[0]["model"], "vgg-full");
    let err = fails(&["summary", "vgg-full", "--blocks", "64x0"]);
    assert!(err.contains("FILTERSxCONVS"), "{err}");
    let err = fails(&["summary", "mnist-full", "--blocks", "8x1"]);
    assert!(err.contains("--blocks applies to the VGG models"), "{err}");
    for (model, classes) in [
        ("mnist-full", "18446744073709551615"),
        ("vgg-full", "4294967297"),
        ("mobilenet", "1048577"),
        (TINY, "18446744073709551615"),
    ] {
        let err = fails(&["summary", model, "--classes", classes]);
        assert!(
            err.contains("--classes must be between 1 and"),
            "{classes}: {err}"
        );
    }
    let alpha = ok(&[
        "summary",
        "mobilenet",
        "--alpha",
        "0.25",
        "--rho",
        "0.5",
        "--json",
    ]);
    assert!(alpha.contains("\"input\""), "{alpha}");
}

#[test]
fn contradictory_or_impossible_spec_options_are_refused() {
    let cases = [
        (
            "conv:8:3:same:valid,flatten,dense:10",
            "both set the padding",
        ),
        ("conv:8:3:s=2:s=3,flatten,dense:10", "both set the stride"),
        (
            "conv:8:3:relu:relu6,flatten,dense:10",
            "both set the activation",
        ),
        ("conv:8:3:bias:nobias,flatten,dense:10", "both set the bias"),
        (
            "avgpool:2:pad=2,flatten,dense:10",
            "smaller than the 2×2 window",
        ),
        (
            "maxpool:3:pad=0/0/0/3,flatten,dense:10",
            "smaller than the 3×3 window",
        ),
    ];
    for (spec, expected) in cases {
        let err = fails(&["summary", spec]);
        assert!(err.contains(expected), "{spec}: {err}");
    }
    ok(&["summary", "avgpool:3:pad=1:s=1,flatten,dense:10"]);
}

#[test]
fn sizes_beyond_memory_are_refused_before_anything_is_allocated() {
    let huge = "conv:8:3,flatten,dense:10";
    let err = fails(&["summary", huge, "--input", "20000x20000x1", "--check"]);
    assert!(err.contains("memory"), "{err}");
    let err = fails(&[
        "bench",
        "--models",
        huge,
        "--input",
        "20000x20000x1",
        "--steps",
        "1",
    ]);
    assert!(err.contains("memory"), "{err}");
    // Under an address-space limit (ulimit -v, as a container or Slurm's --mem sets) the
    // limit itself is what the estimate is held against.
    let limited = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 3000000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sepnet"))
        .args(["summary", huge, "--input", "2000x2000x1", "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&limited.stderr);
    assert_eq!(limited.status.code(), Some(1), "{err}");
    assert!(err.contains("ulimit -v"), "{err}");
    let err = fails(&[
        "compare",
        "--models",
        "mnist-full",
        "--repeats",
        "100000000",
    ]);
    assert!(err.contains("--repeats"), "{err}");
    let err = fails(&[
        "bench",
        "--models",
        TINY,
        "--warmup",
        "18446744073709551615",
    ]);
    assert!(err.contains("--warmup"), "{err}");
    let err = fails(&["bench", "--models", TINY, "--steps", "100000000"]);
    assert!(err.contains("--steps"), "{err}");
}

#[test]
fn ignored_or_contradictory_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--model", TINY, "--out", out_s];
        args.extend(extra);
        let err = fails(&args);
        assert!(!out.exists(), "{extra:?} created the run");
        err
    };
    assert!(train(&["--momentum", "0.5"]).contains("--momentum is SGD's"));
    assert!(train(&["--nesterov", "--optimizer", "adamw"]).contains("--nesterov"));
    assert!(train(&["--rho", "0.5"]).contains("--rho"));
    let err = fails(&[
        "compare",
        "--models",
        "mnist-full,mnist-full",
        "--out",
        out_s,
    ]);
    assert!(err.contains("twice"), "{err}");
    for extra in [["--lr", "0.1"], ["--models", "mnist-full"]] {
        let mut args = vec!["compare", "--run-task", out_s, "--task", "0"];
        args.extend(extra);
        let err = fails(&args);
        assert!(
            err.contains(extra[0]) && err.contains("plan.json fixes"),
            "{err}"
        );
    }
    let err = fails(&["compare", "--collect", out_s, "--epochs", "3"]);
    assert!(err.contains("--epochs"), "{err}");
    let err = fails(&[
        "compare",
        "--run-plan",
        out_s,
        "--seed",
        "3",
        "--workers",
        "2",
    ]);
    assert!(err.contains("--seed"), "{err}");
}

#[test]
fn slurm_settings_that_would_break_the_batch_script_are_refused() {
    let base = [
        "compare",
        "--models",
        "mnist-full",
        "--plan",
        "/nonexistent/sweep",
    ];
    let cases: [(&[&str], &str); 6] = [
        (&["--time", "banana"], "Slurm time limit"),
        (
            &["--time", "04:00:00\n#SBATCH --exclusive"],
            "Slurm time limit",
        ),
        (&["--cpus-per-task", "0"], "--cpus-per-task"),
        (&["--gpus", "0"], "--gpus"),
        (&["--partition", "gpu\n#SBATCH --exclusive"], "Slurm name"),
        (&["--account", "a b"], "Slurm name"),
    ];
    for (extra, expected) in cases {
        let err = fails(&[&base[..], extra].concat());
        assert!(err.contains(expected), "{extra:?}: {err}");
    }
}

#[test]
fn a_hand_made_plan_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let cases = [
        r#"{"models": ["mnist-full"], "repeats": 1, "tasks": []}"#,
        r#"{"models": [], "repeats": 3, "tasks": []}"#,
        "not json",
    ];
    let dir_s = dir.path().to_str().unwrap();
    for text in cases {
        std::fs::write(&plan, text).unwrap();
        for action in [["--collect", dir_s], ["--run-plan", dir_s]] {
            let err = fails(&[&["compare"][..], &action].concat());
            assert!(err.contains("plan.json"), "{text}: {err}");
        }
        let err = fails(&["compare", "--run-task", dir_s, "--task", "0"]);
        assert!(err.contains("plan.json"), "{text}: {err}");
    }
}

#[test]
fn absurd_thread_counts_are_refused() {
    for threads in ["100000", "many"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sepnet"))
            .env("RAYON_NUM_THREADS", threads)
            .args(["summary", TINY, "--check"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{threads}: {err}");
        assert!(err.contains("RAYON_NUM_THREADS"), "{err}");
    }
}

/// A command with nothing to save stops within a second of SIGINT or SIGTERM, with 130.
#[test]
fn bench_stops_promptly_on_a_signal() {
    for signal in ["INT", "TERM"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sepnet"))
            .args(["bench", "--models", "vgg-full", "--batch-size", "16"])
            .args(["--steps", "100000"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let asked = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(2),
                "SIG{signal} ignored"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(130), "SIG{signal}");
    }
    let out = sepnet(&["models", "--json"]);
    assert!(out.status.success());
}
