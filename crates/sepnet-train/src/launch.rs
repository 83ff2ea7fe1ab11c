//! Starting a run and resuming one. Everything is validated — settings, data, network,
//! memory, checkpoint — before anything in the run directory is created or changed.

use std::path::Path;

use crate::TrainError;
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::metrics::RunSummary;
use crate::prepare::{DatasetInfo, prepare};
use crate::record::{NetworkRecord, RunConfig};
use crate::report::Reporter;
use crate::resume::{ResumeRequest, reconcile};
use crate::run::{DATASET, RunDir, read_json};
use crate::teacher::Teacher;
use crate::trainer::Trainer;

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
    let data = prepare(config)?;
    let network = NetworkRecord::of(&data.spec, data.adaptation.clone())?;
    let teacher = open_teacher(config, &data, dir, None)?;
    let record = RunConfig {
        teacher: teacher.as_ref().map(|t| t.record.clone()),
        ..RunConfig::new(config.clone(), network)
    };
    let run = RunDir::create(dir)?;
    let trainer = Trainer::new(run, record, data, None, teacher, reporter)?;
    trainer.write_record()?;
    trainer.fit()
}

/// The teacher of a distilled `config`, checked against the student's data and run directory
/// (and, resuming, against the weights `recorded` in its `config.json`).
fn open_teacher(
    config: &TrainConfig,
    data: &crate::Prepared,
    dir: &Path,
    recorded: Option<&crate::TeacherRecord>,
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
    let run = RunDir::open(dir)?;
    let saved = RunConfig::read(dir)?;
    let trained_on: DatasetInfo = read_json(&dir.join(DATASET))?;
    let state = checkpoint::load_state(dir, &saved.run_id)?;
    let epochs_done = state.as_ref().map_or(0, |s| s.epochs_done);
    let (config, notes) = reconcile(&saved.config, request, epochs_done)?;
    let mut data = prepare(&config)?;
    let differences = trained_on.differences(&data.info);
    if !differences.is_empty() {
        return Err(TrainError::Config(format!(
            "the data found for {} are not the ones this run was trained on: {}",
            config.dataset,
            differences.join("; ")
        )));
    }
    // The network is the one the run recorded, whatever the built-in names mean today.
    data.spec = saved.network.network_spec()?;
    data.info = trained_on;
    let threads = crate::record::cpu_threads();
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
        ..saved
    };
    if record.config.distill.is_some() && record.teacher.is_none() {
        return Err(TrainError::Damaged {
            path: dir.join(crate::run::CONFIG),
            problem: "a distilled run without the record of its teacher's weights".into(),
        });
    }
    let teacher = open_teacher(&record.config, &data, dir, record.teacher.as_ref())?;
    let fresh_start = state.is_none();
    let mut trainer = Trainer::new(run, record, data, state, teacher, reporter)?;
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
    trainer.write_record()?;
    trainer.fit()
}
