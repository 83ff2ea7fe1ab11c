//! Downloads into the cache: streamed to a temporary file beside the destination, checked
//! against its MD5, then renamed into place. A partial or corrupt download is deleted, so no
//! later run ever trusts it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};

use crate::error::{DataError, Result};

/// A file to fetch: its name in the cache, the mirrors that serve it, and its MD5.
#[derive(Clone, Debug)]
pub struct Remote {
    /// File name in the destination folder.
    pub file: String,
    /// Full URLs, tried in order.
    pub urls: Vec<String>,
    /// Lower-case hex MD5 of the file.
    pub md5: String,
}

/// Hex MD5 of a file on disk.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetches `remote` into `dir` (created if needed) unless a verified copy is already there.
/// Tries every mirror; on failure nothing is left behind. An existing file that is not the
/// expected one is never replaced: the error says so.
pub fn fetch(remote: &Remote, dir: &Path, show_progress: bool) -> Result<PathBuf> {
    let dest = dir.join(&remote.file);
    if dest.exists() {
        if dest.is_file() && md5_file(&dest)? == remote.md5 {
            return Ok(dest);
        }
        return Err(DataError::invalid(
            &dest,
            format!(
                "exists but is not the published file (MD5 {}); sepnet does not replace it",
                remote.md5
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let mut problems = Vec::new();
    for url in &remote.urls {
        match fetch_one(url, &dest, &remote.md5, show_progress) {
            Ok(()) => return Ok(dest),
            Err(problem) => problems.push(format!("{url}: {problem}")),
        }
    }
    Err(DataError::Download {
        url: remote.file.clone(),
        problem: problems.join("; "),
    })
}

fn fetch_one(
    url: &str,
    dest: &Path,
    md5: &str,
    show_progress: bool,
) -> std::result::Result<(), String> {
    // The download goes to a temporary file that becomes `dest` only once its checksum
    // matched: a failed or corrupt transfer leaves nothing a later run could trust.
    crate::atomic::write_with(dest, |file| {
        stream_to(url, file, md5, show_progress).map_err(Problem)
    })
    .map_err(|Problem(problem)| problem)
}

/// A download problem, or an I/O error of the temporary file, as text.
struct Problem(String);

impl From<std::io::Error> for Problem {
    fn from(e: std::io::Error) -> Self {
        Problem(format!("cannot write the download: {e}"))
    }
}

fn stream_to(
    url: &str,
    file: &mut std::fs::File,
    md5: &str,
    show_progress: bool,
) -> std::result::Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bar = if show_progress {
        ProgressBar::new(total.unwrap_or(0))
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    let mut reader = response.body_mut().as_reader();
    let mut hasher = Md5::new();
    let mut received = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("transfer broke off after {received} bytes ({e})"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("cannot write the download: {e}"))?;
        received += n as u64;
        bar.set_position(received);
    }
    bar.finish_and_clear();
    if let Some(total) = total
        && received != total
    {
        return Err(format!("truncated transfer: {received} of {total} bytes"));
    }
    let got = hex(&hasher.finalize());
    if got != md5 {
        return Err(format!("checksum mismatch: expected MD5 {md5}, got {got}"));
    }
    Ok(())
}
