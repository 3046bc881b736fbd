//! Every file lock the project takes, in one place.
//!
//! All locks are advisory `flock(2)` locks (through std's `File::lock*`): they belong to an
//! open file description and vanish when the process dies, so `kill -9` never leaves a
//! stale lock behind.
//!
//! # The locks
//!
//! | lock | file | mode | held for |
//! | --- | --- | --- | --- |
//! | work-dir lock | `<dataroot>/tmp/<name>.lock` | exclusive | the whole life of one operation's scratch dir `tmp/<name>/` |
//! | store lock | `<dataroot>/store.lock` | shared to resolve names and take leases; exclusive to publish or delete | milliseconds: never during long work |
//! | layer lease | `<dataroot>/leases/<chain-id>.lock` | shared by users of a layer | as long as a layer is in use (a build's base) |
//! | build marker | `<runroot>/builds/<id>.lock` | exclusive | one running build (counted by `info`) |
//! | server lock | `<runroot>/isula-builder.lock` | exclusive, tried once | the life of an `isula-builder` server (one per node) |
//!
//! # Lock order
//!
//! Blocking acquisitions always follow this order, so no two processes can wait on each other:
//!
//! 1. work-dir lock (taken first, when the operation starts);
//! 2. store lock (shared or exclusive);
//! 3. layer leases (shared, taken while the store lock is held, then kept after it is released).
//!
//! The server lock is outside this order: it is only ever *tried*, once, before the server
//! touches anything else.
//!
//! Garbage collection holds the store lock exclusively and only *tries* (non-blocking) the
//! exclusive form of a layer lease or a work-dir lock: a lease it cannot get means the layer is
//! in use and is kept; a work-dir lock it cannot get means the scratch dir is alive.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Errors from taking locks.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("open lock file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
}

/// Whether a lock is shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// A held lock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
    mode: Mode,
}

impl LockGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Closing the file releases the flock; an explicit unlock only makes it prompt.
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File, LockError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// Take a lock on `path` (created if missing), waiting for it.
pub fn lock(path: &Path, mode: Mode) -> Result<LockGuard, LockError> {
    let file = open_lock_file(path)?;
    let res = match mode {
        Mode::Shared => file.lock_shared(),
        Mode::Exclusive => file.lock(),
    };
    res.map_err(|source| LockError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(LockGuard {
        file,
        path: path.to_path_buf(),
        mode,
    })
}

/// Try to take a lock without waiting; `Ok(None)` when someone else holds it.
pub fn try_lock(path: &Path, mode: Mode) -> Result<Option<LockGuard>, LockError> {
    let file = open_lock_file(path)?;
    let res = match mode {
        Mode::Shared => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    };
    match res {
        Ok(()) => Ok(Some(LockGuard {
            file,
            path: path.to_path_buf(),
            mode,
        })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(source)) => Err(LockError::Lock {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Take an exclusive lock on a file that a cleaner may unlink concurrently: after locking,
/// check that the path still names the locked inode, and retry if the file was replaced.
/// Used for work-dir locks, which the garbage collector removes once it holds them.
pub fn lock_owned(path: &Path) -> Result<LockGuard, LockError> {
    loop {
        let guard = lock(path, Mode::Exclusive)?;
        let held = guard.file.metadata().map_err(|source| LockError::Lock {
            path: path.to_path_buf(),
            source,
        })?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(guard),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(LockError::Lock {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// The store lock of a data root.
pub fn store_lock_path(dataroot: &Path) -> PathBuf {
    dataroot.join("store.lock")
}

/// The lease lock of one layer.
pub fn lease_lock_path(dataroot: &Path, chain_hex: &str) -> PathBuf {
    dataroot.join("leases").join(format!("{chain_hex}.lock"))
}

/// The marker lock of one running build.
pub fn build_marker_path(runroot: &Path, build_id: &str) -> PathBuf {
    runroot.join("builds").join(format!("{build_id}.lock"))
}

/// The lock that makes an `isula-builder` server the only one using a run root
/// (upstream's file name).
pub fn server_lock_path(runroot: &Path) -> PathBuf {
    runroot.join("isula-builder.lock")
}

/// Count builds running now: marker locks under `<runroot>/builds` that someone holds.
/// Markers left by dead builds are removed on the way.
pub fn count_running_builds(runroot: &Path) -> usize {
    let dir = runroot.join("builds");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut running = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("lock") {
            continue;
        }
        match try_lock(&path, Mode::Exclusive) {
            Ok(Some(guard)) => {
                let _ = std::fs::remove_file(guard.path());
            }
            Ok(None) => running += 1,
            Err(_) => {}
        }
    }
    running
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let a = lock(&p, Mode::Shared).unwrap();
        let b = try_lock(&p, Mode::Shared).unwrap();
        assert!(b.is_some(), "two shared locks must coexist");
        assert!(try_lock(&p, Mode::Exclusive).unwrap().is_none());
        drop(a);
        drop(b);
        let c = try_lock(&p, Mode::Exclusive).unwrap();
        assert!(c.is_some());
        assert!(try_lock(&p, Mode::Shared).unwrap().is_none());
    }

    #[test]
    fn lock_owned_survives_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.lock");
        let g = lock_owned(&p).unwrap();
        assert!(try_lock(&p, Mode::Exclusive).unwrap().is_none());
        drop(g);
    }

    #[test]
    fn build_markers_count_only_live_holders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("builds")).unwrap();
        let live = lock(&build_marker_path(dir.path(), "a"), Mode::Exclusive).unwrap();
        std::fs::write(build_marker_path(dir.path(), "dead"), b"").unwrap();
        assert_eq!(count_running_builds(dir.path()), 1);
        assert!(!build_marker_path(dir.path(), "dead").exists());
        drop(live);
        assert_eq!(count_running_builds(dir.path()), 0);
    }
}
