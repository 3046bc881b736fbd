//! Small filesystem helpers for crash-safe writes.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// fsync a directory so renames inside it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write `bytes` to `tmp` (created new, 0600), fsync it, rename it to `dest`, fsync the
/// destination directory. `tmp` must be on the same filesystem as `dest`.
pub fn write_atomic(tmp: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(tmp, dest)?;
    if let Some(parent) = dest.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Flush the whole filesystem holding `path` (one call instead of an fsync per file of an
/// unpacked layer).
pub fn syncfs(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    nix::unistd::syncfs(&f).map_err(io::Error::from)
}

/// Start writing `len` bytes of `f` at `offset` to disk without waiting, and let the page
/// cache drop them once written (`POSIX_FADV_DONTNEED`, which Linux implements as writeback
/// of the range's dirty pages, then dropping its clean ones). A later `fsync` of the file
/// then has little left to wait for, and, unlike a `syncfs`, nothing of other files. Best
/// effort: errors are ignored.
pub fn start_writeback(f: &File, offset: u64, len: u64) {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    let _ = posix_fadvise(f, offset, len, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
}

/// Starts writeback early: a thread that `syncfs`es a work dir whenever it is kicked, while
/// the caller goes on producing data, so that the final `syncfs` before publishing (which
/// the caller still makes: this is only a head start, its errors are ignored) finds most
/// data already on disk. Kicks while a sync runs coalesce into one more. Dropping it does
/// not wait for a sync in progress (the caller's own `syncfs` covers everything anyway).
#[derive(Debug)]
pub struct Flusher {
    tx: std::sync::mpsc::SyncSender<()>,
}

impl Flusher {
    pub fn start(path: &Path) -> Flusher {
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            for () in rx {
                if let Err(e) = syncfs(&path) {
                    tracing::debug!("early writeback of {}: {e}", path.display());
                }
            }
        });
        Flusher { tx }
    }

    /// Ask for a sync; never blocks.
    pub fn kick(&self) {
        let _ = self.tx.try_send(());
    }
}

/// Name of the filesystem type holding `path`, as `info` shows it.
pub fn backing_fs(path: &Path) -> String {
    use nix::sys::statfs::statfs;
    let Ok(st) = statfs(path) else {
        return "unknown".into();
    };
    let magic = st.filesystem_type().0 as u64;
    match magic {
        0xef53 => "extfs",
        0x58465342 => "xfs",
        0x9123683e => "btrfs",
        0x01021994 => "tmpfs",
        0x794c7630 => "overlayfs",
        0x2fc12fc1 => "zfs",
        0x6969 => "nfs",
        0xf2f52010 => "f2fs",
        0x65735546 => "fuse",
        _ => return format!("0x{magic:x}"),
    }
    .to_string()
}

/// A random lowercase-hex name of `n` bytes of entropy.
pub fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flusher_kicks_never_block_and_drop_does_not_wait() {
        let t = tempfile::tempdir().unwrap();
        let f = Flusher::start(t.path());
        for _ in 0..100 {
            f.kick();
        }
        drop(f);
        syncfs(t.path()).unwrap();
    }
}
