//! Data-parallel training over several processes, Horovod-style: every process holds the
//! whole model, takes its shard of each global batch, and after the backward pass the
//! gradients of all processes are summed in one collective call, so each applies the same
//! update and the weights stay bit-identical everywhere. Rank 0 alone writes the run.
//!
//! The collective is a [`Collective`]: [`Solo`] for one process, [`MpiWorld`] (cargo feature
//! `mpi`) for a job started by `mpirun` or Slurm's `srun`.

#[cfg(feature = "mpi")]
mod mpi;
pub(crate) mod sync;

#[cfg(feature = "mpi")]
pub use self::mpi::MpiWorld;

use crate::TrainError;

/// The processes of one training job and the collective operations training needs.
pub trait Collective {
    /// This process, from 0.
    fn rank(&self) -> usize;
    /// How many processes train together.
    fn size(&self) -> usize;
    /// Replaces `values` with their element-wise sum over all processes (every process gets
    /// the same result).
    fn sum(&self, values: &mut [f32]);
    /// Every process's `value`, in rank order.
    fn gather(&self, value: u64) -> Vec<u64>;
    /// Ends every process of the job (after a failure the others could not see).
    fn abort(&self, code: i32);
}

/// One process on its own: every collective is the identity.
///
/// ```
/// use sepnet_train::distributed::{Collective, Solo};
/// let mut values = [1.0, 2.0];
/// Solo.sum(&mut values);
/// assert_eq!((Solo.rank(), Solo.size(), values), (0, 1, [1.0, 2.0]));
/// ```
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum(&self, _values: &mut [f32]) {}
    fn gather(&self, value: u64) -> Vec<u64> {
        vec![value]
    }
    fn abort(&self, code: i32) {
        std::process::exit(code)
    }
}

/// The MPI launcher that started this process, when its environment names one that started
/// several: Open MPI's `mpirun`, or Slurm's `srun` through PMI-2 or PMIx.
///
/// ```
/// // A plain shell is not an MPI job.
/// # unsafe { std::env::remove_var("OMPI_COMM_WORLD_SIZE"); std::env::remove_var("PMI_SIZE"); std::env::remove_var("PMIX_RANK"); }
/// assert_eq!(sepnet_train::distributed::mpi_launcher(), None);
/// ```
pub fn mpi_launcher() -> Option<&'static str> {
    let several = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .is_some_and(|n| n > 1)
    };
    if several("OMPI_COMM_WORLD_SIZE") {
        Some("mpirun")
    } else if several("PMI_SIZE") {
        Some("srun --mpi=pmi2")
    } else if std::env::var_os("PMIX_RANK").is_some() && several("SLURM_STEP_NUM_TASKS") {
        Some("srun --mpi=pmix")
    } else {
        None
    }
}

/// Whether every other process is ready too: each says whether it is (`ready`); a process
/// that is, but sees one that is not, gets an error saying so (the failing one reports its
/// own reason).
pub(crate) fn agree(world: &dyn Collective, ready: bool) -> Result<(), TrainError> {
    let mut failed = [f32::from(u8::from(!ready))];
    world.sum(&mut failed);
    if ready && failed[0] > 0.0 {
        return Err(TrainError::Config(format!(
            "rank {}: stopped because {} other process(es) of the job could not start (their \
             messages say why)",
            world.rank(),
            failed[0]
        )));
    }
    Ok(())
}

/// What a data-parallel run records about its processes, in `summary.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DistributedSummary {
    /// Processes that trained the last epoch.
    pub processes: usize,
    /// SHA-256 of the final weights' values (little-endian `f32`s in parameter order), which
    /// every process was checked to hold bit for bit.
    pub weights_sha256: String,
    /// Seconds the gradient all-reduce took over the whole run (rank 0's clock).
    pub allreduce_seconds: f64,
}
