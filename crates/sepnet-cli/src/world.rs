//! `--distributed`: whether `sepnet train` is one process of a data-parallel MPI job, and
//! what a failure on one process does to the others.

use anyhow::Result;
use sepnet_train::TrainError;
use sepnet_train::distributed::{Collective, Solo, mpi_launcher};

/// How `train` finds the processes it trains with.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Distributed {
    /// MPI when `mpirun` or `srun` started several processes, else one process.
    #[default]
    Auto,
    /// Always MPI (a single process started without a launcher is a job of one).
    Mpi,
    /// One process on its own, even under an MPI launcher.
    Off,
}

/// The processes of this job.
pub fn open(mode: Distributed) -> Result<Box<dyn Collective>> {
    match (mode, mpi_launcher()) {
        (Distributed::Off, _) | (Distributed::Auto, None) => Ok(Box::new(Solo)),
        (_, launcher) => mpi(launcher.unwrap_or("no launcher")),
    }
}

#[cfg(feature = "mpi")]
fn mpi(_launcher: &str) -> Result<Box<dyn Collective>> {
    Ok(Box::new(sepnet_train::distributed::MpiWorld::init()?))
}

#[cfg(not(feature = "mpi"))]
fn mpi(launcher: &str) -> Result<Box<dyn Collective>> {
    anyhow::bail!(
        "this process was started for an MPI job ({launcher}), but this sepnet was built \
         without MPI: build it with `cargo build --release --features mpi` (needs Open MPI's \
         libopenmpi-dev and libclang-dev), or give --distributed off to train each process on \
         its own"
    )
}

/// The command that starts this sepnet as `processes` processes: `mpirun -np N sepnet` (as
/// root too, when this process is root), or this sepnet alone for one process.
pub fn launcher(processes: usize) -> Result<std::process::Command> {
    let exe = std::env::current_exe()?;
    if processes == 1 {
        return Ok(std::process::Command::new(exe));
    }
    let mut command = std::process::Command::new("mpirun");
    // SAFETY: geteuid(2) has no preconditions.
    #[cfg(unix)]
    if unsafe { libc::geteuid() } == 0 {
        command.arg("--allow-run-as-root");
    }
    command.args(["-np", &processes.to_string()]).arg(exe);
    Ok(command)
}

/// The job `compare --ntasks N` trains in: this process's MPI job when a launcher started N;
/// started alone with N above 1, this command line again under `mpirun -np N` (this process
/// then ends with that job's exit status).
pub fn join(ntasks: usize) -> Result<Box<dyn Collective>> {
    let world = open(Distributed::Auto)?;
    if ntasks > 1 && world.size() == 1 {
        match relaunch(ntasks)? {}
    }
    if world.size() != ntasks {
        anyhow::bail!(
            "this MPI job has {} processes, but --ntasks is {ntasks}: give --ntasks {} (or leave \
             out the launcher: `sepnet compare --ntasks N` starts mpirun itself)",
            world.size(),
            world.size()
        );
    }
    Ok(world)
}

/// Runs this command line again as an MPI job of `processes` processes, and ends with its exit
/// status.
fn relaunch(processes: usize) -> Result<std::convert::Infallible> {
    let mut command = launcher(processes)?;
    command.args(std::env::args_os().skip(1));
    let status = command.status().map_err(|e| {
        anyhow::anyhow!(
            "--ntasks {processes} starts `mpirun -np {processes}`, which could not run ({e}): \
             install Open MPI (apt-get install openmpi-bin)"
        )
    })?;
    std::process::exit(status.code().unwrap_or(crate::stop::EXIT_STOPPED))
}

/// Ends the whole job when one process fails in a way the others cannot see (a file rank 0
/// cannot write, a lost process): they would otherwise wait for it in the next all-reduce.
/// Failures every process meets together (a bad setting, a stop asked for) end each one
/// normally.
pub fn end_job_on_failure<T>(world: &dyn Collective, result: Result<T>) -> Result<T> {
    let err = match result {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    let shared = matches!(
        err.downcast_ref(),
        Some(TrainError::Stopped(_) | TrainError::Config(_) | TrainError::NonFinite(_))
    );
    if world.size() > 1 && !shared {
        eprintln!("error: rank {}: {err:#}; ending the job", world.rank());
        world.abort(1);
    }
    Err(err)
}
