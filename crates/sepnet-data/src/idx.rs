//! The IDX format of MNIST and Fashion-MNIST (gzip'd or raw), read strictly: magic number,
//! dimensions, and header counts against the bytes actually present. No allocation is ever
//! sized from an unchecked header, and no more data is decompressed than the header promises.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// An IDX payload is at most this large (MNIST's biggest is 47 MB): a header asking for more
/// is refused before anything is read or allocated.
const MAX_PAYLOAD: usize = 1 << 30;

/// An IDX file opened for reading: gunzipped on the fly when it starts with the gzip magic.
/// Only the bytes the header promises (plus one, to detect trailing data) are ever
/// decompressed, so a gzip bomb costs nothing.
struct Source<'a> {
    path: &'a Path,
    reader: Box<dyn Read + 'a>,
    gzip: bool,
}

impl<'a> Source<'a> {
    fn open(path: &'a Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        Source::new(path, file)
    }

    /// Reads from `input` (named `path` in messages), gunzipping when it starts like gzip.
    fn new(path: &'a Path, mut input: impl Read + 'a) -> Result<Self> {
        let mut magic = [0u8; 2];
        let n = input.read(&mut magic).map_err(|e| DataError::io(path, e))?;
        let head = std::io::Cursor::new(magic[..n].to_vec());
        let gzip = magic[..n] == [0x1f, 0x8b];
        let reader: Box<dyn Read> = if gzip {
            Box::new(MultiGzDecoder::new(std::io::BufReader::new(
                head.chain(input),
            )))
        } else {
            Box::new(head.chain(input))
        };
        Ok(Source { path, reader, gzip })
    }

    fn gzip_error(&self, e: std::io::Error) -> DataError {
        if self.gzip {
            DataError::invalid(self.path, format!("truncated or corrupt gzip data ({e})"))
        } else {
            DataError::io(self.path, e)
        }
    }

    /// Up to `limit` bytes (fewer at the end of the data).
    fn read_up_to(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut self.reader)
            .take(limit as u64)
            .read_to_end(&mut out)
            .map_err(|e| self.gzip_error(e))?;
        Ok(out)
    }

    /// How many bytes are left after the payload (exact for raw files, "at least 1" for
    /// gzip'd ones, which are not decompressed further).
    fn trailing(&mut self) -> Result<(usize, bool)> {
        if self.gzip {
            let probe = self.read_up_to(1)?.len();
            return Ok((probe, probe > 0));
        }
        let rest = self.read_up_to(usize::MAX)?.len();
        Ok((rest, false))
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

/// Reads and checks the header: the magic number first (so a labels file passed as images
/// says so whatever its length), then that all `header_len` bytes are there.
fn read_header(source: &mut Source, magic: u32, header_len: usize, kind: &str) -> Result<Vec<u8>> {
    let header = source.read_up_to(header_len)?;
    if header.len() >= 4 && be_u32(&header, 0) != magic {
        return Err(DataError::invalid(
            source.path,
            format!(
                "expected an IDX {kind} file (magic 0x{magic:08x}) but this is {}",
                describe_magic(be_u32(&header, 0))
            ),
        ));
    }
    if header.len() < header_len {
        return Err(DataError::invalid(
            source.path,
            format!(
                "{} bytes is too short for an IDX {kind} header ({header_len} bytes)",
                header.len()
            ),
        ));
    }
    Ok(header)
}

/// Reads exactly the `expected` payload bytes the header announced (`what` describes them,
/// `unit` names a payload byte in messages), and refuses a file with fewer or more.
fn read_payload(
    source: &mut Source,
    expected: Option<usize>,
    what: &str,
    unit: &str,
) -> Result<Vec<u8>> {
    let Some(expected) = expected.filter(|&n| n <= MAX_PAYLOAD) else {
        return Err(DataError::invalid(
            source.path,
            format!("header says {what}: more than the {MAX_PAYLOAD} bytes an IDX file may hold"),
        ));
    };
    let payload = source.read_up_to(expected)?;
    if payload.len() < expected {
        return Err(DataError::invalid(
            source.path,
            format!(
                "header says {what} but the file holds {}{unit} (truncated?)",
                payload.len()
            ),
        ));
    }
    match source.trailing()? {
        (0, _) => Ok(payload),
        (_, true) => Err(DataError::invalid(
            source.path,
            format!("header says {what} but the file holds more (trailing data)"),
        )),
        (extra, false) => Err(DataError::invalid(
            source.path,
            format!(
                "header says {what} but the file holds {}{unit} (trailing data)",
                expected + extra
            ),
        )),
    }
}

/// Images: `(count, rows, cols, pixels)` with `pixels.len() == count · rows · cols`.
pub fn read_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    images(Source::open(path)?)
}

/// [`read_images`] of bytes in memory (`name` is used in messages).
pub fn images_from_bytes(bytes: &[u8], name: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    images(Source::new(name, bytes)?)
}

fn images(mut source: Source) -> Result<(usize, usize, usize, Vec<u8>)> {
    let path = source.path;
    let header = read_header(&mut source, IMAGES_MAGIC, 16, "images")?;
    let (count, rows, cols) = (
        be_u32(&header, 4) as usize,
        be_u32(&header, 8) as usize,
        be_u32(&header, 12) as usize,
    );
    if rows == 0 || cols == 0 {
        return Err(DataError::invalid(
            path,
            format!("header gives images of {rows}×{cols}"),
        ));
    }
    let expected = count.checked_mul(rows).and_then(|n| n.checked_mul(cols));
    let what = match expected {
        Some(bytes) => format!("{count} images of {rows}×{cols} ({bytes} bytes)"),
        None => format!("{count} images of {rows}×{cols}"),
    };
    let pixels = read_payload(&mut source, expected, &what, " bytes of pixels")?;
    Ok((count, rows, cols, pixels))
}

/// Labels, each checked to be below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>> {
    labels(Source::open(path)?, classes)
}

/// [`read_labels`] of bytes in memory (`name` is used in messages).
pub fn labels_from_bytes(bytes: &[u8], name: &Path, classes: usize) -> Result<Vec<u8>> {
    labels(Source::new(name, bytes)?, classes)
}

fn labels(mut source: Source, classes: usize) -> Result<Vec<u8>> {
    let path = source.path;
    let header = read_header(&mut source, LABELS_MAGIC, 8, "labels")?;
    let count = be_u32(&header, 4) as usize;
    let labels = read_payload(&mut source, Some(count), &format!("{count} labels"), "")?;
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
