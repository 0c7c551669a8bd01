//! Who owns a state directory: one emulator at a time holds `STATE_DIR/lock` (an exclusive
//! advisory lock, released when the process ends however it ends), with its PID in the file so
//! the next one can say who has it. Two emulators on one directory would each make a CA, serve
//! keys the other overwrote, and take over each other's ready file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock on a state directory, held while this value lives.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another process holds it; its PID when the file says so.
    InUse { path: PathBuf, pid: Option<u32> },
    /// The lock file could not be opened or written.
    Io(std::io::Error),
}

impl StateLock {
    /// Takes the lock on `dir` (without waiting) and records this process's PID in it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LockError::Io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let pid = text.trim().parse().ok();
                return Err(LockError::InUse {
                    path: dir.to_path_buf(),
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        file.set_len(0).map_err(LockError::Io)?;
        file.rewind().map_err(LockError::Io)?;
        write!(file, "{}", std::process::id()).map_err(LockError::Io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        match StateLock::acquire(dir.path()) {
            Err(LockError::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        assert!(StateLock::acquire(dir.path()).is_ok(), "released on drop");
    }
}
