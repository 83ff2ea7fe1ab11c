//! Every data error names the file (or URL) and the problem.

use std::path::{Path, PathBuf};

/// What went wrong while finding, downloading or reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file exists but its content is not what it should be.
    #[error("{}: {problem}", path.display())]
    Invalid {
        /// The offending file or folder.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The operating system refused a read or write.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A download failed; nothing was left in the cache.
    #[error("download of {url} failed: {problem}")]
    Download {
        /// The URL tried.
        url: String,
        /// Why it failed.
        problem: String,
    },
    /// The dataset is nowhere to be found and could not be downloaded.
    #[error("{0}")]
    NotFound(String),
}

impl DataError {
    /// An `Invalid` error for `path`.
    pub fn invalid(path: &Path, problem: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// An `Io` error for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result of data operations.
pub type Result<T> = std::result::Result<T, DataError>;
