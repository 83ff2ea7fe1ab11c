//! Will a network fit in memory? One estimate, checked before anything is created against the
//! smallest of the limits that apply to this process — the memory the machine has available,
//! an address-space or data-size limit (`ulimit -v`, `ulimit -d`) and a container's or Slurm
//! job's cgroup limit — so a network or batch too large is a clear error, not an aborted process.

use sepnet_model::{Backend, Summary};

use crate::TrainError;

/// Bytes a training step at `batch` needs, roughly: every activation is kept for the backward
/// pass and gets a gradient of its own (plus a working copy), and every weight has a gradient
/// and two optimizer moments beside it. Also an upper bound for a forward pass.
pub fn training_bytes(summary: &Summary, batch: usize) -> u128 {
    let [h, w, c] = summary.input;
    let activations: u128 = summary
        .layers
        .iter()
        .map(|l| l.output_shape.numel() as u128)
        .sum::<u128>()
        + (h as u128 * w as u128 * c as u128);
    let floats = 3 * activations * batch as u128 + 4 * summary.total_params as u128;
    4 * floats
}

/// One limit on the memory this process may still take, and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    /// Bytes still available under it.
    pub bytes: u128,
    /// What it is, as the user would find it (`MemAvailable`, `ulimit -v`, a cgroup file).
    pub source: String,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A `/proc/self/status`-style `Key:   N kB` value, in bytes.
fn kib_field(text: &str, key: &str) -> Option<u128> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u128 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft limit of `/proc/self/limits` row `name`, when it is not unlimited.
fn soft_limit(limits: &str, name: &str) -> Option<u128> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// The cgroup memory limits of this process (v2 `memory.max`, v1 `memory.limit_in_bytes`),
/// each less what the group already uses.
fn cgroup_limits() -> Vec<Limit> {
    let mut found = Vec::new();
    let own = read("/proc/self/cgroup").unwrap_or_default();
    let mut folders: Vec<(String, &str, &str)> = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        if controllers.is_empty() {
            folders.push((
                format!("/sys/fs/cgroup{path}"),
                "memory.max",
                "memory.current",
            ));
        } else if controllers.split(',').any(|c| c == "memory") {
            let root = "/sys/fs/cgroup/memory";
            folders.push((
                format!("{root}{path}"),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            ));
            folders.push((
                root.to_string(),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            ));
        }
    }
    folders.push(("/sys/fs/cgroup".into(), "memory.max", "memory.current"));
    for (folder, max, current) in folders {
        let limit = read(&format!("{folder}/{max}")).and_then(|t| t.trim().parse::<u128>().ok());
        let used = read(&format!("{folder}/{current}")).and_then(|t| t.trim().parse::<u128>().ok());
        // "max" (v2) does not parse; v1 writes a huge number for "no limit".
        if let (Some(limit), Some(used)) = (limit, used)
            && limit < 1 << 60
        {
            found.push(Limit {
                bytes: limit.saturating_sub(used),
                source: format!("the cgroup limit in {folder}/{max}"),
            });
        }
    }
    found
}

/// Every limit that applies to this process now (Linux; elsewhere none is known).
pub fn limits() -> Vec<Limit> {
    let mut all = Vec::new();
    if let Some(bytes) = read("/proc/meminfo").and_then(|t| kib_field(&t, "MemAvailable:")) {
        all.push(Limit {
            bytes,
            source: "the machine's available memory (MemAvailable)".into(),
        });
    }
    let status = read("/proc/self/status").unwrap_or_default();
    let limits = read("/proc/self/limits").unwrap_or_default();
    let rows = [
        (
            "Max address space",
            "VmSize:",
            "the address-space limit (ulimit -v)",
        ),
        (
            "Max data size",
            "VmData:",
            "the data-size limit (ulimit -d)",
        ),
    ];
    for (row, used_key, source) in rows {
        if let Some(limit) = soft_limit(&limits, row) {
            let used = kib_field(&status, used_key).unwrap_or(0);
            all.push(Limit {
                bytes: limit.saturating_sub(used),
                source: source.into(),
            });
        }
    }
    all.extend(cgroup_limits());
    all
}

/// The smallest of [`limits`], if any applies.
pub fn tightest() -> Option<Limit> {
    limits().into_iter().min_by_key(|l| l.bytes)
}

fn gib(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u128 << 30) as f64)
}

/// Refuses `what` (e.g. "training vgg-full at batch 128") when it needs more than `limit`
/// allows. `needed` is [`training_bytes`] or another estimate of the same kind.
pub fn check_needed(needed: u128, what: &str, limit: Option<Limit>) -> Result<(), TrainError> {
    let Some(limit) = limit else {
        return Ok(());
    };
    if needed <= limit.bytes {
        return Ok(());
    }
    Err(TrainError::Config(format!(
        "{what} needs about {} of memory; {} leaves {}. Lower --batch-size or the input size, \
         or use a smaller network",
        gib(needed),
        limit.source,
        gib(limit.bytes)
    )))
}

/// Refuses to build `summary`'s network at `batch` (a training step, which also bounds a
/// forward pass) when it would not fit (on the CPU backend; a GPU's memory is not known here).
pub fn check_fits(summary: &Summary, batch: usize, backend: Backend) -> Result<(), TrainError> {
    if backend != Backend::Flex {
        return Ok(());
    }
    let what = format!(
        "{} at batch {batch} ({} parameters, activations of {batch} images kept for the \
         backward pass)",
        summary.model,
        sepnet_model::group_thousands(summary.total_params)
    );
    check_needed(training_bytes(summary, batch), &what, tightest())
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
        if tightest().is_some() {
            let err = check_fits(&summary, 1024, Backend::Flex)
                .unwrap_err()
                .to_string();
            assert!(err.contains("Lower --batch-size"), "{err}");
        }
    }

    #[test]
    fn the_smallest_limit_is_named() {
        let limit = Limit {
            bytes: 1 << 30,
            source: "the address-space limit (ulimit -v)".into(),
        };
        let err = check_needed(2 << 30, "x", Some(limit.clone())).unwrap_err();
        assert!(err.to_string().contains("ulimit -v"), "{err}");
        assert!(err.to_string().contains("leaves 1.0 GiB"), "{err}");
        assert!(check_needed(1 << 29, "x", Some(limit)).is_ok());
    }

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        let limits = "Max cpu time              unlimited            unlimited            seconds\n\
                      Max address space         4294967296           unlimited            bytes\n";
        assert_eq!(soft_limit(limits, "Max address space"), Some(4294967296));
        assert_eq!(soft_limit(limits, "Max cpu time"), None);
        let status = "VmPeak:\t  10 kB\nVmSize:\t    2048 kB\n";
        assert_eq!(kib_field(status, "VmSize:"), Some(2048 * 1024));
    }
}
