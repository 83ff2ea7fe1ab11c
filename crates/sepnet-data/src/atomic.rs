//! The one way sepnet writes a file: into a temporary file in the destination's folder,
//! flushed to disk, then renamed over the destination. A reader, a crash or a full disk sees
//! either the old file or the whole new one, never a part.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes `path` atomically with `write`, which fills the temporary file. When `write` or any
/// step after it fails, the temporary file is removed and `path` is left as it was.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("numbers.txt");
/// sepnet_data::atomic::write_with(&path, |file| {
///     use std::io::Write;
///     writeln!(file, "1 2 3")
/// })
/// .unwrap();
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "1 2 3\n");
/// ```
pub fn write_with<T, E>(path: &Path, write: impl FnOnce(&mut File) -> Result<T, E>) -> Result<T, E>
where
    E: From<std::io::Error>,
{
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    // A temporary file is private (0600) by default; the file it becomes is an ordinary one,
    // readable as the user's umask allows, like any other file they write.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    let value = write(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable once the folder's entry is: best effort, as not every file
    // system lets a folder be opened for syncing.
    if let Ok(folder) = File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(value)
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write(&path, b"old").unwrap();
        let failed: Result<(), std::io::Error> = write_with(&path, |file| {
            file.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file was removed");
    }

    #[cfg(unix)]
    #[test]
    fn written_files_get_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let (atomic, plain) = (dir.path().join("a.json"), dir.path().join("b.json"));
        write(&atomic, b"{}").unwrap();
        std::fs::write(&plain, b"{}").unwrap();
        assert_eq!(
            mode(&atomic),
            mode(&plain),
            "as std::fs::write (the umask applies)"
        );
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(&dir.path().join("no/such/folder/a.json"), b"x").is_err());
    }
}
