//! The download cache of pulls: `<dataroot>/registry/downloads/`, so that a pull that was
//! interrupted (killed, network lost, timed out) does not fetch again what it already had.
//!
//! - `<hex>.part`: the first bytes of blob `sha256:<hex>` as they came from a registry,
//!   written through while the layer streams. Held with an exclusive `flock` by the one
//!   process appending to it; another process pulling the same blob at the same time
//!   downloads it without the cache. A retry continues it with `Range: bytes=N-`. Once
//!   complete it is the layer's blob: the pull stages it by a hard link, so a pulled blob is
//!   written once.
//! - `<hex>`: a complete blob whose digest was verified (a hard link to the blob staged in
//!   the pull's work dir, so it costs no extra disk writes), kept until the pull that made
//!   it is published; a retry after a kill reads it instead of the network.
//!
//! Nothing here is trusted: every byte is hashed again with the rest of the blob when the
//! layer is staged, and an entry that does not verify is deleted. Entries of a pull are
//! removed once its image is in the store; anything not touched for [`MAX_AGE`] (abandoned
//! pulls) is removed by the next pull. The store's sweeper does not look here: nothing in
//! it is referenced by the store.

use crate::digest::Digest;
use crate::storage::fsutil::random_hex;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where the cache lives, relative to the data root.
pub const DIR: &str = "registry/downloads";
/// Entries untouched for this long are garbage.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The download cache of one store.
#[derive(Debug)]
pub struct Downloads {
    dir: PathBuf,
}

/// What the cache has for a blob.
#[derive(Debug)]
pub enum Start {
    /// A complete, earlier verified download (verified again while it is read), and its
    /// path.
    Complete(File, PathBuf),
    /// A partial download (maybe empty) that this process now appends to.
    Partial(Part),
    /// Not cached: another process is downloading it, or the cache is unusable.
    Uncached,
}

/// A partial download held (locked) by this process.
#[derive(Debug)]
pub struct Part {
    path: PathBuf,
    file: File,
    have: u64,
}

impl Part {
    /// Bytes already downloaded.
    pub fn have(&self) -> u64 {
        self.have
    }

    /// The file to append to (positioned at its end).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader of the bytes already downloaded.
    pub fn prefix(&self) -> io::Result<io::Take<File>> {
        use io::Read as _;
        Ok(File::open(&self.path)?.take(self.have))
    }

