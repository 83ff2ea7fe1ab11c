//! What a run directory records about itself (`config.json`), and a run opened for reading:
//! its configuration, data description, checkpoint and trained network.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sepnet_data::{Dataset, DatasetKind, Locator, Normalization};
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Adaptation, Network, Summary};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::checkpoint::{self, TrainState};
use crate::config::TrainConfig;
use crate::metrics::RunSummary;
use crate::prepare::DatasetInfo;
use crate::run::{self, CONFIG, DATASET, SUMMARY, check_is_run, read_json};

/// The layout of run directories this sepnet writes and reads.
pub const RUN_FORMAT: u32 = 3;

/// The network as it was built for the run: the nanoGPT rule — a run stores what rebuilds its
/// model, so nothing is resolved a second way when it is loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// Canonical spec text.
    pub spec: String,
    /// Input `[h, w, c]`.
    pub input: [usize; 3],
    /// Output classes.
    pub classes: usize,
    /// Parameters, as `sepnet summary` counts them.
    pub params: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// How a built-in model was fitted to the dataset (input, classes).
    pub adaptation: Adaptation,
    /// Set when the run trains a module of the user's own ([`crate::custom`]) rather than a
    /// spec: what rebuilds it through the constructor registered under its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<OwnModule>,
}

/// A module of the user's own as a run records it: the name its constructor is registered
/// under and the settings it is called with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnModule {
    /// The registered name.
    pub name: String,
    /// The settings, as the user's config type serialises them.
    pub config: serde_json::Value,
}

impl NetworkRecord {
    /// Records `spec` as built.
    pub fn of(spec: &NetworkSpec, adaptation: Adaptation) -> Result<Self, TrainError> {
        let summary = Summary::of(spec).map_err(|e| TrainError::Config(e.message))?;
        Ok(NetworkRecord {
            spec: summary.spec,
            input: spec.input,
            classes: spec.classes().unwrap_or(0),
            params: summary.total_params,
            macs: summary.macs,
            adaptation,
            module: None,
        })
    }

    /// The spec again, from its text; an error naming the module for a run of a user's own
    /// module, which only the program that registered its constructor can build.
    pub fn network_spec(&self) -> Result<NetworkSpec, TrainError> {
        if let Some(own) = &self.module {
            return Err(TrainError::Config(format!(
                "this run trains `{}`, a module of a program's own, not a sepnet spec: only that \
                 program can load, resume or evaluate it (sepnet_train::custom), and it cannot be \
                 exported to ONNX or quantized",
                own.name
            )));
        }
        NetworkSpec::parse(&self.spec, self.input).map_err(|e| TrainError::Config(e.to_string()))
    }
}

/// `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// [`RUN_FORMAT`] of the sepnet that wrote it.
    pub format: u32,
    /// A random id; the checkpoint carries it, so files of another run are refused.
    pub run_id: String,
    /// Version of the sepnet that created the run.
    pub sepnet_version: String,
    /// When the run was created, in seconds since the Unix epoch.
    pub created: f64,
    /// The settings.
    pub config: TrainConfig,
    /// The network as built.
    pub network: NetworkRecord,
    /// CPU threads the run trains with (RAYON_NUM_THREADS, else one per CPU): parallel sums
    /// are split by thread, so another count gives other last bits.
    pub threads: usize,
    /// Processes of the data-parallel job that trains it (1: one process).
    #[serde(default = "one_process")]
    pub processes: usize,
    /// The weights that teach a distilled run (`config.distill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<crate::WeightsRecord>,
    /// The weights a fine-tuned run started from (`config.init_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_weights: Option<crate::WeightsRecord>,
}

fn one_process() -> usize {
    1
}

impl RunConfig {
    /// A fresh record for a new run.
    pub fn new(config: TrainConfig, network: NetworkRecord) -> Self {
        RunConfig {
            format: RUN_FORMAT,
            run_id: new_run_id(),
            sepnet_version: env!("CARGO_PKG_VERSION").into(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            config,
            network,
            threads: cpu_threads(),
            processes: 1,
            teacher: None,
            init_weights: None,
        }
    }

    /// Reads `config.json` of `dir`, refusing other formats with a message that says so.
    pub fn read(dir: &Path) -> Result<Self, TrainError> {
        check_is_run(dir)?;
        let path = dir.join(CONFIG);
        let raw = run::read_raw_json(&path)?;
        let format = raw.get("format").and_then(|f| f.as_u64());
        if format != Some(RUN_FORMAT as u64) {
            return Err(TrainError::Damaged {
                path,
                problem: format!(
                    "run format {} — this sepnet reads format {RUN_FORMAT}; its metrics.csv and \
                     summary.json stay readable, but the run cannot be loaded or resumed by this version",
                    format.map_or("1 (before formats were numbered)".into(), |f| f.to_string())
                ),
            });
        }
        serde_json::from_value(run::unseal(&path, raw)?).map_err(|e| TrainError::Damaged {
            path,
            problem: e.to_string(),
        })
    }
}

/// The CPU threads burn's kernels run on: RAYON_NUM_THREADS when set (and not 0), else one
/// per CPU.
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// 128 random bits as hex, from the standard library's randomly keyed hasher.
fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let part = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.finish()
    };
    format!("{:016x}{:016x}", part(1), part(2))
}

