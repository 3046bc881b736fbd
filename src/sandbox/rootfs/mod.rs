//! The root filesystem of a RUN step: the overlay, the mounts of [`mount::plan`], device nodes,
//! `pivot_root`, masked and read-only paths, and the removal of the mount points we had to
//! create (so they do not end up in the committed layer).
//!
//! Every path inside the image is resolved with pathrs (`RESOLVE_IN_ROOT`) and mounted onto
//! through `/proc/self/fd/N`, so a symlink in the image can never redirect a mount or a
//! mount-point creation to the host. Everything runs in the helper's private mount namespace.

pub mod device;
pub mod mount;

use mount::{Kind, Mount};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount as sys_mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, futimens, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{chdir, fchdir, pivot_root};
use pathrs::flags::OpenFlags;
use pathrs::{Handle, InodeType, Root};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// A setup failure, with the step it happened in.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct RootfsError {
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

fn err(what: impl Into<String>, e: impl Into<std::io::Error>) -> RootfsError {
    RootfsError {
        what: what.into(),
        source: e.into(),
    }
}

fn perr(what: impl Into<String>, e: pathrs::error::Error) -> RootfsError {
    RootfsError {
        what: what.into(),
        source: std::io::Error::other(e.to_string()),
    }
}

type Result<T> = std::result::Result<T, RootfsError>;

/// A path we created in the image to mount onto; removed again after the step.
#[derive(Debug, Clone)]
pub struct Created {
    pub path: String,
    pub kind: Kind,
    /// atime/mtime of the parent before we created the entry.
    parent_times: Option<(TimeSpec, TimeSpec)>,
}

/// Stop mount events propagating from our namespace to the host (and back).
pub fn make_private() -> Result<()> {
    sys_mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| err("make mounts private", e))
}

/// Mount the overlay of `lowers` (top-most first) + `upper` at `<bundle>/rootfs`, `nodev`
/// (no device cgroup guards device nodes the command could create).
pub fn mount_overlay(
    bundle: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<PathBuf> {
    let links = bundle.join("ovl");
    let rootfs = bundle.join("rootfs");
    for d in [&links, &rootfs] {
        std::fs::create_dir_all(d).map_err(|e| err(format!("create {}", d.display()), e))?;
    }
    let link = |name: &str, target: &Path| {
        let p = links.join(name);
        let _ = std::fs::remove_file(&p);
        symlink(target, &p).map_err(|e| err(format!("symlink {}", p.display()), e))
    };
    if lowers.is_empty() {
        // FROM scratch: overlay needs a lower dir; an empty one.
        let empty = bundle.join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| err("create empty lower dir", e))?;
        link("l0", &empty)?;
    }
    for (i, l) in lowers.iter().enumerate() {
        link(&format!("l{i}"), l)?;
    }
    link("u", upper)?;
    link("w", work)?;
    chdir(&links).map_err(|e| err("chdir to overlay links", e))?;
    let n = lowers.len().max(1);
    let mut res = sys_mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::MS_NODEV,
        Some(mount::overlay_data(n, true).as_str()),
    );
    if res == Err(nix::errno::Errno::EINVAL) {
        // Kernels before 4.19 do not know all of index/redirect_dir/metacopy.
        res = sys_mount(
            Some("overlay"),
            &rootfs,
            Some("overlay"),
            MsFlags::MS_NODEV,
            Some(mount::overlay_data(n, false).as_str()),
        );
    }
    let _ = chdir("/");
    res.map_err(|e| err("mount overlay rootfs", e))?;
    Ok(rootfs)
}

fn is_missing(root: &Root, path: &str) -> bool {
    root.resolve(path).is_err()
}

fn parent_times(root: &Root, path: &str) -> Option<(TimeSpec, TimeSpec)> {
    let parent = Path::new(path).parent()?;
    let h = root.resolve(parent).ok()?;
    let f = h
        .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
        .ok()?;
    let st = fstat(&f).ok()?;
    Some((
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    ))
}

