//! Overlay mounts of layers, and the private mount namespace every mounting command runs in.
//!
//! A build calls [`enter_private_mount_namespace`] first thing (while single-threaded): every
//! mount it makes afterwards lives in a namespace that dies with the process, so even `kill -9`
//! leaves no mount behind on the host.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("create a private mount namespace: {0} (building needs root or CAP_SYS_ADMIN)")]
    Namespace(nix::Error),
    #[error("open layer dir {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mount overlay on {target}: {source}")]
    Mount { target: PathBuf, source: nix::Error },
    #[error("unmount {target}: {source}")]
    Unmount { target: PathBuf, source: nix::Error },
    #[error("too many layers for one overlay mount ({0}); the mount options exceed a page")]
    TooManyLayers(usize),
}

/// Move this process into a new mount namespace whose mounts do not propagate to the host.
/// Must be called before any thread is started (a mount namespace is per thread until then).
pub fn enter_private_mount_namespace() -> Result<(), OverlayError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(OverlayError::Namespace)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(OverlayError::Namespace)
}

/// A mounted overlay; unmounted on drop.
#[derive(Debug)]
pub struct OverlayMount {
    target: PathBuf,
    mounted: bool,
}

impl OverlayMount {
    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn unmount(mut self) -> Result<(), OverlayError> {
        self.mounted = false;
        umount2(&self.target, MntFlags::MNT_DETACH).map_err(|source| OverlayError::Unmount {
            target: self.target.clone(),
            source,
        })
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        }
    }
}

/// Mount an overlay at `target`: `lowers` top-most first, `upper`/`work` empty dirs on one
/// filesystem. With no lower layers (FROM scratch) an empty read-only dir stands in.
/// Lower dirs are passed as `/proc/self/fd/N` so that many layers fit in the option page.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<OverlayMount, OverlayError> {
    let mut fds: Vec<File> = Vec::with_capacity(lowers.len());
    let empty;
    let lowers: Vec<PathBuf> = if lowers.is_empty() {
        empty = work.with_extension("empty-lower");
        std::fs::create_dir_all(&empty).map_err(|source| OverlayError::Open {
            path: empty.clone(),
            source,
        })?;
        vec![empty.clone()]
    } else {
        lowers.to_vec()
    };
    for l in &lowers {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(l)
            .map_err(|source| OverlayError::Open {
                path: l.clone(),
                source,
            })?;
        fds.push(f);
    }
    let lowerdir = fds
        .iter()
        .map(|f| format!("/proc/self/fd/{}", f.as_raw_fd()))
        .collect::<Vec<_>>()
        .join(":");
    let opts = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    if opts.len() >= 4000 {
        return Err(OverlayError::TooManyLayers(lowers.len()));
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|source| OverlayError::Mount {
        target: target.to_path_buf(),
        source,
    })?;
    drop(fds);
    Ok(OverlayMount {
        target: target.to_path_buf(),
        mounted: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_writes_land_in_upper_with_whiteouts() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP overlay_writes_land_in_upper_with_whiteouts: needs root");
            return;
        }
        // Run in a child process so the test binary's own mount namespace stays untouched.
        let t = tempfile::tempdir().unwrap();
        let base = t.path();
        for d in ["l1", "l2", "upper", "work", "merged"] {
            std::fs::create_dir(base.join(d)).unwrap();
        }
        std::fs::write(base.join("l1/a"), b"from l1").unwrap();
        std::fs::write(base.join("l1/gone"), b"x").unwrap();
        std::fs::write(base.join("l2/a"), b"from l2").unwrap();
        // The mounting half runs as its own test process (see `child_mounts`).
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "storage::overlay::tests::child_mounts",
                "--nocapture",
            ])
            .env("ISULA_OVERLAY_TEST_BASE", base)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(base.join("upper/new")).unwrap(), b"new");
        use std::os::unix::fs::FileTypeExt;
        let wh = std::fs::symlink_metadata(base.join("upper/gone")).unwrap();
        assert!(
            wh.file_type().is_char_device(),
            "deletion is an overlay whiteout in upper"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(base.join("merged").to_str().unwrap()),
            "mount leaked to the host"
        );
    }

    #[test]
    fn child_mounts() {
        let Ok(base) = std::env::var("ISULA_OVERLAY_TEST_BASE") else {
            return; // only meaningful when started by the test above
        };
        let base = PathBuf::from(base);
        enter_private_mount_namespace().unwrap();
        let m = mount_overlay(
            &[base.join("l2"), base.join("l1")],
            &base.join("upper"),
            &base.join("work"),
            &base.join("merged"),
        )
        .unwrap();
        assert_eq!(std::fs::read(base.join("merged/a")).unwrap(), b"from l2");
        std::fs::write(base.join("merged/new"), b"new").unwrap();
        std::fs::remove_file(base.join("merged/gone")).unwrap();
        m.unmount().unwrap();
    }
}
