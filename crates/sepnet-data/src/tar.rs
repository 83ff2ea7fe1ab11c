//! A minimal, read-only ustar reader: yields regular files' names and contents from memory.
//! Nothing is ever written to disk, so hostile paths inside an archive cannot escape anywhere.

use std::path::Path;

use crate::error::{DataError, Result};

/// One regular file of an archive.
pub struct Entry<'a> {
    /// Path inside the archive (ustar prefix joined).
    pub name: String,
    /// The file's bytes.
    pub data: &'a [u8],
}

fn octal(field: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    usize::from_str_radix(text, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Every regular file in an (uncompressed) tar archive held in memory.
pub fn entries<'a>(archive: &'a [u8], path: &Path) -> Result<Vec<Entry<'a>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= archive.len() {
        let header = &archive[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            return Ok(out); // end-of-archive marker
        }
        let stored = octal(&header[148..156])
            .ok_or_else(|| DataError::invalid(path, format!("corrupt tar header at byte {at}")))?;
        let computed: usize = header[..148]
            .iter()
            .chain([b' '; 8].iter())
            .chain(&header[156..])
            .map(|&b| b as usize)
            .sum();
        if stored != computed {
            return Err(DataError::invalid(
                path,
                format!("corrupt tar header at byte {at} (checksum {stored} ≠ {computed})"),
            ));
        }
        let size = octal(&header[124..136]).ok_or_else(|| {
            DataError::invalid(path, format!("corrupt tar size field at byte {at}"))
        })?;
        let body = at + 512;
        let end = body
            .checked_add(size)
            .filter(|&e| e <= archive.len())
            .ok_or_else(|| {
                DataError::invalid(
                    path,
                    format!("tar archive is truncated: an entry at byte {at} needs {size} bytes"),
                )
            })?;
        let typeflag = header[156];
        if typeflag == b'0' || typeflag == 0 {
            let mut name = cstr(&header[..100]);
            if &header[257..262] == b"ustar" {
                let prefix = cstr(&header[345..500]);
                if !prefix.is_empty() {
                    name = format!("{prefix}/{name}");
                }
            }
            out.push(Entry {
                name,
                data: &archive[body..end],
            });
        }
        at = body + size.div_ceil(512) * 512;
    }
    if out.is_empty() {
        return Err(DataError::invalid(
            path,
            "not a tar archive, or an empty one",
        ));
    }
    // No end marker: tolerated only when the last entry ended exactly at the end of the data.
    if at != archive.len() {
        return Err(DataError::invalid(path, "tar archive is truncated"));
    }
    Ok(out)
}

/// Builds a ustar archive in memory (for tests and fixtures).
pub fn build(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        header[108..115].copy_from_slice(b"0000000");
        header[116..123].copy_from_slice(b"0000000");
        header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        header[136..147].copy_from_slice(b"00000000000");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: usize = header.iter().map(|&b| b as usize).sum();
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}
