//! Applying a layer tar stream to an empty directory in overlay "diff" format.
//!
//! Every path is resolved inside the destination (pathrs: openat2 `RESOLVE_IN_ROOT`, with a
//! safe fallback on older kernels), so entries can never write outside it: absolute paths and
//! `..` components are refused outright, and symlinks created by earlier entries are followed
//! only within the layer. Final components are always created with `O_NOFOLLOW`/`*at` calls on
//! the resolved parent directory.
//!
//! OCI whiteouts are translated to overlayfs form: `.wh.NAME` becomes a 0/0 character device
//! `NAME`, and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory.

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{
    fchmod, fstatat, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};
use pathrs::flags::OpenFlags;
use pathrs::{InodeType, Root};
use std::ffi::OsStr;
use std::fs::{File, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Prefix of an OCI whiteout file.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs xattr marking a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("invalid tar entry {path:?}: {reason}")]
    Entry { path: String, reason: String },
    #[error("read tar stream: {0}")]
    Stream(String),
    #[error("the input holds no tar entries: not a tar archive, or an empty one")]
    Empty,
    #[error("not a tar archive ({0})")]
    NotTar(String),
    #[error("write {path:?}: {source}")]
    Io { path: String, source: io::Error },
}

/// What an unpack accepts.
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// Accept character and block device entries (a rootfs import refuses them).
    pub allow_devices: bool,
    /// Translate OCI whiteouts to overlayfs whiteouts (layers of images); when false they are
    /// refused as entries a base rootfs cannot have.
    pub whiteouts: bool,
}

/// What an unpack wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    pub entries: u64,
    pub file_bytes: u64,
}