/// Which weights of a run to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// After the last completed step.
    Last,
    /// The epoch with the best validation accuracy (the last when none was recorded).
    Best,
}

/// A run directory opened for reading (no lock: every file in it is replaced atomically).
///
/// ```no_run
/// use burn::tensor::Device;
/// use sepnet_train::{Run, Weights};
/// let run = Run::open("runs/mnist-hybrid".as_ref()).unwrap();
/// let network = run.network(&Device::flex(), Weights::Best).unwrap();
/// println!("{} classes: {:?}", run.dataset.classes.len(), run.dataset.classes);
/// # drop(network);
/// ```
#[derive(Clone, Debug)]
pub struct Run {
    /// The folder.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: RunConfig,
    /// `dataset.json`.
    pub dataset: DatasetInfo,
}

impl Run {
    /// Opens a run directory written by `sepnet train`.
    pub fn open(dir: &Path) -> Result<Run, TrainError> {
        let config = RunConfig::read(dir)?;
        let dataset = read_json(&dir.join(DATASET))?;
        Ok(Run {
            dir: dir.to_path_buf(),
            config,
            dataset,
        })
    }

    /// The checkpoint, if one was written.
    pub fn state(&self) -> Result<Option<TrainState>, TrainError> {
        checkpoint::load_state(&self.dir, &self.config.run_id)
    }

    /// `summary.json`, once the run has finished.
    pub fn summary(&self) -> Result<Option<RunSummary>, TrainError> {
        let path = self.dir.join(SUMMARY);
        path.exists().then(|| read_json(&path)).transpose()
    }

    /// The dataset the run was trained on — where it was found then, or at `dataset` /
    /// `data_dir` when it moved — checked to hold the same images.
    pub fn load_dataset(
        &self,
        dataset: Option<DatasetKind>,
        data_dir: Option<PathBuf>,
        progress: bool,
    ) -> Result<Dataset, TrainError> {
        let config = &self.config.config;
        let kind = dataset.unwrap_or_else(|| config.dataset.clone());
        let locator = Locator {
            data_dir: data_dir.or_else(|| config.data_dir.clone()),
            offline: false,
            progress,
        };
        let data = locator.load(&kind)?;
        let now = DatasetInfo::of(
            &data,
            Normalization::for_dataset(config.input_scaling, &data),
        );
        let differences = self.dataset.differences(&now);
        if !differences.is_empty() {
            return Err(TrainError::Config(format!(
                "the data found for {kind} are not the ones {} was trained on: {} \
                 (point --dataset / --data-dir at them)",
                self.dir.display(),
                differences.join("; ")
            )));
        }
        Ok(data)
    }

    /// The trained network on `device`, in inference mode.
    pub fn network(&self, device: &Device, weights: Weights) -> Result<Network, TrainError> {
        let file = self.weights_file(weights)?;
        let spec = self.config.network.network_spec()?;
        let fresh = Network::new(&spec, device).map_err(|e| TrainError::Config(e.message))?;
        checkpoint::load_model(&self.dir, &file, fresh)
    }

    /// The checkpoint file holding `weights`.
    pub fn weights_file(&self, weights: Weights) -> Result<checkpoint::FileRef, TrainError> {
        let state = self.state()?.ok_or_else(|| {
            TrainError::NotARun(format!(
                "{} has no checkpoint yet: it has not finished an epoch",
                self.dir.display()
            ))
        })?;
        Ok(match (weights, state.best) {
            (Weights::Best, Some(best)) => best.model,
            _ => state.model,
        })
    }
}

/// Writes `config.json` of a run.
pub fn write(run: &run::RunDir, config: &RunConfig) -> Result<(), TrainError> {
    run.write_json(CONFIG, config)
}