/// Make sure `path` exists inside `root` as `kind`, creating missing parents (as directories)
/// and recording everything created. A dangling symlink is followed and its target created.
pub fn ensure(root: &Root, path: &str, kind: Kind, created: &mut Vec<Created>) -> Result<()> {
    ensure_depth(root, path, kind, created, 0)
}

fn ensure_depth(
    root: &Root,
    path: &str,
    kind: Kind,
    created: &mut Vec<Created>,
    depth: u32,
) -> Result<()> {
    if depth > 8 {
        return Err(err(
            format!("create mount point {path}"),
            std::io::Error::from_raw_os_error(libc::ELOOP),
        ));
    }
    if !is_missing(root, path) {
        return Ok(());
    }
    // A dangling symlink: create what it points to.
    if root.resolve_nofollow(path).is_ok() {
        let target = root
            .readlink(path)
            .map_err(|e| perr(format!("readlink {path}"), e))?;
        let abs = if target.is_absolute() {
            target
        } else {
            Path::new(path)
                .parent()
                .unwrap_or(Path::new("/"))
                .join(target)
        };
        let abs = abs.to_string_lossy().into_owned();
        return ensure_depth(root, &abs, kind, created, depth + 1);
    }
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut cur = String::new();
    for (i, c) in comps.iter().enumerate() {
        cur.push('/');
        cur.push_str(c);
        let last = i + 1 == comps.len();
        if !is_missing(root, &cur) {
            continue;
        }
        if !last && root.resolve_nofollow(&cur).is_ok() {
            // A dangling symlink in the middle: follow it.
            let rest = comps[i + 1..].join("/");
            let target = root
                .readlink(&cur)
                .map_err(|e| perr(format!("readlink {cur}"), e))?;
            let base = if target.is_absolute() {
                target
            } else {
                Path::new(&cur)
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .join(target)
            };
            let next = base.join(rest).to_string_lossy().into_owned();
            return ensure_depth(root, &next, kind, created, depth + 1);
        }
        let times = parent_times(root, &cur);
        let ty = if last && kind == Kind::File {
            InodeType::File(std::fs::Permissions::from_mode(0o644))
        } else {
            InodeType::Directory(std::fs::Permissions::from_mode(0o755))
        };
        root.create(&cur, &ty)
            .map_err(|e| perr(format!("create mount point {cur}"), e))?;
        created.push(Created {
            path: cur.clone(),
            kind: if last { kind } else { Kind::Dir },
            parent_times: times,
        });
    }
    Ok(())
}

fn fd_path(h: &Handle) -> String {
    format!("/proc/self/fd/{}", h.as_fd().as_raw_fd())
}

fn resolve(root: &Root, path: &str) -> Result<Handle> {
    root.resolve(path)
        .map_err(|e| perr(format!("resolve {path} in rootfs"), e))
}

/// Perform one mount of the plan inside `root` (mount point already ensured).
pub fn mount_one(root: &Root, m: &Mount) -> Result<()> {
    let (flags, data) = mount::parse_options(&m.options);
    let target = resolve(root, m.destination)?;
    let tpath = fd_path(&target);
    let what = format!("mount {} on {}", m.fstype, m.destination);
    if m.is_bind() {
        sys_mount(
            Some(&m.source),
            tpath.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | (flags & MsFlags::MS_REC),
            None::<&str>,
        )
        .map_err(|e| err(what.clone(), e))?;
        // Re-resolve: the handle above points at the covered inode, not the new mount.
        let top = resolve(root, m.destination)?;
        let remount = (flags - MsFlags::MS_REC) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
        sys_mount(
            None::<&str>,
            fd_path(&top).as_str(),
            None::<&str>,
            remount,
            None::<&str>,
        )
        .map_err(|e| err(format!("remount {} read-only", m.destination), e))?;
    } else {
        sys_mount(
            Some(&m.source),
            tpath.as_str(),
            Some(m.fstype),
            flags,
            if data.is_empty() {
                None
            } else {
                Some(data.as_str())
            },
        )
        .map_err(|e| err(what, e))?;
    }
    Ok(())
}