fn entry_err(path: &Path, reason: impl Into<String>) -> UnpackError {
    UnpackError::Entry {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Normalise a tar entry path: drop `.` and empty components; refuse absolute paths and `..`.
/// `Ok(None)` is the layer root itself.
pub fn clean_entry_path(raw: &[u8]) -> Result<Option<PathBuf>, String> {
    if raw.is_empty() {
        return Err("empty path".into());
    }
    if raw.contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    let p = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed".into())
            }
            Component::ParentDir => return Err("path contains '..'".into()),
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Chown that tolerates EPERM when we are not root (unit tests run unprivileged).
fn tolerate_eperm(r: nix::Result<()>) -> nix::Result<()> {
    match r {
        Err(Errno::EPERM) if !is_root() => Ok(()),
        other => other,
    }
}

/// What one tar entry asks for, after every check that needs no filesystem.
struct Checked {
    /// Entry path inside the root (prefix included).
    path: PathBuf,
    name: std::ffi::OsString,
    parent: PathBuf,
    kind: Kind,
    owner: (Option<Uid>, Option<Gid>),
    mode: u32,
    mtime: i64,
    xattrs: Xattrs,
}

enum Kind {
    /// Extension headers and the like: nothing to create.
    Skip,
    /// `.wh..wh..opq`: mark the parent directory opaque.
    Opaque,
    /// `.wh.NAME`: hide NAME of the layers below.
    Whiteout(std::ffi::OsString),
    Dir,
    File,
    Symlink(Vec<u8>),
    /// Target path inside the root.
    Hardlink(PathBuf),
    /// Fifo or device node: type, major, minor.
    Node(SFlag, u32, u32),
}

/// Check one entry as far as possible without touching a filesystem: its path, whiteout
/// name, numeric fields, link targets and type against `opts`. `Ok(None)` is the layer root
/// itself. Shared by unpacking and by [`check_layer`], so a stream that checks clean only
/// fails to unpack for reasons of the destination (space, a clash with its contents).
fn check_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    prefix: &Path,
    opts: UnpackOptions,
) -> Result<Option<Checked>, UnpackError> {
    let raw_path = entry.path_bytes().into_owned();
    let shown = Path::new(OsStr::from_bytes(&raw_path)).to_path_buf();
    let Some(path) = clean_entry_path(&raw_path).map_err(|r| entry_err(&shown, r))? else {
        return Ok(None);
    };
    let path = prefix.join(path);
    let header = entry.header().clone();
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .ok_or_else(|| entry_err(&path, "no file name"))?;
    let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut checked = Checked {
        path,
        name,
        parent,
        kind: Kind::Skip,
        owner: (None, None),
        mode: 0,
        mtime: 0,
        xattrs: Vec::new(),
    };
    let path = &checked.path;

    let name_bytes = checked.name.as_bytes();
    if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
        if !opts.whiteouts {
            return Err(entry_err(path, "whiteout files are not allowed here"));
        }
        if name_bytes == OPAQUE_MARKER.as_bytes() {
            checked.kind = Kind::Opaque;
            return Ok(Some(checked));
        }
        let target = OsStr::from_bytes(&name_bytes[WHITEOUT_PREFIX.len()..]).to_os_string();
        if target.is_empty() || target == "." || target == ".." {
            return Err(entry_err(path, "invalid whiteout name"));
        }
        checked.kind = Kind::Whiteout(target);
        return Ok(Some(checked));
    }

    let old = header.as_old();
    let field = |what: &str, r: io::Result<u64>, raw: &[u8]| {
        lenient(r, raw).map_err(|e| entry_err(path, format!("{what}: {e}")))
    };
    let uid = field("uid", header.uid(), &old.uid)?;
    let gid = field("gid", header.gid(), &old.gid)?;
    let mode = field("mode", header.mode().map(u64::from), &old.mode)? as u32 & 0o7777;
    let mtime = field("mtime", header.mtime(), &old.mtime)? as i64;
    let owner = (
        Some(Uid::from_raw(
            u32::try_from(uid).map_err(|_| entry_err(path, "uid out of range"))?,
        )),
        Some(Gid::from_raw(
            u32::try_from(gid).map_err(|_| entry_err(path, "gid out of range"))?,
        )),
    );
    let xattrs = collect_xattrs(entry, path)?;

    use tar::EntryType as T;
    let kind = match header.entry_type() {
        T::Directory => Kind::Dir,
        T::Regular | T::Continuous | T::GNUSparse => Kind::File,
        T::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| entry_err(path, "symlink without a target"))?
                .into_owned();
            if target.is_empty() || target.contains(&0) {
                return Err(entry_err(path, "invalid symlink target"));
            }
            Kind::Symlink(target)
        }
        T::Link => {
            let raw_target = entry
                .link_name_bytes()
                .ok_or_else(|| entry_err(path, "hard link without a target"))?
                .into_owned();
            let target = clean_entry_path(&raw_target)
                .map_err(|r| entry_err(path, format!("hard link target: {r}")))?
                .ok_or_else(|| entry_err(path, "hard link to the layer root"))?;
            let target = prefix.join(target);
            if &target == path {
                return Err(entry_err(path, "hard link to itself"));
            }
            Kind::Hardlink(target)
        }
        kind @ (T::Fifo | T::Char | T::Block) => {
            let (sflag, what) = match kind {
                T::Fifo => (SFlag::S_IFIFO, "fifo"),
                T::Char => (SFlag::S_IFCHR, "character device"),
                _ => (SFlag::S_IFBLK, "block device"),
            };
            if sflag != SFlag::S_IFIFO && !opts.allow_devices {
                return Err(entry_err(
                    path,
                    format!("{what} nodes are not allowed here"),
                ));
            }
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            Kind::Node(sflag, major, minor)
        }
        T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => Kind::Skip,
        other => {
            return Err(entry_err(
                path,
                format!("unsupported entry type {:?}", other.as_byte() as char),
            ));
        }
    };
    checked.kind = kind;
    checked.owner = owner;
    checked.mode = mode;
    checked.mtime = mtime;
    checked.xattrs = xattrs;
    Ok(Some(checked))
}