    /// Delete the partial download.
    pub fn discard(self) {
        // Still locked by us: the path names our file.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Digest and size of the file at `path`.
pub fn file_digest(path: &Path) -> io::Result<(Digest, u64)> {
    let mut r = crate::digest::HashingReader::new(File::open(path)?);
    io::copy(&mut r, &mut io::sink())?;
    let (d, n, _) = r.finish();
    Ok((d, n))
}

fn open_locked(path: &Path) -> io::Result<Option<File>> {
    for _ in 0..3 {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        // A cleaner may have unlinked the file between our open and our lock.
        let held = file.metadata()?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(Some(file)),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn stale(md: &std::fs::Metadata, now: SystemTime, max_age: Duration) -> bool {
    md.modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age > max_age)
}

impl Downloads {
    /// The cache of the store at `dataroot`, created if missing; `None` when it cannot be
    /// (the pull then works without it).
    pub fn open(dataroot: &Path) -> Option<Downloads> {
        let dir = dataroot.join(DIR);
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
        {
            Ok(()) => Some(Downloads { dir }),
            Err(e) => {
                tracing::debug!("download cache {}: {e}", dir.display());
                None
            }
        }
    }

    fn complete_path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }
    fn part_path(&self, d: &Digest) -> PathBuf {
        self.dir.join(format!("{}.part", d.hex()))
    }

    /// What the cache has for blob `d` of `size` bytes; with `fresh`, forget it first.
    pub fn begin(&self, d: &Digest, size: u64, fresh: bool) -> Start {
        let done = self.complete_path(d);
        match std::fs::symlink_metadata(&done) {
            Ok(md) if !fresh && md.is_file() && md.len() == size => {
                if let Ok(f) = File::open(&done) {
                    return Start::Complete(f, done);
                }
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&done);
            }
            Err(_) => {}
        }
        let part = self.part_path(d);
        let file = match open_locked(&part) {
            Ok(Some(f)) => f,
            Ok(None) => return Start::Uncached,
            Err(e) => {
                tracing::debug!("download cache {}: {e}", part.display());
                return Start::Uncached;
            }
        };
        let have = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        let p = Part {
            path: part,
            file,
            have,
        };
        if fresh || have > size {
            return self.restart(p);
        }
        Start::Partial(p)
    }

    /// Drop the bytes of `p` and start it again empty.
    pub fn restart(&self, p: Part) -> Start {
        let path = p.path.clone();
        p.discard();
        match open_locked(&path) {
            Ok(Some(file)) => Start::Partial(Part {
                path,
                file,
                have: 0,
            }),
            _ => Start::Uncached,
        }
    }

    /// Blob `d` was downloaded and verified: keep it as a complete entry, preferably as a
    /// hard link to `staged` (the verified copy in the pull's work dir), else by renaming
    /// the partial file when it holds the whole blob.
    pub fn complete(&self, d: &Digest, staged: &Path, part: Option<Part>, size: u64) {
        let done = self.complete_path(d);
        let tmp = self.dir.join(format!(".tmp-{}", random_hex(8)));
        let linked = std::fs::hard_link(staged, &tmp).is_ok() && {
            let renamed = std::fs::rename(&tmp, &done).is_ok();
            // When `done` already is this file (the blob was staged from it), the rename
            // succeeds and does nothing: the temporary link is still there.
            let _ = std::fs::remove_file(&tmp);
            renamed
        };
        let Some(p) = part else { return };
        if linked {
            p.discard();
        } else if p.file.metadata().is_ok_and(|m| m.len() == size) {
            // Still locked by us; after the rename the complete entry is only read.
            let _ = std::fs::rename(&p.path, &done);
        } else {
            p.discard();
        }
    }

    /// Forget blob `d` (its image is in the store now). A partial download another process
    /// holds is left to it.
    pub fn forget(&self, d: &Digest) {
        let _ = std::fs::remove_file(self.complete_path(d));
        let part = self.part_path(d);
        if !part.exists() {
            return;
        }
        if let Ok(Some(_f)) = open_locked(&part) {
            let _ = std::fs::remove_file(&part);
        }
    }

    /// Remove entries not touched for `max_age` (abandoned downloads). Partial downloads
    /// in use by another process are locked and kept.
    pub fn clean(&self, max_age: Duration) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let path = e.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !stale(&md, now, max_age) {
                continue;
            }
            let is_part = e.file_name().to_str().is_some_and(|n| n.ends_with(".part"));
            if md.is_file() && is_part {
                if let Ok(Some(f)) = open_locked(&path) {
                    // Touched while we waited? Then it is in use again.
                    if f.metadata().is_ok_and(|m| stale(&m, now, max_age)) {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            } else if md.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn partial_downloads_are_locked_kept_and_completed() {
        let t = tempfile::tempdir().unwrap();
        let dl = Downloads::open(t.path()).unwrap();
        let blob = b"hello blob".to_vec();
        let d = Digest::of(&blob);
        let Start::Partial(p) = dl.begin(&d, blob.len() as u64, false) else {
            panic!("expected a partial")
        };
        assert_eq!(p.have(), 0);
        p.file().write_all(&blob[..4]).unwrap();
        // Another taker while it is held gets no cache.
        assert!(matches!(
            dl.begin(&d, blob.len() as u64, false),
            Start::Uncached
        ));
        drop(p);
        let Start::Partial(p) = dl.begin(&d, blob.len() as u64, false) else {
            panic!("expected a partial")
        };
        assert_eq!(p.have(), 4);
        let mut pre = Vec::new();
        p.prefix().unwrap().read_to_end(&mut pre).unwrap();
        assert_eq!(pre, b"hell");
        p.file().write_all(&blob[4..]).unwrap();
        assert_eq!(
            file_digest(p.path()).unwrap(),
            (d.clone(), blob.len() as u64)
        );
        let staged = t.path().join("staged");
        std::fs::write(&staged, &blob).unwrap();
        dl.complete(&d, &staged, Some(p), blob.len() as u64);
        assert!(!dl.part_path(&d).exists());
        let Start::Complete(mut f, path) = dl.begin(&d, blob.len() as u64, false) else {
            panic!("expected a complete entry")
        };
        let mut all = Vec::new();
        f.read_to_end(&mut all).unwrap();
        assert_eq!(all, blob);
        assert_eq!(path, dl.complete_path(&d));
        // Fresh forgets it; forget removes everything.
        assert!(matches!(
            dl.begin(&d, blob.len() as u64, true),
            Start::Partial(_)
        ));
        dl.forget(&d);
        assert_eq!(std::fs::read_dir(&dl.dir).unwrap().count(), 0);
        assert!(staged.exists());
    }

    #[test]
    fn stale_entries_are_cleaned_and_fresh_or_held_ones_kept() {
        let t = tempfile::tempdir().unwrap();
        let dl = Downloads::open(t.path()).unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let Start::Partial(pa) = dl.begin(&a, 10, false) else {
            panic!()
        };
        pa.file().write_all(b"xy").unwrap();
        drop(pa);
        let Start::Partial(pb) = dl.begin(&b, 10, false) else {
            panic!()
        };
        dl.clean(MAX_AGE);
        assert!(dl.part_path(&a).exists(), "young entries are kept");
        dl.clean(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(10));
        dl.clean(Duration::ZERO);
        assert!(!dl.part_path(&a).exists(), "stale entries go");
        assert!(dl.part_path(&b).exists(), "held entries stay");
        drop(pb);
    }
}
