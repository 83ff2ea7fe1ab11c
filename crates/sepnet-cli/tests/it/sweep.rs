//! Sweeps: a plan run by a local launcher or by a real Slurm (a one-node cluster started by
//! `scripts/slurm-cluster.sh`), collected into the same table as a local `compare`, metric for
//! metric — also when a task was cancelled mid-training and resubmitted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{FASHION, TINY, json, ok, sepnet};

const SECOND: &str = "conv:4:3:relu,gap,dense:10";

/// `compare` arguments for two models × two seeds of short Fashion-MNIST trainings.
fn sweep_args(steps: usize) -> Vec<String> {
    let models = format!("{TINY};{SECOND}");
    let args = [
        "compare",
        "--models",
        &models,
        "--repeats",
        "2",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        FASHION,
        "--epochs",
        "2",
        "--batch-size",
        "64",
    ];
    let mut args: Vec<String> = args.map(String::from).to_vec();
    args.extend(["--max-steps".into(), steps.to_string(), "--quiet".into()]);
    args
}

fn run(args: &[String], extra: &[&str]) {
    let all: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect();
    ok(&all);
}

/// The metrics of a comparison table (`compare.json`), without the wall-clock columns.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let mut rows = json(&dir.join("compare.json"))["rows"]
        .as_array()
        .unwrap()
        .clone();
    for row in &mut rows {
        let row = row.as_object_mut().unwrap();
        for timing in [
            "train_seconds_per_epoch",
            "inference_images_per_second",
            "speedup",
            "distilled_train_seconds_per_epoch",
        ] {
            row.remove(timing);
        }
    }
    rows
}

/// `sweep_args` with SECOND distilled from TINY (the teacher: 2 models, 2 seeds, 6 tasks).
fn distill_args(steps: usize) -> Vec<String> {
    let mut args = sweep_args(steps);
    args[2] = SECOND.into();
    args.extend(["--distill-from".into(), TINY.into()]);
    args
}

/// Runs the plan in `sweep` on this machine, two tasks at a time.
fn run_plan_with_two_workers(sweep: &str) {
    ok(&["compare", "--run-plan", sweep, "--workers", "2", "--quiet"]);
}