struct Unpacker {
    root: Root,
    /// Where entries go inside the root ("" for a layer; a COPY destination for COPY).
    prefix: PathBuf,
    opts: UnpackOptions,
    parent_cache: Option<(PathBuf, OwnedFd)>,
    dir_times: Vec<(PathBuf, i64)>,
    buf: Vec<u8>,
    stats: UnpackStats,
}

fn nix_io(path: &Path, e: Errno) -> UnpackError {
    UnpackError::Io {
        path: path.display().to_string(),
        source: io::Error::from(e),
    }
}

fn pathrs_io(path: &Path, e: pathrs::error::Error) -> UnpackError {
    entry_err(path, e.to_string())
}

impl Unpacker {
    /// An fd for the directory `parent` (relative to the root), created if missing.
    fn parent_fd(&mut self, parent: &Path, entry: &Path) -> Result<&OwnedFd, UnpackError> {
        let hit = matches!(&self.parent_cache, Some((p, _)) if p == parent);
        if !hit {
            let fd: OwnedFd = if parent.as_os_str().is_empty() {
                let f = self
                    .root
                    .resolve(".")
                    .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
                    .map_err(|e| pathrs_io(entry, e))?;
                f.into()
            } else {
                let h = self
                    .root
                    .mkdir_all(parent, &Permissions::from_mode(0o755))
                    .map_err(|e| {
                        entry_err(entry, format!("cannot create parent directory: {e}"))
                    })?;
                let f = h
                    .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
                    .map_err(|e| entry_err(entry, format!("parent is not a directory: {e}")))?;
                f.into()
            };
            self.parent_cache = Some((parent.to_path_buf(), fd));
        }
        match &self.parent_cache {
            Some((_, fd)) => Ok(fd),
            None => Err(entry_err(entry, "internal: parent cache empty")),
        }
    }

    /// Remove whatever exists at `path` unless it is a directory and `keep_dir` is set.
    /// Returns true when a directory was kept.
    fn clear_existing(
        &mut self,
        path: &Path,
        name: &OsStr,
        keep_dir: bool,
    ) -> Result<bool, UnpackError> {
        let parent = path.parent().unwrap_or(Path::new(""));
        let fd = self.parent_fd(parent, path)?;
        match fstatat(fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(nix_io(path, e)),
            Ok(st) => {
                let is_dir =
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
                if is_dir && keep_dir {
                    return Ok(true);
                }
                self.root
                    .remove_all(path)
                    .map_err(|e| entry_err(path, format!("cannot replace existing entry: {e}")))?;
                // A removed directory may be the cached parent (or contain it).
                self.parent_cache = None;
                Ok(false)
            }
        }
    }

