//! Starting a run and resuming one. Everything is validated — settings, data, network,
//! memory, checkpoint — before anything in the run directory is created or changed.

use std::path::Path;

use crate::TrainError;
use crate::blueprint::Blueprint;
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::distributed::{self, Collective, Solo};
use crate::init::Initial;
use crate::metrics::RunSummary;
use crate::prepare::{DatasetInfo, check_model, prepare};
use crate::record::{NetworkRecord, RunConfig};
use crate::report::Reporter;
use crate::resume::{ResumeRequest, reconcile};
use crate::run::{DATASET, RunDir, read_json};
use crate::teacher::Teacher;
use crate::trainer::{Setup, Trainer};
use sepnet_model::{Classifier, Network};

/// Trains `config` into a new run directory `dir`.
///
/// ```no_run
/// use sepnet_train::{TrainConfig, report::{Console, Style}, train};
/// let config = TrainConfig { model: "mnist-hybrid".into(), epochs: 5, ..Default::default() };
/// let summary = train(&config, "runs/mnist-hybrid".as_ref(), &mut Console::new(Style::Human, "mnist-hybrid")).unwrap();
/// println!("test accuracy {:.2}%", 100.0 * summary.test_accuracy);
/// ```
pub fn train(
    config: &TrainConfig,
    dir: &Path,
    reporter: &mut dyn Reporter,
) -> Result<RunSummary, TrainError> {
    train_with(config, dir, reporter, &Solo)?.ok_or_else(rank_0_only)
}

/// Trains `config` into `dir` as one process of the data-parallel job `world`: each process
/// takes its shard of every batch and the gradients are averaged over all of them; rank 0
/// alone creates and writes the run, and returns the summary (the others return `None`).
/// Every process checks everything before rank 0 creates anything; if one cannot start, none
/// does.
///
/// ```no_run
/// use sepnet_train::distributed::Solo; // or, built with `--features mpi`: MpiWorld::init()?
/// use sepnet_train::{TrainConfig, report::{Console, Style}, train_with};
/// let config = TrainConfig { model: "mnist-hybrid".into(), batch_size: 512, ..Default::default() };
/// let mut console = Console::new(Style::Human, "mnist-hybrid");
/// if let Some(summary) = train_with(&config, "runs/h".as_ref(), &mut console, &Solo).unwrap() {
///     println!("rank 0: test accuracy {:.2}%", 100.0 * summary.test_accuracy);
/// }
/// ```
pub fn train_with(
    config: &TrainConfig,
    dir: &Path,
    reporter: &mut dyn Reporter,
    world: &dyn Collective,
) -> Result<Option<RunSummary>, TrainError> {
    let trainer = start(config, dir, reporter, world);
    run_together(trainer, world)
}

/// Trains what `trainer` set up once every process of `world` could set it up; if one could
/// not, none writes anything.
pub(crate) fn run_together<M: Classifier>(
    trainer: Result<Trainer<'_, M>, TrainError>,
    world: &dyn Collective,
) -> Result<Option<RunSummary>, TrainError> {
    let others = distributed::agree(world, trainer.is_ok());
    let trainer = trainer?;
    others?;
    trainer.write_record()?;
    trainer.fit()
}

fn start<'r>(
    config: &TrainConfig,
    dir: &Path,
    reporter: &'r mut dyn Reporter,
    world: &'r dyn Collective,
) -> Result<Trainer<'r, Network>, TrainError> {
    let data = prepare(config)?;
    let (spec, adaptation) = check_model(config, &data.dataset)?;
    let network = NetworkRecord::of(&spec, adaptation)?;
    let model = Model {
        record: network,
        blueprint: Blueprint::of_spec(spec, fake_quant(config)),
    };
    begin(config, data, model, dir, reporter, world)
}

/// A model to train: what `config.json` records of it, and what builds it.
pub(crate) struct Model<'r, M> {
    pub(crate) record: NetworkRecord,
    pub(crate) blueprint: Blueprint<'r, M>,
}

/// A trainer for a new run of `model` on `data` in `dir` (created by rank 0).
pub(crate) fn begin<'r, M: Classifier>(
    config: &TrainConfig,
    data: crate::Prepared,
    model: Model<'r, M>,
    dir: &Path,
    reporter: &'r mut dyn Reporter,
    world: &'r dyn Collective,
) -> Result<Trainer<'r, M>, TrainError> {
    let teacher = open_teacher(config, &data, dir, None)?;
    let initial = (config.init_from.as_ref())
        .map(|init| Initial::open(init, &model.record, dir, None))
        .transpose()?;
    let record = RunConfig {
        teacher: teacher.as_ref().map(|t| t.record.clone()),
        init_weights: initial.as_ref().map(|i| i.record.clone()),
        processes: world.size(),
        ..RunConfig::new(config.clone(), model.record)
    };
    let run = match world.rank() {
        0 => RunDir::create(dir)?,
        _ => RunDir::follow(dir),
    };
    let setup = Setup {
        run,
        record,
        data,
        blueprint: model.blueprint,
        state: None,
        teacher,
        initial,
    };
    Trainer::new(setup, reporter, world)
}

/// The error of a one-process run that returned no summary (which only processes other than
/// rank 0 of a data-parallel job do).
pub(crate) fn rank_0_only() -> TrainError {
    TrainError::Config("only rank 0 of a data-parallel job has the run's summary".into())
}

/// The teacher of a distilled `config`, checked against the student's data and run directory
/// (and, resuming, against the weights `recorded` in its `config.json`).
fn open_teacher(
    config: &TrainConfig,
    data: &crate::Prepared,
    dir: &Path,
    recorded: Option<&crate::WeightsRecord>,
) -> Result<Option<Teacher>, TrainError> {
    config
        .distill
        .as_ref()
        .map(|distill| Teacher::open(distill, data, dir, recorded))
        .transpose()
}

