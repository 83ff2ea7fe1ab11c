//! Progress: a live bar on a terminal, one plain line per epoch otherwise, JSON lines for
//! machines, or nothing.

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::EpochMetrics;

/// Receives training progress.
pub trait Reporter {
    /// An epoch begins.
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize);
    /// `step` steps of the epoch are done; `loss` and `accuracy` are running means.
    fn step(&mut self, step: usize, loss: f64, accuracy: f64);
    /// An epoch ended and its checkpoint is on disk; return `false` to stop the run there
    /// (as Ctrl-C or a kill would, but cleanly). `resume` continues it.
    fn epoch_end(&mut self, metrics: &EpochMetrics) -> bool;
    /// A one-off note.
    fn message(&mut self, text: &str);
}

/// How [`Console`] prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Progress bar when stderr is a terminal, plus a line per epoch.
    Human,
    /// One JSON object per epoch on stdout.
    Json,
    /// Nothing.
    Quiet,
}

/// The standard reporter.
pub struct Console {
    style: Style,
    bar: Option<ProgressBar>,
    label: String,
}

impl Console {
    /// A reporter; `label` prefixes every line (the model name in `compare`).
    pub fn new(style: Style, label: impl Into<String>) -> Self {
        Console {
            style,
            bar: None,
            label: label.into(),
        }
    }
}

impl Reporter for Console {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        if self.style == Style::Human {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {bar:30} {pos}/{len} {per_sec} eta {eta} {msg}",
                )
                .expect("valid template"),
            );
            bar.set_prefix(format!("{} epoch {epoch}/{epochs}", self.label));
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, step: usize, loss: f64, accuracy: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.4} acc {:.2}%", 100.0 * accuracy));
        }
    }

    fn epoch_end(&mut self, m: &EpochMetrics) -> bool {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        match self.style {
            Style::Human => eprintln!(
                "{} epoch {:>3}  train loss {:.4} acc {:.2}%  val loss {:.4} acc {:.2}%  lr {:.2e}  {:.1}s  {:.0} img/s",
                self.label,
                m.epoch,
                m.train_loss,
                100.0 * m.train_accuracy,
                m.val_loss,
                100.0 * m.val_accuracy,
                m.lr,
                m.train_seconds,
                m.images_per_second
            ),
            Style::Json => println!("{}", serde_json::to_string(m).expect("serialisable")),
            Style::Quiet => {}
        }
        true
    }

    fn message(&mut self, text: &str) {
        if self.style != Style::Quiet {
            eprintln!("{text}");
        }
    }
}