    fn apply_entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let Some(c) = check_entry(&mut entry, &self.prefix, self.opts)? else {
            return Ok(());
        };
        let (path, name, parent) = (&c.path, c.name.as_os_str(), c.parent.as_path());
        let mtime_ts = TimeSpec::new(c.mtime, 0);
        let owner = c.owner;
        match c.kind {
            Kind::Skip => return Ok(()),
            Kind::Opaque => {
                let fd = self.parent_fd(parent, path)?;
                let dir = File::from(fd.try_clone().map_err(|e| UnpackError::Io {
                    path: path.display().to_string(),
                    source: e,
                })?);
                xattr::FileExt::set_xattr(&dir, OVERLAY_OPAQUE_XATTR, b"y").map_err(|e| {
                    UnpackError::Io {
                        path: parent.display().to_string(),
                        source: e,
                    }
                })?;
                return Ok(());
            }
            Kind::Whiteout(ref target) => {
                let tpath = parent.join(target);
                self.clear_existing(&tpath, target, false)?;
                let fd = self.parent_fd(parent, path)?;
                mknodat(fd, target.as_os_str(), SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| nix_io(&tpath, e))?;
            }
            Kind::Dir => {
                let kept = self.clear_existing(path, name, true)?;
                let fd = self.parent_fd(parent, path)?;
                if !kept {
                    mkdirat(fd, name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| nix_io(path, e))?;
                }
                let dir = openat(
                    fd,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| nix_io(path, e))?;
                tolerate_eperm(fchown(&dir, owner.0, owner.1)).map_err(|e| nix_io(path, e))?;
                fchmod(&dir, Mode::from_bits_truncate(c.mode)).map_err(|e| nix_io(path, e))?;
                set_xattrs(&File::from(dir), &c.xattrs, path)?;
                self.dir_times.push((path.clone(), c.mtime));
            }
            Kind::File => {
                self.clear_existing(path, name, false)?;
                let fd = self.parent_fd(parent, path)?;
                let ofd = openat(
                    fd,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| nix_io(path, e))?;
                let mut file = File::from(ofd);
                loop {
                    let n = entry
                        .read(&mut self.buf)
                        .map_err(|e| UnpackError::Stream(format!("{}: {e}", path.display())))?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n])
                        .map_err(|e| UnpackError::Io {
                            path: path.display().to_string(),
                            source: e,
                        })?;
                    self.stats.file_bytes += n as u64;
                }
                tolerate_eperm(fchown(&file, owner.0, owner.1)).map_err(|e| nix_io(path, e))?;
                // chmod after chown: chown clears set-id bits.
                fchmod(&file, Mode::from_bits_truncate(c.mode)).map_err(|e| nix_io(path, e))?;
                set_xattrs(&file, &c.xattrs, path)?;
                futimens(&file, &mtime_ts, &mtime_ts).map_err(|e| nix_io(path, e))?;
            }
            Kind::Symlink(ref target) => {
                self.clear_existing(path, name, false)?;
                let fd = self.parent_fd(parent, path)?;
                symlinkat(OsStr::from_bytes(target), fd, name).map_err(|e| nix_io(path, e))?;
                set_owner_and_time(fd, name, owner, &mtime_ts).map_err(|e| nix_io(path, e))?;
            }
            Kind::Hardlink(ref target) => {
                self.clear_existing(path, name, false)?;
                self.parent_fd(parent, path)?;
                self.root
                    .create(path, &InodeType::Hardlink(target.clone()))
                    .map_err(|e| {
                        entry_err(path, format!("hard link to {}: {e}", target.display()))
                    })?;
            }
            Kind::Node(sflag, major, minor) => {
                self.clear_existing(path, name, false)?;
                let fd = self.parent_fd(parent, path)?;
                mknodat(
                    fd,
                    name,
                    sflag,
                    Mode::from_bits_truncate(c.mode),
                    nix::sys::stat::makedev(major.into(), minor.into()),
                )
                .map_err(|e| nix_io(path, e))?;
                set_owner_and_time(fd, name, owner, &mtime_ts).map_err(|e| nix_io(path, e))?;
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    fn finish_dir_times(&mut self) -> Result<(), UnpackError> {
        let mut times = std::mem::take(&mut self.dir_times);
        // Deepest first, so setting a parent's time comes after its children are done.
        times.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        self.parent_cache = None;
        for (path, mtime) in times {
            let ts = TimeSpec::new(mtime, 0);
            let dir = match self.root.resolve_nofollow(&path) {
                Ok(h) => h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY),
                Err(e) => Err(e),
            };
            // A directory replaced by a later entry has nothing left to stamp.
            if let Ok(dir) = dir {
                futimens(dir.as_fd(), &ts, &ts).map_err(|e| nix_io(&path, e))?;
            }
        }
        Ok(())
    }
}

/// A numeric header field that is blank (all NUL or spaces) reads as 0, as in GNU tar and
/// Go's archive/tar; anything else unparsable is an error.
fn lenient(parsed: io::Result<u64>, raw: &[u8]) -> Result<u64, String> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(_) => Err("not a number".into()),
    }
}

