//! `train --distributed`: one run on several MPI processes (`mpirun -np 2`, built with
//! `--features mpi`) trains what one process trains at the same global batch, keeps its
//! processes' weights bit-identical, survives a killed process, and resumes on another
//! process count. Without the feature, an MPI launch is refused with what to do.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{FASHION, TINY, json, ok};

const DATA: [&str; 4] = ["--dataset", "fashion-mnist", "--data-dir", FASHION];

/// `--distributed auto` on a build without MPI, in a process an MPI launcher started: refused
/// with the feature to build and the flag that trains alone; `--distributed off` trains alone.
#[test]
#[cfg(not(feature = "mpi"))]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn an_mpi_launch_without_the_mpi_feature_is_refused_or_trains_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let train = |mode: &str| {
        Command::new(env!("CARGO_BIN_EXE_sepnet"))
            .env("OMPI_COMM_WORLD_SIZE", "2")
            .args([
                "train",
                "--model",
                TINY,
                "--epochs",
                "1",
                "--max-steps",
                "2",
            ])
            .args([
                "--quiet",
                "--distributed",
                mode,
                "--out",
                out.to_str().unwrap(),
            ])
            .args(DATA)
            .output()
            .unwrap()
    };
    let refused = train("auto");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--features mpi") && stderr.contains("--distributed off"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing may be written before the refusal");
    assert!(train("off").status.success());
    assert_eq!(json(&out.join("config.json"))["processes"], 1);
    let err = crate::common::fails(&["train", "--model", TINY, "--distributed", "mpi", "--quiet"]);
    assert!(err.contains("built without MPI"), "{err}");
}

/// `mpirun -np N sepnet ARGS` (as root too: CI runs as root).
fn mpirun(processes: usize, args: &[&str]) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["--allow-run-as-root", "--oversubscribe", "-np"])
        .arg(processes.to_string())
        .arg(env!("CARGO_BIN_EXE_sepnet"))
        .args(args)
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("sepnet-tests-cache"),
        );
    command
}

fn succeeds(mut command: Command) -> Output {
    let out = command
        .output()
        .expect("mpirun runs (apt-get install openmpi-bin)");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn train_args<'a>(model: &'a str, out: &'a Path, epochs: &'a str, steps: &'a str) -> Vec<&'a str> {
    let run = out.to_str().unwrap();
    let mut args = vec!["train", "--model", model, "--out", run, "--epochs", epochs];
    args.extend(["--max-steps", steps, "--batch-size", "64", "--quiet"]);
    args.extend(DATA);
    args
}

/// The per-epoch (train loss, validation loss) of a run.
fn losses(run: &Path) -> Vec<(f64, f64)> {
    let metrics = json(&run.join("metrics.json"));
    let epochs = metrics.as_array().unwrap();
    let loss = |m: &serde_json::Value, key: &str| m[key].as_f64().unwrap();
    (epochs.iter())
        .map(|m| (loss(m, "train_loss"), loss(m, "val_loss")))
        .collect()
}

/// Two processes, each with half of every batch of 64, train what one process trains: the
/// gradients are summed in another order, so the losses agree to 1e-4 (relative), not bit for
/// bit. The job records its processes and the weights they were checked to share.
#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_fashion)),
    ignore = "needs --features mpi (Open MPI: apt-get install libopenmpi-dev openmpi-bin libclang-dev) and Fashion-MNIST"
)]
fn two_processes_train_what_one_process_trains() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    ok(&train_args(TINY, &one, "2", "30"));
    let mut args = train_args(TINY, &two, "2", "30");
    args.extend(["--distributed", "mpi"]);
    succeeds(mpirun(2, &args));
    for ((a_train, a_val), (b_train, b_val)) in losses(&one).into_iter().zip(losses(&two)) {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * a.abs();
        assert!(
            close(a_train, b_train) && close(a_val, b_val),
            "{one:?} vs {two:?}"
        );
    }
    let summary = json(&two.join("summary.json"));
    assert_eq!(summary["distributed"]["processes"], 2, "{summary}");
    assert_eq!(
        summary["distributed"]["weights_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(
        summary["distributed"]["allreduce_seconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(json(&two.join("config.json"))["processes"], 2);
    assert!(json(&one.join("summary.json")).get("distributed").is_none());
}

/// A network with BatchNorm (batch statistics per process, running statistics averaged) and
/// dropout (masks per process) keeps bit-identical weights on both processes — the trainer
/// checks it at every checkpoint and would stop — and moves between process counts: one
/// process, then two, then one.
#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_fashion)),
    ignore = "needs --features mpi (Open MPI: apt-get install libopenmpi-dev openmpi-bin libclang-dev) and Fashion-MNIST"
)]
fn a_run_moves_between_process_counts() {
    let model = "conv:8:3:nobias,bn,relu,pool,dropout:0.2,flatten,dense:10";
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    ok(&train_args(model, &run, "1", "30"));
    let resume = |epochs: &'static str| -> Vec<&'static str> {
        let run: &'static str = Box::leak(run.to_str().unwrap().to_string().into_boxed_str());
        vec![
            "train",
            "--resume",
            run,
            "--epochs",
            epochs,
            "--data-dir",
            FASHION,
        ]
    };
    let out = succeeds(mpirun(2, &resume("2")));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("trained on 1 process(es), continues on 2"),
        "{said}"
    );
    assert!(
        said.contains("rank 0 of 2, global batch 64 = 2 × 32"),
        "{said}"
    );
    let out = sepnet_quiet(&resume("3"));
    assert!(
        out.contains("trained on 2 process(es), continues on 1"),
        "{out}"
    );
    assert_eq!(losses(&run).len(), 3);
    assert_eq!(json(&run.join("config.json"))["processes"], 1);
}

