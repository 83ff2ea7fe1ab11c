//! Fine-tuning: a run that starts from another finished run's weights instead of fresh
//! ones (`--init-from`), checked to be the same network before anything is written.

use std::path::{Path, PathBuf};

use burn::module::Module;

use crate::TrainError;
use crate::checkpoint::{self, FileRef};
use crate::config::InitFrom;
use crate::record::NetworkRecord;
use crate::source::{WeightsRecord, check_unchanged, chosen_weights, open_finished, refuse};

const FLAG: &str = "--init-from";

/// The weights a fine-tuned run starts from.
pub(crate) struct Initial {
    dir: PathBuf,
    file: FileRef,
    pub(crate) record: WeightsRecord,
}

impl Initial {
    /// Opens the starting weights `init` names for the run of `network` to be written in
    /// `dir`, refusing the run itself, an unfinished run or one being written, another
    /// network, and — resuming, where the run `recorded` its start — other weights.
    pub(crate) fn open(
        init: &InitFrom,
        network: &NetworkRecord,
        dir: &Path,
        recorded: Option<&WeightsRecord>,
    ) -> Result<Initial, TrainError> {
        let run = open_finished(FLAG, &init.run, dir)?;
        let theirs = &run.config.network;
        let same = (&theirs.spec, theirs.input, theirs.classes, &theirs.module)
            == (
                &network.spec,
                network.input,
                network.classes,
                &network.module,
            );
        if !same {
            return Err(refuse(
                FLAG,
                &init.run,
                format!(
                    "that run trained another network (`{}` on {:?} inputs into {} classes; this \
                     run's: `{}` on {:?} into {}): fine-tuning starts from the same network",
                    theirs.spec,
                    theirs.input,
                    theirs.classes,
                    network.spec,
                    network.input,
                    network.classes
                ),
            ));
        }
        let (file, record) = chosen_weights(FLAG, &run, init.weights)?;
        if let Some(recorded) = recorded {
            check_unchanged(FLAG, &init.run, recorded, &record)?;
        }
        Ok(Initial {
            dir: init.run.clone(),
            file,
            record,
        })
    }

    /// `model` with the starting weights (verified against their SHA-256).
    pub(crate) fn load<M: Module>(&self, model: M) -> Result<M, TrainError> {
        checkpoint::load_model(&self.dir, &self.file, model)
    }
}
