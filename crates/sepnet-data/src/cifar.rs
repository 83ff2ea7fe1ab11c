//! CIFAR-10, binary version: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G,
//! 1024 B, row-major), as loose files or straight from `cifar-10-binary.tar.gz`.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};

/// Bytes per record.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// Training batches, then the test batch.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch.
pub const TEST_FILE: &str = "test_batch.bin";
/// Class names file.
pub const META_FILE: &str = "batches.meta.txt";
/// The distributed archive.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// The archive decompresses to 178 MiB; anything much larger is refused before it fills memory.
const MAX_ARCHIVE: usize = 256 << 20;

/// Parses records (from `path`, for error messages) into a split.
pub fn parse_records(bytes: &[u8], path: &Path) -> Result<Split> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::invalid(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (truncated?)",
                bytes.len()
            ),
        ));
    }
    let count = bytes.len() / RECORD;
    let mut split = Split {
        images: Vec::with_capacity(count * (RECORD - 1)),
        labels: Vec::with_capacity(count),
    };
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] >= 10 {
            return Err(DataError::invalid(
                path,
                format!("record {i} has label {}, outside 0..10", record[0]),
            ));
        }
        split.labels.push(record[0]);
        split.images.extend_from_slice(&record[1..]); // already CHW
    }
    Ok(split)
}

/// Parses `batches.meta.txt`: ten non-empty class names.
pub fn parse_meta(text: &[u8], path: &Path) -> Result<Vec<String>> {
    let text = std::str::from_utf8(text)
        .map_err(|_| DataError::invalid(path, "class names are not UTF-8"))?;
    let classes: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if classes.len() != 10 {
        return Err(DataError::invalid(
            path,
            format!("expected 10 class names, found {}", classes.len()),
        ));
    }
    Ok(classes)
}

fn assemble(name: &str, classes: Vec<String>, train: Vec<Split>, test: Split) -> Dataset {
    let mut all = Split::default();
    for part in train {
        all.images.extend_from_slice(&part.images);
        all.labels.extend_from_slice(&part.labels);
    }
    Dataset {
        name: name.into(),
        classes,
        image_shape: [32, 32, 3],
        train: all,
        test,
    }
}

/// True when `dir` holds the loose files.
pub fn loose_present(dir: &Path) -> bool {
    TRAIN_FILES
        .iter()
        .chain([&TEST_FILE, &META_FILE])
        .all(|f| dir.join(f).is_file())
}

/// Loads the loose files from `dir`.
pub fn load_dir(dir: &Path) -> Result<Dataset> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path)
            .map_err(|e| DataError::io(&path, e))
            .map(|b| (b, path))
    };
    let (meta, meta_path) = read(META_FILE)?;
    let classes = parse_meta(&meta, &meta_path)?;
    let train = TRAIN_FILES
        .iter()
        .map(|f| read(f).and_then(|(b, p)| parse_records(&b, &p)))
        .collect::<Result<Vec<_>>>()?;
    let (test, test_path) = read(TEST_FILE)?;
    Ok(assemble(
        "cifar10",
        classes,
        train,
        parse_records(&test, &test_path)?,
    ))
}

/// Loads straight from the distributed `cifar-10-binary.tar.gz`, reading only the expected
/// member names (`*/data_batch_N.bin`, `*/test_batch.bin`, `*/batches.meta.txt`).
pub fn load_archive(path: &Path) -> Result<Dataset> {
    let gz = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    archive_from_bytes(&gz, path)
}

/// [`load_archive`] of the `.tar.gz` bytes in memory (`path` is used in messages).
pub fn archive_from_bytes(gz: &[u8], path: &Path) -> Result<Dataset> {
    let mut archive = Vec::new();
    GzDecoder::new(gz)
        .take(MAX_ARCHIVE as u64 + 1)
        .read_to_end(&mut archive)
        .map_err(|e| DataError::invalid(path, format!("truncated or corrupt gzip data ({e})")))?;
    if archive.len() > MAX_ARCHIVE {
        return Err(DataError::invalid(
            path,
            format!(
                "decompresses to more than {} MiB, far more than CIFAR-10's 178 MiB: not the CIFAR-10 archive",
                MAX_ARCHIVE >> 20
            ),
        ));
    }
    let members = archive_members(&archive, path)?;
    let member = |name: &str| {
        members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, data)| data.as_slice())
            .ok_or_else(|| DataError::invalid(path, format!("archive has no {name}")))
    };
    let classes = parse_meta(member(META_FILE)?, path)?;
    let train = TRAIN_FILES
        .iter()
        .map(|f| member(f).and_then(|b| parse_records(b, &path.join(f))))
        .collect::<Result<Vec<_>>>()?;
    let test = parse_records(member(TEST_FILE)?, &path.join(TEST_FILE))?;
    Ok(assemble("cifar10", classes, train, test))
}

/// The expected members of the (decompressed) archive, by file name; other entries are
/// skipped unread, and nothing is ever written to disk.
fn archive_members(archive: &[u8], path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let corrupt = |e: std::io::Error| {
        DataError::invalid(path, format!("tar archive is truncated or corrupt ({e})"))
    };
    let wanted: Vec<&str> = TRAIN_FILES
        .iter()
        .chain([&TEST_FILE, &META_FILE])
        .copied()
        .collect();
    let mut members = Vec::new();
    for entry in tar::Archive::new(archive).entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let entry_path = entry.path().map_err(corrupt)?;
        let name = entry_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if wanted.contains(&name.as_str()) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(corrupt)?;
            members.push((name, data));
        }
    }
    Ok(members)
}
