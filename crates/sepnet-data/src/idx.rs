//! The IDX format of MNIST and Fashion-MNIST (gzip'd or raw), read strictly: magic number,
//! dimensions, and header counts against the bytes actually present. No allocation is ever
//! sized from an unchecked header.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// Decompressed IDX files are at most this large (MNIST's biggest is 47 MB).
const MAX_DECOMPRESSED: u64 = 1 << 30;

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(raw.as_slice())
            .take(MAX_DECOMPRESSED)
            .read_to_end(&mut out)
            .map_err(|e| {
                DataError::invalid(path, format!("truncated or corrupt gzip data ({e})"))
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn describe_magic(magic: u32) -> String {
    match magic {
        IMAGES_MAGIC => "an IDX images file (magic 0x00000803)".into(),
        LABELS_MAGIC => "an IDX labels file (magic 0x00000801)".into(),
        other => format!("not an IDX file this loader knows (magic 0x{other:08x})"),
    }
}

/// Reads a file and checks its magic number (first, so a labels file passed as images says so
/// whatever its length) and that a whole header of `header_len` bytes is there.
fn read_checked_header(path: &Path, magic: u32, header_len: usize, kind: &str) -> Result<Vec<u8>> {
    let bytes = read_maybe_gzip(path)?;
    if bytes.len() >= 4 && be_u32(&bytes, 0) != magic {
        return Err(DataError::invalid(
            path,
            format!(
                "expected an IDX {kind} file (magic 0x{magic:08x}) but this is {}",
                describe_magic(be_u32(&bytes, 0))
            ),
        ));
    }
    if bytes.len() < header_len {
        return Err(DataError::invalid(
            path,
            format!(
                "{} bytes is too short for an IDX {kind} header ({header_len} bytes)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Images: `(count, rows, cols, pixels)` with `pixels.len() == count · rows · cols`.
pub fn read_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bytes = read_checked_header(path, IMAGES_MAGIC, 16, "images")?;
    let (count, rows, cols) = (
        be_u32(&bytes, 4) as usize,
        be_u32(&bytes, 8) as usize,
        be_u32(&bytes, 12) as usize,
    );
    if rows == 0 || cols == 0 {
        return Err(DataError::invalid(
            path,
            format!("header gives images of {rows}×{cols}"),
        ));
    }
    let expected = count.checked_mul(rows).and_then(|n| n.checked_mul(cols));
    let present = bytes.len() - 16;
    if expected != Some(present) {
        let want = expected.map_or("an impossible number of".to_string(), |n| n.to_string());
        return Err(DataError::invalid(
            path,
            format!(
                "header says {count} images of {rows}×{cols} ({want} bytes) but the file holds {present} bytes of pixels ({})",
                if expected.is_some_and(|n| n > present) {
                    "truncated?"
                } else {
                    "trailing or missing data"
                }
            ),
        ));
    }
    let mut pixels = bytes;
    pixels.drain(..16);
    Ok((count, rows, cols, pixels))
}

/// Labels, each checked to be below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>> {
    let bytes = read_checked_header(path, LABELS_MAGIC, 8, "labels")?;
    let count = be_u32(&bytes, 4) as usize;
    let present = bytes.len() - 8;
    if count != present {
        return Err(DataError::invalid(
            path,
            format!(
                "header says {count} labels but the file holds {present} ({})",
                if count > present {
                    "truncated?"
                } else {
                    "trailing data"
                }
            ),
        ));
    }
    let labels = bytes[8..].to_vec();
    if let Some((i, bad)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= classes)
    {
        return Err(DataError::invalid(
            path,
            format!("label {bad} at index {i} is outside 0..{classes}"),
        ));
    }
    Ok(labels)
}

/// Writes an IDX file (used by tests and fixtures).
pub fn encode_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGES_MAGIC, count as u32, rows as u32, cols as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Writes an IDX labels file (used by tests and fixtures).
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}
