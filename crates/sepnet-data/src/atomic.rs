//! The one way sepnet writes a file: into a temporary file in the destination's folder,
//! flushed to disk, then renamed over the destination. A reader, a crash or a full disk sees
//! either the old file or the whole new one, never a part.
//!
//! Only a regular file (or nothing) is ever replaced: a destination that is a device, a FIFO,
//! a socket, a folder or a symbolic link is refused, so no path given by mistake (`--out
//! /dev/null` as root, a link into someone else's files) is destroyed. The temporary files of
//! writes in progress are known, so a process stopped by a signal can remove them
//! ([`remove_temporaries`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporary files of the writes now in progress.
static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn in_progress() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the temporary files of every write in progress (for a process about to exit on a
/// signal; the destinations are left as they were).
pub fn remove_temporaries() {
    remove_temporaries_where(|_| true);
}

/// Removes the temporary files of the writes in progress that `chosen` picks.
fn remove_temporaries_where(chosen: impl Fn(&Path) -> bool) {
    in_progress().retain(|path| {
        if chosen(path) {
            let _ = std::fs::remove_file(path);
        }
        !chosen(path)
    });
}

/// Refuses a destination sepnet must not replace: anything but a regular file or nothing.
///
/// ```
/// assert!(sepnet_data::atomic::check_replaceable("/dev/null".as_ref()).is_err());
/// let dir = tempfile::tempdir().unwrap();
/// assert!(sepnet_data::atomic::check_replaceable(&dir.path().join("new.json")).is_ok());
/// ```
pub fn check_replaceable(path: &Path) -> std::io::Result<()> {
    let kind = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(meta) => meta.file_type(),
    };
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a folder"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file (a device, FIFO or socket)"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "{} is {what}; sepnet only writes regular files, and never replaces anything else",
            path.display()
        ),
    ))
}

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
    check_replaceable(path)?;
    let tmp = builder.tempfile_in(dir)?;
    let tmp_path = tmp.path().to_path_buf();
    in_progress().push(tmp_path.clone());
    let result = fill_and_rename(tmp, path, write);
    in_progress().retain(|p| *p != tmp_path);
    let value = result?;
    // The rename is durable once the folder's entry is: best effort, as not every file
    // system lets a folder be opened for syncing.
    if let Ok(folder) = File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(value)
}

fn fill_and_rename<T, E>(
    mut tmp: tempfile::NamedTempFile,
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<std::io::Error>,
{
    let value = write(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    // Checked again just before the rename: the destination may have changed meanwhile.
    check_replaceable(path)?;
    tmp.persist(path).map_err(|e| e.error)?;
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

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        std::fs::write(&target, b"theirs").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        for (path, what) in [
            (&link, "symbolic link"),
            (&fifo, "not a regular file"),
            (&dir.path().to_path_buf(), "a folder"),
            (&PathBuf::from("/dev/null"), "not a regular file"),
        ] {
            let err = write(path, b"x").unwrap_err().to_string();
            assert!(err.contains(what), "{}: {err}", path.display());
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"theirs");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let names = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names, 3, "no temporary file left");
    }

    #[test]
    fn temporaries_of_writes_in_progress_can_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let mut listed = Vec::new();
        // Other tests write at the same time: only this folder's temporaries are looked at.
        let here = |p: &Path| p.starts_with(dir.path());
        let result = write_with(&path, |file| {
            file.write_all(b"partial")?;
            listed = in_progress().iter().filter(|p| here(p)).cloned().collect();
            remove_temporaries_where(here);
            Ok::<_, std::io::Error>(())
        });
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(
            result.is_err(),
            "the removed temporary cannot be renamed into place"
        );
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(&dir.path().join("no/such/folder/a.json"), b"x").is_err());
    }
}
