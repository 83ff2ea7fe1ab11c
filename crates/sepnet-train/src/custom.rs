//! Training a burn module of your own exactly as sepnet trains its spec networks: the same
//! run directory (one writer, atomic files, checksummed checkpoints), metrics, validation,
//! early stopping, TensorBoard, bit-identical resume and data-parallel MPI jobs.
//!
//! The module implements [`Classifier`]; its constructor is registered under a name with the
//! settings it takes (any serde type). A run records the name, the settings and the parameter
//! count in `config.json`, so [`resume`] and [`load`] rebuild the module through the same
//! [`Registry`] — in the program that registered it, as no other program can build it. The
//! `sepnet` command refuses such a run with a message naming the module.
//!
//! ```no_run
//! use burn::module::Module;
//! use burn::tensor::{Device, Tensor};
//! use sepnet_model::layers::{Conv2d, Conv2dConfig, Dense, DenseConfig, GlobalAvgPool};
//! use sepnet_model::{Activation, Classifier};
//! use sepnet_train::custom::{DataShape, OwnModel, Registry};
//! use sepnet_train::report::{Console, Style};
//! use sepnet_train::{ResumeRequest, TrainConfig};
//!
//! #[derive(Module, Debug)]
//! struct Tiny { conv: Conv2d, head: Dense }
//!
//! impl Classifier for Tiny {
//!     fn forward(&self, images: Tensor<4>) -> Tensor<2> {
//!         self.head.forward(GlobalAvgPool.forward(self.conv.forward(images)))
//!     }
//! }
//!
//! fn tiny(width: &usize, shape: DataShape, device: &Device) -> Tiny {
//!     Tiny {
//!         conv: Conv2dConfig::new(shape.channels(), *width, [3, 3])
//!             .with_activation(Activation::Relu)
//!             .init(device),
//!         head: DenseConfig::new(*width, shape.classes).init(device),
//!     }
//! }
//!
//! fn main() {
//!     let registry = Registry::new().register("tiny", tiny);
//!     let config = TrainConfig { epochs: 2, ..Default::default() };
//!     let mut console = Console::new(Style::Human, "tiny");
//!     let model = OwnModel::new("tiny", &16).unwrap();
//!     let dir = std::path::Path::new("runs/tiny");
//!     sepnet_train::custom::train(&registry, &model, &config, dir, &mut console).unwrap();
//!     // Stopped (Ctrl-C, a kill) or finished: it continues from its checkpoint.
//!     let more = ResumeRequest::epochs(4);
//!     sepnet_train::custom::resume(&registry, dir, &more, &mut console).unwrap();
//! }
//! ```

use std::path::Path;

use burn::tensor::Device;
use sepnet_model::Classifier;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::blueprint::Blueprint;
use crate::distributed::{Collective, Solo};
use crate::launch::{Model, begin, reopen, run_together};
use crate::record::{NetworkRecord, OwnModule, Run, Weights};
use crate::report::Reporter;
use crate::{ResumeRequest, RunSummary, TrainConfig, TrainError, checkpoint, prepare};

/// What a module is built for: the dataset's image shape and its number of classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataShape {
    /// `[height, width, channels]` of the images.
    pub input: [usize; 3],
    /// Classes to tell apart (the logits' width).
    pub classes: usize,
}

impl DataShape {
    /// Channels of the images (the first convolution's input channels).
    pub fn channels(&self) -> usize {
        self.input[2]
    }
}

type Constructor<M> = Box<dyn Fn(&serde_json::Value, DataShape, &Device) -> Result<M, String>>;

/// The constructors of a program's own modules, by name. A module type of several
/// architectures registers each under its own name (an enum module holds them all).
pub struct Registry<M> {
    constructors: Vec<(String, Constructor<M>)>,
}

impl<M: Classifier> Default for Registry<M> {
    fn default() -> Self {
        Registry {
            constructors: Vec::new(),
        }
    }
}

