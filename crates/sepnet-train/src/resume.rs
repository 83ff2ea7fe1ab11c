//! What a resumed run does with the settings given again: each one is applied or refused,
//! and the answer names it.

use serde_json::Value;

use crate::TrainError;
use crate::config::TrainConfig;

/// Settings a resumed run may change: more epochs, and where its (unchanged) data and teacher
/// now live — the data are checked against `dataset.json`, the teacher's weights against their
/// SHA-256 in `config.json`. Every other setting given again must equal the run's own.
const MAY_CHANGE: &[&str] = &["epochs", "data_dir", "dataset", "distill.teacher"];

/// The settings asked for when resuming: a whole configuration, and which of its fields the
/// user actually gave (by their `config.json` key; model options as `model_options.alpha`).
#[derive(Clone, Debug, Default)]
pub struct ResumeRequest {
    /// Values for the given fields (the others are ignored).
    pub config: TrainConfig,
    /// Keys of the fields the user gave.
    pub given: Vec<String>,
}

impl ResumeRequest {
    /// A request that changes nothing.
    pub fn unchanged() -> Self {
        ResumeRequest::default()
    }

    /// A request for `epochs` epochs in all (more than the run was given), changing nothing
    /// else.
    ///
    /// ```
    /// use sepnet_train::ResumeRequest;
    /// let more = ResumeRequest::epochs(12);
    /// assert_eq!((more.config.epochs, more.given.as_slice()), (12, ["epochs".to_string()].as_slice()));
    /// ```
    pub fn epochs(epochs: usize) -> Self {
        ResumeRequest {
            config: TrainConfig {
                epochs,
                ..TrainConfig::default()
            },
            given: vec!["epochs".into()],
        }
    }
}

/// The flag a `config.json` key comes from.
pub fn flag_of(key: &str) -> String {
    let field = key.rsplit('.').next().unwrap_or(key);
    match field {
        "max_steps_per_epoch" => "--max-steps".into(),
        "vgg_blocks" => "--blocks".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

fn pointer(key: &str) -> String {
    format!("/{}", key.replace('.', "/"))
}

fn show(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "none".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Applies `request` to a run's saved configuration. Returns the configuration to continue
/// with and one note per setting that changed; refuses (changing nothing) when any given
/// setting may not change, naming every one of them.
///
/// ```
/// use sepnet_train::{TrainConfig, resume::{ResumeRequest, reconcile}};
/// let saved = TrainConfig::default();
/// let request = ResumeRequest {
///     config: TrainConfig { epochs: 9, lr: 0.1, ..Default::default() },
///     given: vec!["epochs".into(), "lr".into()],
/// };
/// let err = reconcile(&saved, &request, 0).unwrap_err().to_string();
/// assert!(err.contains("--lr 0.1 (this run: 0.001)"), "{err}");
/// ```
pub fn reconcile(
    saved: &TrainConfig,
    request: &ResumeRequest,
    epochs_done: usize,
) -> Result<(TrainConfig, Vec<String>), TrainError> {
    let mut merged = serde_json::to_value(saved).expect("configs serialise");
    let asked = serde_json::to_value(&request.config).expect("configs serialise");
    let (mut refused, mut notes) = (Vec::new(), Vec::new());
    for key in &request.given {
        let at = pointer(key);
        let (was, wanted) = (merged.pointer(&at).cloned(), asked.pointer(&at));
        if was.as_ref() == wanted {
            continue;
        }
        let change = format!("{} {}", flag_of(key), show(wanted));
        let slot = merged.pointer_mut(&at);
        if let (true, Some(slot), Some(value)) = (MAY_CHANGE.contains(&key.as_str()), slot, wanted)
        {
            *slot = value.clone();
            notes.push(format!("{change} (was {})", show(was.as_ref())));
        } else {
            refused.push(format!("{change} (this run: {})", show(was.as_ref())));
        }
    }
    if !refused.is_empty() {
        return Err(TrainError::Config(format!(
            "a resumed run keeps its settings; only --epochs, --dataset, --data-dir and --teacher \
             (moved, with the same weights) may change. \
             Refused: {}. Leave them out, or start a new run with another --out",
            refused.join(", ")
        )));
    }
    let config: TrainConfig = serde_json::from_value(merged).expect("a merged config is a config");
    if config.epochs < epochs_done.max(1) {
        return Err(TrainError::Config(format!(
            "--epochs {}: this run has already trained {epochs_done} epochs",
            config.epochs
        )));
    }
    Ok((config, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(config: TrainConfig, given: &[&str]) -> ResumeRequest {
        ResumeRequest {
            config,
            given: given.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn epochs_and_data_dir_apply_and_say_so() {
        let saved = TrainConfig::default();
        let asked = TrainConfig {
            epochs: 8,
            data_dir: Some("/data/mnist".into()),
            lr: 0.5, // not given: ignored
            ..Default::default()
        };
        let (config, notes) =
            reconcile(&saved, &request(asked, &["epochs", "data_dir"]), 3).unwrap();
        assert_eq!(config.epochs, 8);
        assert_eq!(config.data_dir.as_deref(), Some("/data/mnist".as_ref()));
        assert_eq!(config.lr, saved.lr);
        assert_eq!(
            notes,
            ["--epochs 8 (was 5)", "--data-dir /data/mnist (was none)"]
        );
    }

    #[test]
    fn every_other_change_is_refused_by_name_and_equal_values_pass() {
        let saved = TrainConfig::default();
        let mut asked = TrainConfig {
            optimizer: crate::OptimizerKind::Sgd,
            lr: 0.001, // equal to the run's: fine
            ..Default::default()
        };
        asked.model_options.alpha = 0.5;
        let given = ["optimizer", "lr", "model_options.alpha"];
        let err = reconcile(&saved, &request(asked, &given), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--optimizer sgd (this run: adam)"), "{err}");
        assert!(err.contains("--alpha 0.5 (this run: 1.0)"), "{err}");
        assert!(!err.contains("--lr"), "{err}");
    }

    #[test]
    fn fewer_epochs_than_done_are_refused() {
        let asked = TrainConfig {
            epochs: 2,
            ..Default::default()
        };
        let err = reconcile(&TrainConfig::default(), &request(asked, &["epochs"]), 4).unwrap_err();
        assert!(
            err.to_string().contains("already trained 4 epochs"),
            "{err}"
        );
    }
}