/// Continues the run in `dir` from its checkpoint (or from the start when it stopped before
/// its first checkpoint), applying or refusing each setting of `request`.
pub fn resume(
    dir: &Path,
    request: &ResumeRequest,
    reporter: &mut dyn Reporter,
) -> Result<RunSummary, TrainError> {
    resume_with(dir, request, reporter, &Solo)?.ok_or_else(rank_0_only)
}

/// Continues the run in `dir` as one process of the data-parallel job `world` (which may have
/// another number of processes than the job that trained it so far: the global batch and its
/// order stay the same). Rank 0 returns the summary, the others `None`.
pub fn resume_with(
    dir: &Path,
    request: &ResumeRequest,
    reporter: &mut dyn Reporter,
    world: &dyn Collective,
) -> Result<Option<RunSummary>, TrainError> {
    let spec = |saved: &RunConfig| {
        let spec = saved.network.network_spec()?;
        Ok(Blueprint::of_spec(spec, fake_quant(&saved.config)))
    };
    let trainer = reopen(dir, request, reporter, world, spec);
    run_together(trainer, world)
}

/// A trainer continuing the run in `dir`, its model rebuilt by `blueprint` from what the run
/// recorded of it.
pub(crate) fn reopen<'r, M: Classifier>(
    dir: &Path,
    request: &ResumeRequest,
    reporter: &'r mut dyn Reporter,
    world: &'r dyn Collective,
    blueprint: impl FnOnce(&RunConfig) -> Result<Blueprint<'r, M>, TrainError>,
) -> Result<Trainer<'r, M>, TrainError> {
    let run = match world.rank() {
        0 => RunDir::open(dir)?,
        _ => {
            crate::run::check_is_run(dir)?;
            RunDir::follow(dir)
        }
    };
    let saved = RunConfig::read(dir)?;
    let trained_on: DatasetInfo = read_json(&dir.join(DATASET))?;
    let state = checkpoint::load_state(dir, &saved.run_id)?;
    let epochs_done = state.as_ref().map_or(0, |s| s.epochs_done);
    let (config, mut notes) = reconcile(&saved.config, request, epochs_done)?;
    let mut data = prepare(&config)?;
    // The network is the one the run recorded, whatever the built-in names mean today.
    let blueprint = blueprint(&saved)?;
    let differences = trained_on.differences(&data.info);
    if !differences.is_empty() {
        return Err(TrainError::Config(format!(
            "the data found for {} are not the ones this run was trained on: {}",
            config.dataset,
            differences.join("; ")
        )));
    }
    data.info = trained_on;
    let threads = crate::record::cpu_threads();
    notes.extend(changed_processes(saved.processes, world.size()));
    let threads_note = (threads != saved.threads).then(|| {
        format!(
            "warning: this run trained on {} CPU threads and continues on {threads}: its results \
             will differ from an unbroken run's in the last bits (set RAYON_NUM_THREADS={} to \
             continue bit for bit)",
            saved.threads, saved.threads
        )
    });
    let record = RunConfig {
        config,
        threads,
        processes: world.size(),
        ..saved
    };
    let teacher = reopen_teacher(&record, &data, dir)?;
    let fresh_start = state.is_none();
    let initial = match fresh_start {
        true => reopen_initial(&record, dir)?,
        false => None,
    };
    let setup = Setup {
        run,
        record,
        data,
        blueprint,
        state,
        teacher,
        initial,
    };
    let mut trainer = Trainer::new(setup, reporter, world)?;
    if let Some(note) = &threads_note {
        trainer.note(note);
    }
    if fresh_start {
        trainer.note(
            "resume: the run stopped before its first checkpoint; training from the first step",
        );
    }
    for note in &notes {
        trainer.note(&format!("resume: {note}"));
    }
    Ok(trainer)
}

/// How a run of `config` rounds its weights in training, if it does.
fn fake_quant(config: &TrainConfig) -> Option<sepnet_model::FakeQuant> {
    config.fake_quant.map(|scheme| scheme.fake_quant())
}

/// The teacher of a distilled run being resumed: the one its `record` names, with the
/// weights it recorded.
fn reopen_teacher(
    record: &RunConfig,
    data: &crate::Prepared,
    dir: &Path,
) -> Result<Option<Teacher>, TrainError> {
    if record.config.distill.is_some() && record.teacher.is_none() {
        return Err(TrainError::Damaged {
            path: dir.join(crate::run::CONFIG),
            problem: "a distilled run without the record of its teacher's weights".into(),
        });
    }
    open_teacher(&record.config, data, dir, record.teacher.as_ref())
}

/// The weights a fine-tuned run that stopped before its first checkpoint starts from again:
/// the ones it `record`ed.
fn reopen_initial(record: &RunConfig, dir: &Path) -> Result<Option<Initial>, TrainError> {
    let Some(init) = &record.config.init_from else {
        return Ok(None);
    };
    let recorded = record
        .init_weights
        .as_ref()
        .ok_or_else(|| TrainError::Damaged {
            path: dir.join(crate::run::CONFIG),
            problem: "a fine-tuned run without the record of the weights it started from".into(),
        })?;
    Initial::open(init, &record.network, dir, Some(recorded)).map(Some)
}

/// What a resume on another number of processes changes.
fn changed_processes(before: usize, now: usize) -> Option<String> {
    (before != now).then(|| {
        format!(
            "trained on {before} process(es), continues on {now}: the same global batches in the \
             same order, so only the order of the gradient sums (the last bits) and the images \
             each BatchNorm's batch statistics see differ"
        )
    })
}
