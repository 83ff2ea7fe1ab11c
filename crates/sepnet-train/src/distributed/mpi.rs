//! [`Collective`] over MPI (Open MPI through rsmpi): the job `mpirun -np N` or `srun` started.

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};

use super::Collective;
use crate::TrainError;

/// The processes of an MPI job (`MPI_COMM_WORLD`). MPI is initialised when this is made and
/// finalised when it is dropped: make one per process.
///
/// ```no_run
/// use sepnet_train::distributed::{Collective, MpiWorld};
/// let world = MpiWorld::init().unwrap(); // under `mpirun -np 4`: 4 processes
/// let mut grads = [world.rank() as f32];
/// world.sum(&mut grads); // 0 + 1 + 2 + 3 on every process
/// assert_eq!(grads, [6.0]);
/// ```
pub struct MpiWorld {
    world: SimpleCommunicator,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

impl MpiWorld {
    /// Initialises MPI (once per process).
    pub fn init() -> Result<MpiWorld, TrainError> {
        let universe = mpi::initialize().ok_or_else(|| {
            TrainError::Config("MPI was already initialised in this process".into())
        })?;
        Ok(MpiWorld {
            world: universe.world(),
            _universe: universe,
        })
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum(&self, values: &mut [f32]) {
        if self.size() == 1 {
            return;
        }
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn gather(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size()];
        self.world.all_gather_into(&value, &mut all[..]);
        all
    }

    fn abort(&self, code: i32) {
        self.world.abort(code)
    }
}
