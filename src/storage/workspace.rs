//! Scratch directories under `<dataroot>/tmp/`, each owned by one live process.
//!
//! A work dir `tmp/<name>/` exists only while its owner holds the exclusive lock
//! `tmp/<name>.lock` (taken *before* the dir is made). Anything whose lock is free belongs to a
//! dead process and is removed by [`clean_tmp`]; so are `trash-*` dirs left by a collector that
//! died before deleting them.

use crate::digest::Digest;
use crate::lock::{self, LockGuard, Mode};
use crate::storage::fsutil::random_hex;
use crate::storage::StoreError;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A scratch directory on the store's filesystem, removed on drop.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    _lock: Option<LockGuard>,
}

impl WorkDir {
    /// Create `tmp_root/<purpose>-<random>/` with its lock held.
    pub fn create(tmp_root: &Path, purpose: &str) -> Result<WorkDir, StoreError> {
        let name = format!("{purpose}-{}", random_hex(8));
        let lock_path = tmp_root.join(format!("{name}.lock"));
        let guard = lock::lock_owned(&lock_path)?;
        let path = tmp_root.join(&name);
        std::fs::create_dir(&path).map_err(|e| StoreError::io(&path, e))?;
        Ok(WorkDir {
            path,
            _lock: Some(guard),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write a blob into the work dir, synced; returns its path and digest.
    pub fn stage_blob(&self, bytes: &[u8]) -> Result<(PathBuf, Digest), StoreError> {
        let d = Digest::of(bytes);
        let p = self.child(&format!("blob-{}", d.hex()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| StoreError::io(&p, e))?;
        f.write_all(bytes).map_err(|e| StoreError::io(&p, e))?;
        f.sync_all().map_err(|e| StoreError::io(&p, e))?;
        Ok((p, d))
    }

    /// A fresh path inside the work dir (not created).
    pub fn child(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some(g) = self._lock.take() {
            let _ = std::fs::remove_file(g.path());
            drop(g);
        }
    }
}

/// Remove scratch dirs of dead processes and leftover trash. Errors are ignored: another
/// process may be cleaning the same entries.
pub fn clean_tmp(tmp_root: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".lock") {
            if let Ok(Some(guard)) = lock::try_lock(&entry.path(), Mode::Exclusive) {
                let _ = std::fs::remove_dir_all(tmp_root.join(stem));
                let _ = std::fs::remove_file(guard.path());
            }
        } else if name.starts_with("trash-") {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if entry.file_type().is_ok_and(|t| t.is_dir())
            && !tmp_root.join(format!("{name}.lock")).exists()
        {
            // A work dir whose lock file is gone: its owner and its cleaner both died.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_workdirs_survive_cleaning_and_dead_ones_do_not() {
        let t = tempfile::tempdir().unwrap();
        let live = WorkDir::create(t.path(), "import").unwrap();
        std::fs::write(live.child("x"), b"x").unwrap();
        // A dead process's leftovers: dir + unlocked lock file, and trash.
        std::fs::create_dir(t.path().join("dead-1")).unwrap();
        std::fs::write(t.path().join("dead-1.lock"), b"").unwrap();
        std::fs::create_dir(t.path().join("trash-abc")).unwrap();
        clean_tmp(t.path());
        assert!(live.child("x").exists());
        assert!(!t.path().join("dead-1").exists());
        assert!(!t.path().join("dead-1.lock").exists());
        assert!(!t.path().join("trash-abc").exists());
        let p = live.path().to_path_buf();
        drop(live);
        assert!(!p.exists());
    }
}