/// A local `compare` of the same runs, for reference.
fn local(dir: &Path, steps: usize) -> Vec<serde_json::Value> {
    let out = dir.join("local");
    run(&sweep_args(steps), &["--out", out.to_str().unwrap()]);
    metrics(&out)
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_plan_run_by_local_workers_collects_to_the_local_table() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    let sweep_s = sweep.to_str().unwrap();
    run(&sweep_args(20), &["--plan", sweep_s]);
    // Collecting before anything ran lists every task and fails.
    let early = sepnet(&["compare", "--collect", sweep_s]);
    assert!(!early.status.success());
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(
        err.contains("task 3") && err.contains("Missing") && err.contains("4 of 4"),
        "{err}"
    );
    run_plan_with_two_workers(sweep_s);
    assert_eq!(metrics(&sweep), local(dir.path(), 20));
    // Another plan into the same folder is refused, not mixed.
    let other = sweep_args(21);
    let refused = sepnet(
        &other
            .iter()
            .map(String::as_str)
            .chain(["--plan", sweep_s])
            .collect::<Vec<_>>(),
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds a plan with other"));
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn a_distilled_plan_runs_its_teacher_first_and_collects_to_the_local_table() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    let sweep_s = sweep.to_str().unwrap();
    run(&distill_args(10), &["--plan", sweep_s]);
    let plan = json(&sweep.join("plan.json"));
    assert_eq!(plan["distill_from"], TINY);
    assert_eq!(plan["tasks"].as_array().unwrap().len(), 6);
    let submit = std::fs::read_to_string(sweep.join("submit.sh")).unwrap();
    assert!(
        submit.contains("--array=0-1") && submit.contains("--array=2-5"),
        "{submit}"
    );

    // A student task before its teacher has trained: a clear refusal.
    let early = sepnet(&["compare", "--run-task", sweep_s, "--task", "4"]);
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(
        !early.status.success() && err.contains("--teacher"),
        "{err}"
    );

    run_plan_with_two_workers(sweep_s);
    let out = dir.path().join("local");
    run(&distill_args(10), &["--out", out.to_str().unwrap()]);
    let rows = metrics(&sweep);
    assert!(rows[1]["distilled_test_accuracy"].is_f64(), "{rows:?}");
    assert_eq!(rows, metrics(&out));
}

/// A one-node Slurm cluster for the length of a test.
struct Cluster {
    state: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let state = tempfile::tempdir().unwrap();
        let status = Command::new(Self::script())
            .arg("start")
            .arg(state.path())
            .status()
            .unwrap();
        assert!(status.success(), "the Slurm cluster did not start");
        Cluster { state }
    }

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-cluster.sh")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", self.state.path().join("slurm.conf"));
        command
    }

    /// Submits `script` (with extra `sbatch` arguments) and returns the job id.
    fn sbatch(&self, script: &Path, extra: &[&str]) -> String {
        let out = self
            .command("sbatch")
            .args(["--parsable"])
            .args(extra)
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Waits until the queue is empty.
    fn drain(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(600) {
            let out = self.command("squeue").args(["-h"]).output().unwrap();
            if out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("the Slurm jobs did not finish in 10 minutes");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(Self::script())
            .arg("stop")
            .arg(self.state.path())
            .status();
    }
}

#[test]
#[cfg_attr(
    not(all(has_fashion, has_slurm)),
    ignore = "needs Fashion-MNIST and Slurm: apt-get install dataset-fashion-mnist slurm-wlm munge"
)]
fn a_slurm_sweep_collects_to_the_local_table_even_after_a_cancelled_task() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let reference = local(dir.path(), 120);

    // The whole array, untouched; its folder holds a space, a quote and a `%`, which the batch
    // script must quote for sbatch and for bash.
    let sweep = dir.path().join("my sweep's 100%");
    run(
        &sweep_args(120),
        &["--plan", sweep.to_str().unwrap(), "--cpus-per-task", "1"],
    );
    cluster.sbatch(&sweep.join("sweep.sbatch"), &[]);
    cluster.drain();
    ok(&["compare", "--collect", sweep.to_str().unwrap(), "--quiet"]);
    assert_eq!(metrics(&sweep), reference);

    // Task 1 cancelled once its run has started, then resubmitted alone: it resumes.
    let again = dir.path().join("again");
    run(
        &sweep_args(120),
        &["--plan", again.to_str().unwrap(), "--cpus-per-task", "1"],
    );
    let job = cluster.sbatch(&again.join("sweep.sbatch"), &[]);
    let task1 = again.join("runs/conv_8_3_relu_pool_flatten_dense_10/seed-43");
    let started = Instant::now();
    while !task1.join("checkpoint/state.json").exists()
        && started.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let cancelled = cluster
        .command("scancel")
        .arg(format!("{job}_1"))
        .status()
        .unwrap();
    assert!(cancelled.success());
    cluster.drain();
    assert!(
        !task1.join("summary.json").exists(),
        "task 1 was stopped before it finished"
    );
    let partial = sepnet(&["compare", "--collect", again.to_str().unwrap()]);
    assert!(
        !partial.status.success(),
        "a partly finished sweep fails to collect"
    );
    cluster.sbatch(&again.join("sweep.sbatch"), &["--array=1"]);
    cluster.drain();
    ok(&["compare", "--collect", again.to_str().unwrap(), "--quiet"]);
    assert_eq!(metrics(&again), reference);

    // With a teacher: submit.sh holds the students back until the teacher's tasks succeeded.
    let distilled = dir.path().join("distilled");
    run(
        &distill_args(10),
        &[
            "--plan",
            distilled.to_str().unwrap(),
            "--cpus-per-task",
            "1",
        ],
    );
    let submitted = cluster
        .command("sh")
        .arg(distilled.join("submit.sh"))
        .status()
        .unwrap();
    assert!(submitted.success());
    cluster.drain();
    ok(&[
        "compare",
        "--collect",
        distilled.to_str().unwrap(),
        "--quiet",
    ]);
    let out = dir.path().join("distilled-local");
    run(&distill_args(10), &["--out", out.to_str().unwrap()]);
    assert_eq!(metrics(&distilled), metrics(&out));
}

/// A plan whose tasks train on two processes each (`--ntasks 2`): Slurm starts every task as
/// one MPI job through `srun --mpi=pmix`, and the sweep collects into a table of runs that
/// each trained on two processes.
#[test]
#[cfg_attr(
    not(all(feature = "mpi", has_fashion, has_slurm)),
    ignore = "needs --features mpi (Open MPI), Fashion-MNIST and Slurm: apt-get install libopenmpi-dev openmpi-bin libclang-dev dataset-fashion-mnist slurm-wlm munge"
)]
fn a_slurm_sweep_of_mpi_tasks_starts_each_task_with_srun() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("mpi sweep");
    run(
        &sweep_args(10),
        &[
            "--plan",
            sweep.to_str().unwrap(),
            "--cpus-per-task",
            "1",
            "--ntasks",
            "2",
        ],
    );
    cluster.sbatch(&sweep.join("sweep.sbatch"), &[]);
    cluster.drain();
    ok(&["compare", "--collect", sweep.to_str().unwrap(), "--quiet"]);
    assert_eq!(crate::mpi::processes_of_runs(&sweep), [2, 2, 2, 2]);
    let logs = std::fs::read_dir(sweep.join("logs")).unwrap().count();
    assert_eq!(logs, 4, "one log per array task");
}