impl<M: Classifier> Registry<M> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `build` under `name`: it makes the module from its settings `C` (read back
    /// from `config.json` on resume) for a dataset's shape, on a device. A later registration
    /// of the same name replaces the earlier one.
    pub fn register<C, F>(mut self, name: &str, build: F) -> Self
    where
        C: DeserializeOwned,
        F: Fn(&C, DataShape, &Device) -> M + 'static,
    {
        let constructor = move |settings: &serde_json::Value, shape, device: &Device| {
            let settings = C::deserialize(settings).map_err(|e| e.to_string())?;
            Ok(build(&settings, shape, device))
        };
        self.constructors.retain(|(n, _)| n != name);
        self.constructors.push((name.into(), Box::new(constructor)));
        self
    }

    /// What builds `own` for `shape`, or an error naming the registered modules.
    fn blueprint(&self, own: &OwnModule, shape: DataShape) -> Result<Blueprint<'_, M>, TrainError> {
        let Some((_, constructor)) = self.constructors.iter().find(|(n, _)| *n == own.name) else {
            let known: Vec<&str> = self.constructors.iter().map(|(n, _)| n.as_str()).collect();
            return Err(TrainError::Config(format!(
                "no module `{}` is registered (this program's registry holds: {})",
                own.name,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        };
        let name = own.name.clone();
        let settings = own.config.clone();
        Ok(Blueprint::of_module(move |device: &Device| {
            constructor(&settings, shape, device).map_err(|e| {
                TrainError::Config(format!(
                    "the settings of module `{name}` do not fit it: {e}"
                ))
            })
        }))
    }
}

/// A module to train: the name its constructor is registered under, and its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnModel(OwnModule);

impl OwnModel {
    /// The module registered as `name`, built with `settings`.
    pub fn new<C: Serialize>(name: &str, settings: &C) -> Result<Self, TrainError> {
        let config = serde_json::to_value(settings).map_err(|e| {
            TrainError::Config(format!(
                "the settings of module `{name}` cannot be recorded: {e}"
            ))
        })?;
        Ok(OwnModel(OwnModule {
            name: name.into(),
            config,
        }))
    }

    /// The registered name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

/// Trains `model` with `config` (whose `model` and `model_options` are not used) into a new
/// run directory `dir`.
pub fn train<M: Classifier>(
    registry: &Registry<M>,
    model: &OwnModel,
    config: &TrainConfig,
    dir: &Path,
    reporter: &mut dyn Reporter,
) -> Result<RunSummary, TrainError> {
    train_with(registry, model, config, dir, reporter, &Solo)?
        .ok_or_else(crate::launch::rank_0_only)
}

/// [`train`] as one process of the data-parallel job `world` ([`crate::train_with`]).
pub fn train_with<M: Classifier>(
    registry: &Registry<M>,
    model: &OwnModel,
    config: &TrainConfig,
    dir: &Path,
    reporter: &mut dyn Reporter,
    world: &dyn Collective,
) -> Result<Option<RunSummary>, TrainError> {
    let trainer = start(registry, model, config, dir, reporter, world);
    run_together(trainer, world)
}

fn start<'r, M: Classifier>(
    registry: &'r Registry<M>,
    model: &OwnModel,
    config: &TrainConfig,
    dir: &Path,
    reporter: &'r mut dyn Reporter,
    world: &'r dyn Collective,
) -> Result<crate::trainer::Trainer<'r, M>, TrainError> {
    let config = TrainConfig {
        model: model.0.name.clone(),
        ..config.clone()
    };
    if config.fake_quant.is_some() {
        return Err(TrainError::Config(format!(
            "--fake-quant rounds the weights of sepnet's own networks; the module `{}` is not one \
             (train it through int8 weights in its own forward pass)",
            model.0.name
        )));
    }
    let data = prepare(&config)?;
    let shape = shape_of(&data.dataset);
    let blueprint = registry.blueprint(&model.0, shape)?;
    // Built once here, before the run directory exists: settings the constructor cannot take
    // are refused with nothing written, and the record gets the parameter count.
    let record = record_of(
        &model.0,
        shape,
        &blueprint.build(&data.device, config.seed)?,
    );
    let model = Model { record, blueprint };
    begin(&config, data, model, dir, reporter, world)
}

/// Continues the run of a module of `registry` in `dir`, as [`crate::resume`] does a spec's.
pub fn resume<M: Classifier>(
    registry: &Registry<M>,
    dir: &Path,
    request: &ResumeRequest,
    reporter: &mut dyn Reporter,
) -> Result<RunSummary, TrainError> {
    resume_with(registry, dir, request, reporter, &Solo)?.ok_or_else(crate::launch::rank_0_only)
}

/// [`resume`] as one process of the data-parallel job `world` ([`crate::resume_with`]).
pub fn resume_with<M: Classifier>(
    registry: &Registry<M>,
    dir: &Path,
    request: &ResumeRequest,
    reporter: &mut dyn Reporter,
    world: &dyn Collective,
) -> Result<Option<RunSummary>, TrainError> {
    let blueprint = |saved: &crate::record::RunConfig| blueprint_of(registry, &saved.network);
    run_together(reopen(dir, request, reporter, world, blueprint), world)
}

/// The trained module of `run` on `device`, in inference mode: to evaluate
/// ([`crate::evaluate`]), classify, or time.
pub fn load<M: Classifier>(
    registry: &Registry<M>,
    run: &Run,
    device: &Device,
    weights: Weights,
) -> Result<M, TrainError> {
    let file = run.weights_file(weights)?;
    let fresh =
        blueprint_of(registry, &run.config.network)?.build(device, run.config.config.seed)?;
    checkpoint::load_model(&run.dir, &file, fresh).map(|m| m.valid())
}

fn blueprint_of<'r, M: Classifier>(
    registry: &'r Registry<M>,
    network: &NetworkRecord,
) -> Result<Blueprint<'r, M>, TrainError> {
    let own = network.module.as_ref().ok_or_else(|| {
        TrainError::Config(format!(
            "this run trains the spec `{}`, not a module of a program's own: use \
             sepnet_train::resume (or `sepnet train --resume`)",
            network.spec
        ))
    })?;
    let [h, w, c] = network.input;
    let shape = DataShape {
        input: [h, w, c],
        classes: network.classes,
    };
    registry.blueprint(own, shape)
}

fn shape_of(dataset: &sepnet_data::Dataset) -> DataShape {
    DataShape {
        input: dataset.image_shape,
        classes: dataset.classes.len(),
    }
}

/// What `config.json` records of a module: its name and settings in place of a spec, its
/// parameter count (MACs are not counted for a module sepnet cannot see into: 0).
fn record_of<M: Classifier>(own: &OwnModule, shape: DataShape, model: &M) -> NetworkRecord {
    NetworkRecord {
        spec: format!("{} {}", own.name, own.config),
        input: shape.input,
        classes: shape.classes,
        params: model.num_params() as u64,
        macs: 0,
        adaptation: Default::default(),
        module: Some(own.clone()),
    }
}
