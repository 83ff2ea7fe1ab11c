//! TensorBoard event files, so that `tensorboard --logdir runs` shows a run (or a whole
//! `compare`) the way Keras and PyTorch users are used to: scalars per epoch (loss, accuracy,
//! learning rate, throughput), the running training loss and accuracy every few steps, and the
//! run's settings as text.
//!
//! The format is small — TFRecord framing (length, masked CRC-32C) around `Event` protocol
//! buffers — and is written here directly. The file is rebuilt whole from the run's history and
//! replaced atomically, like every file of a run.

use sepnet_model::proto::Message;

use crate::checkpoint::StepRecord;
use crate::metrics::EpochMetrics;

/// The event file's name in a run directory (TensorBoard reads any name with `tfevents`).
pub const EVENTS: &str = "events.out.tfevents.sepnet";

/// CRC-32C as TFRecord masks it.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one TFRecord holding `event`.
fn record(out: &mut Vec<u8>, event: Message) {
    let event = event.into_bytes();
    let len = (event.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(&event);
    out.extend_from_slice(&masked_crc(&event).to_le_bytes());
}

/// An `Event` at `wall_time` and `step` with a `Summary` of scalar values.
fn scalars(wall_time: f64, step: u64, values: &[(&str, f64)]) -> Message {
    let summary = values.iter().fold(Message::default(), |summary, (tag, v)| {
        let value = Message::default()
            .bytes(1, tag.as_bytes())
            .float(2, *v as f32);
        summary.message(1, value)
    });
    Message::default()
        .double(1, wall_time)
        .int(2, step as i64)
        .message(5, summary)
}

/// An `Event` with a text summary (TensorBoard's "text" plugin: a string tensor).
fn text(wall_time: f64, tag: &str, markdown: &str) -> Message {
    const DT_STRING: i64 = 7;
    let plugin = Message::default().bytes(1, b"text");
    let metadata = Message::default().message(1, plugin);
    let tensor = Message::default()
        .int(1, DT_STRING)
        .message(2, Message::default())
        .bytes(8, markdown.as_bytes());
    let value = Message::default()
        .bytes(1, tag.as_bytes())
        .message(9, metadata)
        .message(8, tensor);
    let summary = Message::default().message(1, value);
    Message::default()
        .double(1, wall_time)
        .int(2, 0)
        .message(5, summary)
}

/// The whole event file of a run: its settings (`settings` as markdown), then every logged step
/// and every epoch. `start` is the run's start time (seconds since the Unix epoch); event
/// times follow from the recorded training seconds, so rebuilding the file gives the same bytes.
pub fn events(
    start: f64,
    settings: &str,
    steps: &[StepRecord],
    history: &[EpochMetrics],
    steps_per_epoch: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    let version = Message::default()
        .double(1, start)
        .bytes(3, b"brain.Event:2");
    record(&mut out, version);
    record(&mut out, text(start, "settings", settings));
    for s in steps {
        let values = [
            ("train/running_loss", s.loss),
            ("train/running_accuracy", s.accuracy),
        ];
        record(&mut out, scalars(start + s.seconds, s.step as u64, &values));
    }
    let mut elapsed = 0.0;
    for m in history {
        elapsed += m.train_seconds;
        let mut values = vec![
            ("epoch/train_loss", m.train_loss),
            ("epoch/train_accuracy", m.train_accuracy),
            ("epoch/val_loss", m.val_loss),
            ("epoch/val_accuracy", m.val_accuracy),
            ("epoch/learning_rate", m.lr),
            ("epoch/images_per_second", m.images_per_second),
        ];
        // Data-parallel runs: the epoch's seconds in the gradient all-reduce.
        if m.allreduce_seconds > 0.0 {
            values.push(("epoch/allreduce_seconds", m.allreduce_seconds));
        }
        let step = (m.epoch * steps_per_epoch) as u64;
        record(&mut out, scalars(start + elapsed, step, &values));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_framed_with_masked_crcs() {
        let bytes = events(1.0e9, "lr 0.001", &[], &[], 10);
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
            masked_crc(&bytes[..8])
        );
        let data = &bytes[12..12 + len];
        let crc = u32::from_le_bytes(bytes[12 + len..16 + len].try_into().unwrap());
        assert_eq!(crc, masked_crc(data));
        // The first event names the file version, as TensorBoard expects.
        assert!(data.windows(13).any(|w| w == b"brain.Event:2"));
    }
}