/// Owner and mtime of a just-created non-regular entry (symlink, fifo, device), without
/// following it.
fn set_owner_and_time(
    dirfd: &OwnedFd,
    name: &OsStr,
    owner: (Option<Uid>, Option<Gid>),
    mtime: &TimeSpec,
) -> nix::Result<()> {
    tolerate_eperm(fchownat(
        dirfd,
        name,
        owner.0,
        owner.1,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ))?;
    utimensat(dirfd, name, mtime, mtime, UtimensatFlags::NoFollowSymlink)
}

type Xattrs = Vec<(String, Vec<u8>)>;

/// PAX `SCHILY.xattr.*` records we apply. `trusted.*` (which could forge overlay
/// whiteouts, opaque markers or redirects) and other namespaces are dropped.
fn collect_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &Path,
) -> Result<Xattrs, UnpackError> {
    let mut out = Vec::new();
    let Some(exts) = entry
        .pax_extensions()
        .map_err(|e| entry_err(path, e.to_string()))?
    else {
        return Ok(out);
    };
    for ext in exts {
        let ext = ext.map_err(|e| entry_err(path, e.to_string()))?;
        let Ok(key) = ext.key() else { continue };
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            if name.starts_with("user.") || name == "security.capability" {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            } else {
                tracing::debug!(path = %path.display(), xattr = name, "xattr not applied");
            }
        }
    }
    Ok(out)
}

fn set_xattrs(file: &File, xattrs: &Xattrs, path: &Path) -> Result<(), UnpackError> {
    for (k, v) in xattrs {
        xattr::FileExt::set_xattr(file, k, v).map_err(|e| UnpackError::Io {
            path: format!("{} (xattr {k})", path.display()),
            source: e,
        })?;
    }
    Ok(())
}

/// Error text from the tar reader can quote header bytes of a hostile file: keep the first
/// clause, printable characters only, and bound its length.
fn short_reason(s: &str) -> String {
    let first = s.split(':').next().unwrap_or(s);
    let clean: String = first
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    clean.trim().to_string()
}

/// Read the tar stream `r` to its end, calling `apply` for each entry; an empty archive is
/// an error unless `allow_empty`. What follows the end-of-archive marker is drained, so a
/// hash of the stream covers every byte.
fn for_each_entry<R: Read>(
    r: R,
    allow_empty: bool,
    mut apply: impl FnMut(tar::Entry<'_, R>) -> Result<(), UnpackError>,
) -> Result<(), UnpackError> {
    let mut archive = tar::Archive::new(r);
    let mut seen_any = false;
    {
        let entries = archive
            .entries()
            .map_err(|e| UnpackError::Stream(e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                let reason = short_reason(&e.to_string());
                if seen_any {
                    UnpackError::Stream(reason)
                } else {
                    UnpackError::NotTar(reason)
                }
            })?;
            seen_any = true;
            apply(entry)?;
        }
    }
    if !seen_any && !allow_empty {
        return Err(UnpackError::Empty);
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| UnpackError::Stream(e.to_string()))?;
    Ok(())
}

/// Check the layer tar stream `r` entry by entry as [`unpack_layer`] would, without writing
/// anything: what a layer must pass to enter the store (it is unpacked later, on first use).
/// Besides the per-entry checks, a hard link must name an earlier non-directory entry
/// (remembered as a 64-bit hash per path, so memory stays small for huge layers; a
/// collision could only let a bad link through to the unpacker, which refuses it too).
/// The stream is read to its end.
pub fn check_layer<R: Read>(r: R, opts: UnpackOptions) -> Result<UnpackStats, UnpackError> {
    let mut stats = UnpackStats::default();
    let mut linkable: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let key = |p: &Path| {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(p)
    };
    for_each_entry(r, false, |mut entry| {
        let Some(c) = check_entry(&mut entry, Path::new(""), opts)? else {
            return Ok(());
        };
        match c.kind {
            Kind::Skip | Kind::Opaque => return Ok(()),
            Kind::Dir | Kind::Whiteout(_) => {}
            Kind::Hardlink(ref target) => {
                if !linkable.contains(&key(target)) {
                    return Err(entry_err(
                        &c.path,
                        format!(
                            "hard link to {}, which is not in the layer",
                            target.display()
                        ),
                    ));
                }
                linkable.insert(key(&c.path));
            }
            Kind::File => {
                stats.file_bytes += entry.size();
                linkable.insert(key(&c.path));
            }
            Kind::Symlink(_) | Kind::Node(..) => {
                linkable.insert(key(&c.path));
            }
        }
        stats.entries += 1;
        Ok(())
    })?;
    Ok(stats)
}

