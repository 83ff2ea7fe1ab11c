//! Will a training fit in memory? Checked before anything is created, so a network or batch
//! too large for the machine is a clear error instead of an aborted process.

use sepnet_model::{Backend, Summary};

use crate::TrainError;

/// Bytes a training step at `batch` needs, roughly: every activation is kept for the backward
/// pass and gets a gradient of its own (plus a working copy), and every weight has a gradient
/// and two optimizer moments beside it.
pub fn training_bytes(summary: &Summary, batch: usize) -> u128 {
    let [h, w, c] = summary.input;
    let activations: u128 = summary
        .layers
        .iter()
        .map(|l| l.output_shape.numel() as u128)
        .sum::<u128>()
        + (h * w * c) as u128;
    let floats = 3 * activations * batch as u128 + 4 * summary.total_params as u128;
    4 * floats
}

/// Memory the operating system says it can give (Linux's `MemAvailable`), in bytes.
fn available_bytes() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u128 << 30) as f64)
}

/// Refuses a training whose estimate exceeds the machine's available memory (on the CPU
/// backend; a GPU's memory is not known here).
pub fn check_fits(summary: &Summary, batch: usize, backend: Backend) -> Result<(), TrainError> {
    if backend != Backend::Flex {
        return Ok(());
    }
    let needed = training_bytes(summary, batch);
    let Some(available) = available_bytes() else {
        return Ok(());
    };
    if needed <= available {
        return Ok(());
    }
    Err(TrainError::Config(format!(
        "training {} at batch {batch} needs about {} of memory ({} parameters, activations of \
         {batch} images kept for the backward pass); this machine has {} available. \
         Lower --batch-size or use a smaller network",
        summary.model,
        gib(needed),
        sepnet_model::group_thousands(summary.total_params),
        gib(available)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sepnet_model::{ModelOptions, resolve_model};

    #[test]
    fn estimate_counts_activations_per_image_and_weights_four_times() {
        let spec = resolve_model(
            "conv:8:3,flatten,dense:10",
            &ModelOptions {
                input: Some([4, 4, 1]),
                ..Default::default()
            },
        )
        .unwrap();
        let summary = Summary::of(&spec).unwrap();
        // Activations 16 (input) + 128 + 128 + 10; parameters 80 + 1290.
        let expected = 4 * (3 * 282 * 2 + 4 * 1370);
        assert_eq!(training_bytes(&summary, 2), expected as u128);
    }

    #[test]
    fn a_network_larger_than_memory_is_refused() {
        let spec = resolve_model(
            "conv:4096:64,flatten,dense:10",
            &ModelOptions {
                input: Some([512, 512, 3]),
                ..Default::default()
            },
        )
        .unwrap();
        let summary = Summary::of(&spec).unwrap();
        if available_bytes().is_some() {
            let err = check_fits(&summary, 1024, Backend::Flex)
                .unwrap_err()
                .to_string();
            assert!(err.contains("Lower --batch-size"), "{err}");
        }
    }
}