/// Runs `sepnet` (one process), expects success, returns its stderr.
fn sepnet_quiet(args: &[&str]) -> String {
    let out = crate::common::sepnet(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The process of `mpirun` (pid `launcher`) that is MPI rank `rank`.
fn rank_pid(launcher: u32, rank: usize) -> Option<u32> {
    let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let parent: u32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let has_rank = environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes());
            (parent == launcher && has_rank).then_some(pid)
        })
}

/// Rank 1 killed (SIGKILL) after the first checkpoint: the job ends with an error instead of
/// waiting for it, and the run resumes from that checkpoint on one process.
#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_fashion)),
    ignore = "needs --features mpi (Open MPI: apt-get install libopenmpi-dev openmpi-bin libclang-dev) and Fashion-MNIST"
)]
fn a_killed_process_ends_the_job_and_the_run_resumes_on_another_count() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let args = train_args(TINY, &run, "4", "150");
    let job = mpirun(2, &args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !run.join("progress.json").exists() {
        assert!(
            started.elapsed().as_secs() < 300,
            "no checkpoint in 5 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let rank0 = rank_pid(job.id(), 0).expect("rank 0 is a child of mpirun");
    let rank1 = rank_pid(job.id(), 1).expect("rank 1 is a child of mpirun");
    // SAFETY: kill(2) with the pid of a process this test started (through mpirun).
    unsafe { libc::kill(rank1 as i32, libc::SIGKILL) };
    let out = job.wait_with_output().unwrap();
    assert!(!out.status.success(), "the job went on without rank 1");
    // Rank 0 finds its peer gone and ends within seconds, releasing the run's lock.
    let ended = std::time::Instant::now();
    while Path::new(&format!("/proc/{rank0}")).exists() {
        assert!(
            ended.elapsed().as_secs() < 60,
            "rank 0 outlived its job by a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let progress = json(&run.join("progress.json"));
    assert!(progress["epochs_done"].as_u64().unwrap() < 4, "{progress}");
    let said = sepnet_quiet(&["train", "--resume", run_s, "--data-dir", FASHION]);
    assert!(
        said.contains("trained on 2 process(es), continues on 1"),
        "{said}"
    );
    assert_eq!(losses(&run).len(), 4);
}

/// The `distributed` record of every run's summary.json under `dir`.
pub fn processes_of_runs(dir: &Path) -> Vec<u64> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        if entry.file_name().is_some_and(|n| n == "summary.json") {
            let summary = json(&entry);
            found.push(summary["distributed"]["processes"].as_u64().unwrap_or(1));
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `compare --ntasks 2` starts itself under `mpirun -np 2`: every run trains on two
/// processes, rank 0 writes the table, whose title says so. A plan with `--ntasks 2` records
/// it, and `--run-plan` starts each task as an MPI job of two.
#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_fashion)),
    ignore = "needs --features mpi (Open MPI: apt-get install libopenmpi-dev openmpi-bin libclang-dev) and Fashion-MNIST"
)]
fn compare_and_plans_train_each_run_on_ntasks_processes() {
    let dir = tempfile::tempdir().unwrap();
    let models = format!("{TINY};conv:4:3:relu,gap,dense:10");
    let compare = |extra: &[&str]| {
        let mut args = vec!["compare", "--models", &models, "--epochs", "1"];
        args.extend(["--max-steps", "10", "--quiet", "--ntasks", "2"]);
        args.extend(DATA);
        args.extend(extra);
        ok(&args);
    };
    let here = dir.path().join("here");
    compare(&["--out", here.to_str().unwrap()]);
    assert_eq!(processes_of_runs(&here), [2, 2]);
    let table = std::fs::read_to_string(here.join("compare.md")).unwrap();
    assert!(
        table.contains("data-parallel on 2 processes (batch 128 in all)"),
        "{table}"
    );

    let sweep = dir.path().join("sweep");
    compare(&["--plan", sweep.to_str().unwrap()]);
    assert_eq!(json(&sweep.join("plan.json"))["ntasks"], 2);
    let script = std::fs::read_to_string(sweep.join("sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --ntasks=2") && script.contains("srun --mpi=pmix"));
    ok(&["compare", "--run-plan", sweep.to_str().unwrap(), "--quiet"]);
    assert_eq!(processes_of_runs(&sweep), [2, 2]);
    // A task started on another number of processes than its plan's is refused.
    let err = crate::common::fails(&[
        "compare",
        "--run-task",
        sweep.to_str().unwrap(),
        "--task",
        "0",
    ]);
    assert!(
        err.contains("on 2 process(es), but this job has 1"),
        "{err}"
    );
}
