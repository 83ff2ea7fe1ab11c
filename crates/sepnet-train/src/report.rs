//! Progress: a live bar on a terminal, a plain line at a steady interval otherwise, JSON
//! lines for machines, or nothing — and the stop request (Ctrl-C) the loop checks between
//! steps.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::EpochMetrics;

/// Receives training progress.
pub trait Reporter {
    /// An epoch begins.
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize);
    /// `step` steps of the epoch are done; `loss` and `accuracy` are running means.
    fn step(&mut self, step: usize, loss: f64, accuracy: f64);
    /// The model is being evaluated (end of an epoch, end of the run).
    fn evaluating(&mut self) {}
    /// An epoch ended and its checkpoint is on disk; return `false` to stop the run there.
    /// `resume` continues it.
    fn epoch_end(&mut self, metrics: &EpochMetrics) -> bool;
    /// A one-off note.
    fn message(&mut self, text: &str);
    /// Asked between two steps: `true` stops the run there, checkpointed (Ctrl-C).
    fn should_stop(&self) -> bool {
        false
    }
}

/// How [`Console`] prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A progress bar when stderr is a terminal, a plain line every few seconds otherwise;
    /// a line per epoch either way.
    Human,
    /// One JSON object per epoch on stdout.
    Json,
    /// Nothing.
    Quiet,
}

/// How often a plain progress line is printed when stderr is not a terminal (after the first).
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The standard reporter.
pub struct Console {
    style: Style,
    label: String,
    bar: Option<ProgressBar>,
    terminal: bool,
    epoch: (usize, usize, usize),
    started: Instant,
    /// When the last plain progress line was printed (`None`: none yet this epoch).
    last_line: Option<Instant>,
    stop: Option<Arc<AtomicBool>>,
}

impl Console {
    /// A reporter; `label` prefixes every line (the model name in `compare`).
    pub fn new(style: Style, label: impl Into<String>) -> Self {
        Console {
            style,
            label: label.into(),
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            epoch: (0, 0, 0),
            started: Instant::now(),
            last_line: None,
            stop: None,
        }
    }

    /// Stops the run at the next step boundary once `flag` is set (by a signal handler).
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    fn plain_line(&mut self, step: usize, loss: f64, accuracy: f64) {
        let (epoch, epochs, steps) = self.epoch;
        let elapsed = self.started.elapsed().as_secs_f64();
        let per_step = elapsed / step.max(1) as f64;
        eprintln!(
            "{} epoch {epoch}/{epochs} step {step}/{steps}  loss {loss:.4} acc {:.2}%  {:.1} steps/s  epoch eta {:.0}s",
            self.label,
            100.0 * accuracy,
            1.0 / per_step.max(1e-9),
            per_step * steps.saturating_sub(step) as f64
        );
        self.last_line = Some(Instant::now());
    }
}

impl Reporter for Console {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epoch = (epoch, epochs, steps);
        self.started = Instant::now();
        self.last_line = None;
        if self.style == Style::Human && self.terminal {
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
        } else if self.style == Style::Human
            && self.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY)
        {
            // The first line as soon as there is one (a log shows the run is alive), then
            // one every few seconds.
            self.plain_line(step, loss, accuracy);
        }
    }

    fn evaluating(&mut self) {
        match &self.bar {
            Some(bar) => bar.set_message("evaluating…"),
            None if self.style == Style::Human => eprintln!("{} evaluating…", self.label),
            None => {}
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
        if self.style == Style::Quiet {
            return;
        }
        let text = match self.label.as_str() {
            "" => text.to_string(),
            label => format!("{label}: {text}"),
        };
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn should_stop(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }
}
