//! The fuzz targets' properties (`fuzz/fuzz_targets/`), run in every `cargo test` on their
//! committed corpora and on 20,000 seeded random mutations of them: a short fuzz run, so that a
//! regression shows in CI. The long runs are `cargo +nightly fuzz run <target>` (see
//! docs/reliability.md).

use std::path::{Path, PathBuf};

use sepnet_data::{Rng, cifar, idx, image_folder};
use sepnet_model::Summary;
use sepnet_model::spec::NetworkSpec;
use sepnet_train::checkpoint::TrainState;
use sepnet_train::{DatasetInfo, RunConfig, fuzzing};

/// Mutated inputs per target, spread over its corpus files.
const MUTATIONS: usize = 20_000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// The corpus, then each file with a few random bytes flipped, inserted, removed or cut.
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(42, target.len() as u64);
    let mut out = Vec::new();
    let corpus = corpus(target);
    let per_file = (MUTATIONS / corpus.len()).max(10);
    for seed in corpus {
        for _ in 0..per_file {
            let mut bytes = seed.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len().max(1));
                match rng.below(4) {
                    0 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
                    1 => bytes.insert(at.min(bytes.len()), rng.next_u64() as u8),
                    2 if !bytes.is_empty() => drop(bytes.remove(at)),
                    _ => bytes.truncate(at),
                }
            }
            out.push(bytes);
        }
        out.push(seed);
    }
    out
}

#[test]
fn idx_reader_never_panics_and_agrees_with_its_header() {
    let name = Path::new("fuzz.idx");
    for data in inputs("idx") {
        if let Ok((count, rows, cols, pixels)) = idx::images_from_bytes(&data, name) {
            assert_eq!(pixels.len(), count * rows * cols);
        }
        if let Ok(labels) = idx::labels_from_bytes(&data, name, 10) {
            assert!(labels.iter().all(|&l| l < 10));
        }
    }
}

#[test]
fn cifar_readers_never_panic() {
    let name = Path::new("fuzz.bin");
    for data in inputs("cifar") {
        if let Ok(split) = cifar::parse_records(&data, name) {
            assert_eq!(split.images.len(), split.len() * 3072);
        }
        let _ = cifar::parse_meta(&data, name);
        let _ = cifar::archive_from_bytes(&data, name);
    }
}

#[test]
fn a_damaged_image_cache_is_rebuilt_never_trusted() {
    let mut accepted = 0;
    for data in inputs("image_cache") {
        // The folder fingerprint the bytes carry, as the fuzz target does.
        let print = data
            .get(12..20)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
        if let Some(d) = image_folder::parse_cache(&data, print, "fuzz") {
            accepted += 1;
            let labels = d.train.labels.iter().chain(&d.test.labels);
            assert!(labels.clone().all(|&l| (l as usize) < d.classes.len()));
            assert_eq!(d.train.images.len(), d.train.len() * d.image_len());
        }
    }
    assert!(accepted >= 1, "the seed cache is accepted");
}

#[test]
fn specs_parse_or_point_at_the_token_and_print_back_to_themselves() {
    for data in inputs("spec") {
        let Some((&[h, w, c], text)) = data.split_first_chunk::<3>() else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(text) else {
            continue;
        };
        let input = [h as usize + 1, w as usize + 1, c as usize % 8 + 1];
        match NetworkSpec::parse(text, input) {
            Ok(spec) => {
                let summary = Summary::of(&spec).unwrap();
                let again = NetworkSpec::parse(&summary.spec, input).unwrap();
                assert_eq!(
                    again.layers, spec.layers,
                    "{text} printed as {}",
                    summary.spec
                );
            }
            Err(err) => assert!(err.span.0 <= err.span.1 && err.span.1 <= text.len()),
        }
    }
}

#[test]
fn run_records_load_or_refuse_never_panic() {
    for data in inputs("checkpoint_state") {
        let _ = serde_json::from_slice::<TrainState>(&data);
        let _ = serde_json::from_slice::<RunConfig>(&data);
        let _ = serde_json::from_slice::<DatasetInfo>(&data);
        fuzzing::check_record(&data);
    }
}

/// Sealed records (a run's config, data description, state and summary, a sweep's plan):
/// every mutation is refused, or changes nothing a reader sees.
#[test]
fn sealed_records_are_refused_or_read_unchanged() {
    let path = Path::new("record.json");
    let read = |bytes: &[u8]| {
        sepnet_train::run::read_raw_json_bytes(path, bytes)
            .and_then(|raw| sepnet_train::run::unseal(path, raw))
            .ok()
    };
    let seeds: Vec<serde_json::Value> = corpus("run_records")
        .iter()
        .map(|seed| read(seed).expect("the seeds are sealed records"))
        .collect();
    let mut accepted = 0;
    for data in inputs("run_records") {
        fuzzing::check_record(&data);
        if let Some(value) = read(&data) {
            accepted += 1;
            assert!(
                seeds.contains(&value),
                "a changed record was accepted: {}",
                String::from_utf8_lossy(&data)
            );
        }
    }
    assert!(accepted >= seeds.len());
}

#[test]
fn sweep_scripts_hold_exactly_their_own_lines() {
    for data in inputs("sweep_script") {
        fuzzing::check_script(&data);
    }
}
