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

/// Ends the whole job when one process fails in a way the others cannot see (a file rank 0
/// cannot write, a lost process): they would otherwise wait for it in the next all-reduce.
/// Failures every process meets together (a bad setting, a stop asked for) end each one
/// normally.
pub fn end_job_on_failure(world: &dyn Collective, result: Result<()>) -> Result<()> {
    let Err(err) = result else { return Ok(()) };
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