/// Unpack the tar stream `r` into the existing, empty directory `dest`.
/// The stream is read to its end (so a hash of it covers every byte).
pub fn unpack_layer<R: Read>(
    r: R,
    dest: &Path,
    opts: UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    unpack_into(r, dest, Path::new(""), opts, false)
}

/// Unpack the tar stream `r` below `prefix` inside the directory tree `root` (every path,
/// including `prefix`, resolved inside `root`). With `allow_empty`, an archive without
/// entries is fine (a COPY of an empty directory).
pub fn unpack_into<R: Read>(
    r: R,
    root: &Path,
    prefix: &Path,
    opts: UnpackOptions,
    allow_empty: bool,
) -> Result<UnpackStats, UnpackError> {
    let dest = root;
    let root = Root::open(dest).map_err(|e| UnpackError::Io {
        path: dest.display().to_string(),
        source: io::Error::other(e.to_string()),
    })?;
    let prefix = if prefix.as_os_str().is_empty() {
        PathBuf::new()
    } else {
        clean_entry_path(prefix.as_os_str().as_bytes())
            .map_err(|r| entry_err(prefix, r))?
            .unwrap_or_default()
    };
    let mut u = Unpacker {
        root,
        prefix,
        opts,
        parent_cache: None,
        dir_times: Vec::new(),
        buf: vec![0u8; 256 * 1024],
        stats: UnpackStats::default(),
    };
    for_each_entry(r, allow_empty, |entry| u.apply_entry(entry))?;
    u.finish_dir_times()?;
    Ok(u.stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn header(path: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        // set_path refuses "..", so write the raw name for hostile cases.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        h
    }

    fn build(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = header(path, *kind, data.len() as u64, 0o644);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
                h.set_cksum();
            }
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    const OPTS: UnpackOptions = UnpackOptions {
        allow_devices: false,
        whiteouts: false,
    };

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_entry_path(b"./a/./b/").unwrap(),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(clean_entry_path(b"./").unwrap(), None);
        assert!(clean_entry_path(b"/etc/passwd").is_err());
        assert!(clean_entry_path(b"a/../../b").is_err());
        assert!(clean_entry_path(b"..").is_err());
    }

    #[test]
    fn unpacks_files_dirs_links() {
        use tar::EntryType as T;
        let data = build(&[
            ("d/", T::Directory, b"", None),
            ("d/f", T::Regular, b"hello", None),
            ("d/l", T::Symlink, b"", Some("f")),
            ("d/h", T::Link, b"", Some("d/f")),
            ("deep/er/file", T::Regular, b"x", None),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let st = unpack_layer(&data[..], dir.path(), OPTS).unwrap();
        assert_eq!(st.entries, 5);
        assert_eq!(std::fs::read(dir.path().join("d/f")).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_link(dir.path().join("d/l")).unwrap(),
            PathBuf::from("f")
        );
        let a = std::fs::metadata(dir.path().join("d/f")).unwrap();
        let b = std::fs::metadata(dir.path().join("d/h")).unwrap();
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.mtime(), 1_000_000);
        assert_eq!(
            std::fs::metadata(dir.path().join("d")).unwrap().mtime(),
            1_000_000
        );
        assert_eq!(
            std::fs::read(dir.path().join("deep/er/file")).unwrap(),
            b"x"
        );
    }

    #[test]
    fn refuses_escapes() {
        use tar::EntryType as T;
        for bad in [
            build(&[("../evil", T::Regular, b"x", None)]),
            build(&[("/abs", T::Regular, b"x", None)]),
            build(&[("h", T::Link, b"", Some("../../etc/passwd"))]),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let e = unpack_layer(&bad[..], &dir.path().join("."), OPTS).unwrap_err();
            assert!(matches!(e, UnpackError::Entry { .. }), "{e}");
            let e = check_layer(&bad[..], OPTS).unwrap_err();
            assert!(matches!(e, UnpackError::Entry { .. }), "{e}");
        }
    }

    #[test]
    fn checking_accepts_what_unpacking_accepts_and_writes_nothing() {
        use tar::EntryType as T;
        let good = build(&[
            ("d/", T::Directory, b"", None),
            ("d/f", T::Regular, b"hello", None),
            ("d/l", T::Symlink, b"", Some("/etc/passwd")),
            ("d/h", T::Link, b"", Some("./d/f")),
        ]);
        let st = check_layer(&good[..], OPTS).unwrap();
        assert_eq!((st.entries, st.file_bytes), (4, 5));
        for (bad, why) in [
            (
                build(&[("h", T::Link, b"", Some("missing"))]),
                "not in the layer",
            ),
            (
                build(&[
                    ("d/", T::Directory, b"", None),
                    ("h", T::Link, b"", Some("d")),
                ]),
                "not in the layer",
            ),
            (
                build(&[("dev/sda", T::Char, b"", None)]),
                "character device",
            ),
            (build(&[("a/.wh.b", T::Regular, b"", None)]), "whiteout"),
        ] {
            let e = check_layer(&bad[..], OPTS).unwrap_err();
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
        assert!(matches!(
            check_layer(&b""[..], OPTS),
            Err(UnpackError::Empty)
        ));
        assert!(matches!(
            check_layer(&[0x42u8; 1024][..], OPTS),
            Err(UnpackError::NotTar(_))
        ));
    }

    #[test]
    fn symlink_parents_stay_inside_the_root() {
        use tar::EntryType as T;
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().to_str().unwrap().to_string();
        let data = build(&[
            ("escape", T::Symlink, b"", Some(&target)),
            ("escape/pwned", T::Regular, b"x", None),
            ("up", T::Symlink, b"", Some("../../../..")),
            ("up/pwned2", T::Regular, b"x", None),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        std::fs::create_dir(&layer).unwrap();
        let _ = unpack_layer(&data[..], &layer, OPTS);
        assert!(
            !outside.path().join("pwned").exists(),
            "wrote through an absolute symlink"
        );
        assert!(
            !dir.path().join("pwned2").exists(),
            "wrote through a relative symlink"
        );
    }

    #[test]
    fn devices_refused_unless_allowed() {
        use tar::EntryType as T;
        let data = build(&[("dev/null", T::Char, b"", None)]);
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_layer(&data[..], dir.path(), OPTS).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }

    #[test]
    fn garbage_and_empty_inputs_fail() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            unpack_layer(&b""[..], dir.path(), OPTS),
            Err(UnpackError::Empty)
        ));
        let junk = vec![b'z'; 4096];
        assert!(unpack_layer(&junk[..], dir.path(), OPTS).is_err());
        use tar::EntryType as T;
        let mut data = build(&[("f", T::Regular, &[7u8; 5000], None)]);
        data.truncate(1024);
        assert!(unpack_layer(&data[..], dir.path(), OPTS).is_err());
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        use tar::EntryType as T;
        let data = build(&[
            ("a", T::Regular, b"one", None),
            ("a", T::Regular, b"two", None),
            ("d/", T::Directory, b"", None),
            ("d/x", T::Regular, b"x", None),
            ("d", T::Symlink, b"", Some("a")),
        ]);
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&data[..], dir.path(), OPTS).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"two");
        assert!(std::fs::symlink_metadata(dir.path().join("d"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