/// Ensure mount points and perform the whole plan before `pivot_root`.
pub fn mount_all(root: &Root, plan: &[Mount], created: &mut Vec<Created>) -> Result<()> {
    for (i, m) in plan.iter().enumerate() {
        if mount::under_earlier(plan, i) {
            // On a tmpfs we mounted: not part of the image.
            let mut scratch = Vec::new();
            ensure(root, m.destination, m.kind, &mut scratch)?;
        } else {
            ensure(root, m.destination, m.kind, created)?;
        }
        mount_one(root, m)?;
        if m.destination == "/dev" {
            device::populate(root)?;
        }
    }
    Ok(())
}

/// `pivot_root` into `rootfs` and detach the old root (the pivot_root(".", ".") technique of
/// pivot_root(2) and runc: no put_old directory is created in the image).
pub fn pivot(rootfs: &Path) -> Result<()> {
    let old = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open old root", e))?;
    let new = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open new root", e))?;
    fchdir(&new).map_err(|e| err("chdir to rootfs", e))?;
    pivot_root(".", ".").map_err(|e| err("pivot_root", e))?;
    fchdir(&old).map_err(|e| err("chdir to old root", e))?;
    sys_mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| err("make old root slave", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| err("detach old root", e))?;
    chdir("/").map_err(|e| err("chdir /", e))?;
    Ok(())
}

/// After `pivot_root`: hide the masked paths and make the read-only ones read-only.
pub fn protect_proc() -> Result<()> {
    for p in mount::MASKED_PATHS {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            continue;
        };
        let res = if meta.is_dir() {
            sys_mount(
                Some("tmpfs"),
                *p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0k,mode=755"),
            )
        } else {
            sys_mount(
                Some("/dev/null"),
                *p,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        res.map_err(|e| err(format!("mask {p}"), e))?;
    }
    for p in mount::READONLY_PATHS {
        if std::fs::symlink_metadata(p).is_err() {
            continue;
        }
        sys_mount(
            Some(*p),
            *p,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| err(format!("bind {p}"), e))?;
        sys_mount(
            None::<&str>,
            *p,
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| err(format!("remount {p} read-only"), e))?;
    }
    Ok(())
}

/// Remove the mount points we created (newest first) and restore their parents' times, so
/// the step's upper dir holds only what the command changed. Best effort: a mount point the
/// command filled (a directory it wrote into) stays.
///
/// `root` is `None` in the built-in sandbox, after pivot_root: `/` is the rootfs, paths are
/// used as they are and each mount point is unmounted first (pathrs is not used there: it
/// needs a `/proc`, which may be one of the mount points going away). With `Some(root)` (the
/// OCI runtime mode, nothing mounted in our namespace) paths are resolved inside `root`.
pub fn remove_created(root: Option<&Root>, created: &[Created]) {
    for c in created.iter().rev() {
        let removed = match root {
            None => {
                let _ = umount2(c.path.as_str(), MntFlags::MNT_DETACH);
                match c.kind {
                    Kind::File => std::fs::remove_file(&c.path).is_ok(),
                    Kind::Dir => std::fs::remove_dir(&c.path).is_ok(),
                }
            }
            Some(root) => match c.kind {
                Kind::File => root.remove_file(&c.path).is_ok(),
                Kind::Dir => root.remove_dir(&c.path).is_ok(),
            },
        };
        if !removed {
            continue;
        }
        let (Some(parent), Some((atime, mtime))) = (Path::new(&c.path).parent(), c.parent_times)
        else {
            continue;
        };
        let dir = match root {
            None => std::fs::File::open(parent).ok(),
            Some(root) => root
                .resolve(parent)
                .ok()
                .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY).ok()),
        };
        if let Some(f) = dir {
            let _ = futimens(&f, &atime, &mtime);
        }
    }
}
