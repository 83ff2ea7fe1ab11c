//! The properties the fuzz targets check (`fuzz/fuzz_targets/`), in one place: `cargo +nightly
//! fuzz` runs them for hours, and every `cargo test` runs them over the seed corpora and
//! thousands of mutations (`tests/it/robustness.rs`). Each takes any bytes and panics only when
//! the property fails.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::TrainState;
use crate::run::{read_raw_json_bytes, to_json, unseal};
use crate::sweep::{Plan, SlurmOptions, check_script_path, sbatch_script, slurm_name, slurm_time};
use crate::{DatasetInfo, RunConfig, RunSummary};

/// A record read the way sepnet reads its own: refused, or — when its seal holds — a record
/// that writes and reads back to itself; a plan that reads passes its checks or is refused
/// by them, and then makes a batch script.
pub fn check_record(data: &[u8]) {
    let path = Path::new("record.json");
    let Ok(value) = read_raw_json_bytes(path, data).and_then(|raw| unseal(path, raw)) else {
        return;
    };
    round_trip::<TrainState>(&value);
    round_trip::<RunConfig>(&value);
    round_trip::<DatasetInfo>(&value);
    round_trip::<RunSummary>(&value);
    if let Some(plan) = round_trip::<Plan>(&value)
        && plan.check().is_ok()
    {
        let script = sbatch_script(Path::new("/sweep"), &plan, &SlurmOptions::default());
        assert!(script.ends_with('\n'));
    }
}

/// The record `value` holds, if it is a `T`, checked to seal and unseal back to itself.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: &serde_json::Value,
) -> Option<T> {
    let record: T = serde_json::from_value(value.clone()).ok()?;
    let path = Path::new("again.json");
    let text = to_json(&record);
    let raw = read_raw_json_bytes(path, text.as_bytes()).expect("sepnet's JSON parses");
    let back: T = serde_json::from_value(unseal(path, raw).expect("a fresh seal holds"))
        .expect("a written record reads back");
    assert_eq!(back, record);
    Some(record)
}

/// The pieces of a batch script a user chooses, from fuzz bytes: folder, time limit,
/// partition, account, separated by NUL bytes.
fn script_inputs(data: &[u8]) -> Option<(PathBuf, String, String, String)> {
    use std::os::unix::ffi::OsStrExt;
    let mut parts = data.split(|&b| b == 0);
    let dir = PathBuf::from(std::ffi::OsStr::from_bytes(parts.next()?));
    let mut text = || String::from_utf8(parts.next().unwrap_or_default().to_vec()).ok();
    Some((dir, text()?, text()?, text()?))
}

/// A batch script from any folder, time limit, partition and account is refused, or holds
/// exactly its own lines, and its `exec` line names the folder exactly (as bash reads it).
pub fn check_script(data: &[u8]) {
    let Some((dir, time, partition, account)) = script_inputs(data) else {
        return;
    };
    let options = SlurmOptions {
        partition: slurm_name(&partition).ok(),
        account: slurm_name(&account).ok(),
        time: match slurm_time(&time) {
            Ok(time) => time,
            Err(_) => return,
        },
        cpus_per_task: 1,
        gpus: None,
        sepnet: PathBuf::from("/bin/sepnet"),
    };
    if dir.as_os_str().is_empty() || !dir.is_absolute() || check_script_path(&dir).is_err() {
        return;
    }
    let plan = Plan {
        models: vec!["m".into()],
        repeats: 1,
        tasks: Vec::new(),
        distill_from: None,
        ntasks: 1,
    };
    let script = sbatch_script(&dir, &plan, &options);
    let lines: Vec<&str> = script.lines().collect();
    let optional =
        usize::from(options.partition.is_some()) + usize::from(options.account.is_some());
    assert_eq!(lines.len(), 10 + optional, "{script}");
    let exec = lines.last().expect("lines");
    let words = shell_words(exec).expect("the exec line is well quoted");
    assert_eq!(words[4], dir.to_str().expect("checked UTF-8"), "{exec}");
    for line in &lines[1..lines.len() - 3] {
        assert!(line.starts_with("#SBATCH --"), "{line}");
    }
}

/// Splits a line into words as bash does for plain words, single and double quotes without
/// expansions (`None` for an unterminated quote).
fn shell_words(line: &str) -> Option<Vec<String>> {
    let (mut words, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            word.push(c);
            escaped = false;
            continue;
        }
        match (quote, c) {
            (None, '\\') => (escaped, started) = (true, true),
            (None, ' ') if started => {
                words.push(std::mem::take(&mut word));
                started = false;
            }
            (None, ' ') => {}
            (None, '\'' | '"') => (quote, started) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (_, c) => (word, started) = (word + &c.to_string(), true),
        }
    }
    if quote.is_some() {
        return None;
    }
    if started {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_unquote_as_bash_does() {
        let words = shell_words(r#"exec '/a b' x 'it'\''s' "$V""#).unwrap();
        assert_eq!(words, ["exec", "/a b", "x", "it's", "$V"]);
        assert!(shell_words("'open").is_none());
    }

    #[test]
    fn the_script_properties_hold_for_awkward_folders() {
        for dir in ["/a b/$c/it's 100%", "/x\"y\\z", "/#/ä"] {
            let mut data = dir.as_bytes().to_vec();
            data.extend(b"\x0001:00:00\x00gpu\x00acct");
            check_script(&data);
        }
    }
}
