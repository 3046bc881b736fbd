//! COPY and ADD: selecting sources in a source tree (the build context, an earlier stage's
//! rootfs, an image) and writing them into a stage rootfs.
//!
//! Sources are read race-free: the top-level source path is resolved inside its tree with
//! pathrs (symlinks followed, but never out of the tree), and everything below it is walked
//! with `openat(O_NOFOLLOW)` on directory fds. The selection is streamed as a tar archive into
//! the same unpacker layers use, which resolves every destination path inside the rootfs —
//! so a symlink in the image pointing at `/` or `..` can never send a write outside it.

use crate::build::dockerignore::IgnoreMatcher;
use crate::storage::unpack::{self, UnpackOptions};
use nix::dir::{Dir, Type};
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};
use pathrs::flags::OpenFlags;
use pathrs::Root;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("forbidden path outside the build context: {0}")]
    OutsideContext(String),
    #[error("file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotFound(String),
    #[error("found no file that matches {0:?}")]
    NoMatch(String),
    #[error("when using COPY with more than one source file, the destination must be a directory and end with a /")]
    DestNotDir,
    #[error("{path}: {reason}")]
    Source { path: String, reason: String },
    #[error("write into the rootfs: {0}")]
    Write(#[from] unpack::UnpackError),
    #[error("{0}")]
    Other(String),
}

fn src_msg(path: impl AsRef<Path>, reason: &str) -> CopyError {
    CopyError::Source {
        path: path.as_ref().display().to_string(),
        reason: reason.to_string(),
    }
}

/// A source error, with the causes of `reason` (pathrs hides the errno in its source chain:
/// "open final magiclink component failed: Permission denied").
fn src_err(path: impl AsRef<Path>, reason: impl std::error::Error) -> CopyError {
    let mut text = reason.to_string();
    let mut cause = reason.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        cause = c.source();
    }
    CopyError::Source {
        path: path.as_ref().display().to_string(),
        reason: text,
    }
}

/// Where sources come from.
pub struct SourceTree {
    root: Root,
    path: PathBuf,
    ignore: Option<IgnoreMatcher>,
    /// Keep the owners found in the tree (stage/image sources); otherwise 0:0 (context).
    keep_owner: bool,
    /// The user's tree (the context): read with their rights when installed setuid.
    users: bool,
}

impl SourceTree {
    /// The build context, with its `.dockerignore` patterns.
    pub fn context(path: &Path, ignore: IgnoreMatcher) -> Result<SourceTree, CopyError> {
        Self::open(path, Some(ignore), false, true)
    }

    /// A rootfs (an earlier stage, an image) for `COPY --from`.
    pub fn rootfs(path: &Path) -> Result<SourceTree, CopyError> {
        Self::open(path, None, true, false)
    }

    fn open(
        path: &Path,
        ignore: Option<IgnoreMatcher>,
        keep_owner: bool,
        users: bool,
    ) -> Result<SourceTree, CopyError> {
        let open = || Root::open(path);
        let root = if users {
            crate::privilege::as_caller(open)
        } else {
            open()
        }
        .map_err(|e| src_err(path, e))?;
        Ok(SourceTree {
            root,
            path: path.to_path_buf(),
            ignore,
            keep_owner,
            users,
        })
    }

    /// Run `f`, which reads this tree, with the rights the tree is read with: the caller's
    /// for the context of a setuid invocation (see [`crate::privilege`]), ours otherwise.
    fn access<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.users {
            crate::privilege::as_caller(f)
        } else {
            f()
        }
    }

    fn excluded(&self, rel: &Path) -> bool {
        match &self.ignore {
            Some(m) => m.is_excluded(&rel.to_string_lossy()),
            None => false,
        }
    }

    fn may_include_below(&self, rel: &Path) -> bool {
        match &self.ignore {
            Some(m) => m.may_include_below(&rel.to_string_lossy()),
            None => true,
        }
    }
}

/// Clean a source path to a path relative to the tree root. A leading `/` is the root of the
/// tree; `..` that would leave the tree is refused.
pub fn clean_source(src: &str) -> Result<PathBuf, CopyError> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in Path::new(src).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(CopyError::OutsideContext(src.to_string()));
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out.iter().collect())
}

fn has_glob(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// One selected source: a path in the tree (relative) or an inline file (heredoc).
#[derive(Debug, Clone)]
pub enum Source {
    Path { rel: PathBuf, is_dir: bool },
    Inline { name: String, content: Vec<u8> },
}

fn stat_rel(tree: &SourceTree, rel: &Path) -> Result<Option<bool>, CopyError> {
    let target = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    match tree.root.resolve(target) {
        Ok(h) => {
            let st = nix::sys::stat::fstat(&h).map_err(|e| src_err(rel, e))?;
            Ok(Some(kind_of(&st) == SFlag::S_IFDIR))
        }
        Err(e) => match e.kind() {
            pathrs::error::ErrorKind::OsError(Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => {
                Ok(None)
            }
            _ => Err(src_err(rel, e)),
        },
    }
}

/// Expand the source patterns of one COPY/ADD into concrete sources, in order.
pub fn select_sources(tree: &SourceTree, patterns: &[String]) -> Result<Vec<Source>, CopyError> {
    tree.access(|| select_sources_in(tree, patterns))
}

fn select_sources_in(tree: &SourceTree, patterns: &[String]) -> Result<Vec<Source>, CopyError> {
    let mut out = Vec::new();
    for pat in patterns {
        let rel = clean_source(pat)?;
        if has_glob(pat) {
            let matcher = IgnoreMatcher::new(&[rel.to_string_lossy().into_owned()])
                .map_err(|e| CopyError::Other(format!("invalid source pattern {pat:?}: {e}")))?;
            let Some(p) = matcher.patterns().first() else {
                return Err(CopyError::NoMatch(pat.clone()));
            };
            let mut found = Vec::new();
            let depth = rel.components().count();
            walk_names(tree, Path::new(""), depth, &mut |path, is_dir| {
                let s = path.to_string_lossy();
                if p.matches(&s) && !tree.excluded(path) {
                    found.push(Source::Path {
                        rel: path.to_path_buf(),
                        is_dir,
                    });
                }
            })?;
            if found.is_empty() {
                return Err(CopyError::NoMatch(pat.clone()));
            }
            out.extend(found);
        } else {
            if !rel.as_os_str().is_empty() && tree.excluded(&rel) {
                return Err(CopyError::NotFound(pat.clone()));
            }
            match stat_rel(tree, &rel)? {
                Some(is_dir) => out.push(Source::Path { rel, is_dir }),
                None => return Err(CopyError::NotFound(pat.clone())),
            }
        }
    }
    Ok(out)
}

/// Visit every path of the tree down to `max_depth` components (for glob matching).
fn walk_names(
    tree: &SourceTree,
    rel: &Path,
    max_depth: usize,
    f: &mut dyn FnMut(&Path, bool),
) -> Result<(), CopyError> {
    if rel.components().count() >= max_depth {
        return Ok(());
    }
    let dir_path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fd: OwnedFd = match tree.root.resolve_nofollow(dir_path) {
        Ok(h) => h
            .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
            .map_err(|e| src_err(rel, e))?
            .into(),
        Err(_) => return Ok(()),
    };
    let mut names = list_dir(fd, rel)?;
    names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, is_dir) in names {
        let child = rel.join(&name);
        f(&child, is_dir);
        if is_dir {
            walk_names(tree, &child, max_depth, f)?;
        }
    }
    Ok(())
}

fn list_dir(fd: OwnedFd, rel: &Path) -> Result<Vec<(OsString, bool)>, CopyError> {
    let mut dir = Dir::from_fd(fd).map_err(|e| src_err(rel, e))?;
    let mut out = Vec::new();
    for e in dir.iter() {
        let e = e.map_err(|e| src_err(rel, e))?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = matches!(e.file_type(), Some(Type::Directory));
        out.push((OsStr::from_bytes(name).to_os_string(), is_dir));
    }
    Ok(out)
}

/// Metadata changes applied to everything copied.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// `--chown`: uid, gid.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`: permission bits.
    pub mode: Option<u32>,
}

/// Streams tar chunks to the unpacking side.
struct ChannelWriter {
    tx: mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(256 * 1024));
            self.tx.send(chunk).map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "copy destination stopped")
            })?;
        }
        Ok(())
    }
}

struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes the selected sources as a tar stream.
struct Producer<'a, W: Write> {
    tree: &'a SourceTree,
    out: tar::Builder<W>,
    ov: Overrides,
    links: HashMap<(u64, u64), PathBuf>,
    /// File data goes through this (the tar builder would copy through 8 KiB reads).
    buf: Vec<u8>,
}

fn kind_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

impl<W: Write> Producer<'_, W> {
    fn header(&self, st: &FileStat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        let perm = st.st_mode & 0o7777;
        let mode = match (self.ov.mode, kind) {
            (Some(m), tar::EntryType::Regular | tar::EntryType::Directory) => m,
            _ => perm,
        };
        h.set_mode(mode);
        let (uid, gid) = match self.ov.owner {
            Some(o) => o,
            None if self.tree.keep_owner => (st.st_uid, st.st_gid),
            None => (0, 0),
        };
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    /// For a multiply-linked file: the archive path it was first written under (and remember
    /// this one otherwise).
    fn known_link(&mut self, st: &FileStat, dest: &Path) -> Option<PathBuf> {
        if st.st_nlink <= 1 {
            return None;
        }
        let key = (st.st_dev, st.st_ino);
        if let Some(first) = self.links.get(&key) {
            return Some(first.clone());
        }
        self.links.insert(key, dest.to_path_buf());
        None
    }

    fn write_file(
        &mut self,
        st: &FileStat,
        f: File,
        src: &Path,
        dest: &Path,
    ) -> Result<(), CopyError> {
        let size = st.st_size as u64;
        let mut h = self.header(st, tar::EntryType::Regular);
        h.set_size(size);
        // The header (and any long-name record) through the builder with no data; exactly
        // `size` bytes of data follow here, in large reads, then the padding.
        self.out
            .append_data(&mut h, dest, io::empty())
            .map_err(|e| src_err(src, e))?;
        let out = self.out.get_mut();
        let mut f = f;
        let mut left = size;
        while left > 0 {
            let want = (self.buf.len() as u64).min(left) as usize;
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => return Err(src_msg(src, "file shrank while being copied")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(src_err(src, e)),
            };
            out.write_all(&self.buf[..n]).map_err(|e| src_err(src, e))?;
            left -= n as u64;
        }
        let rem = (size % 512) as usize;
        if rem != 0 {
            out.write_all(&[0u8; 512][..512 - rem])
                .map_err(|e| src_err(src, e))?;
        }
        Ok(())
    }

    /// Emit the object `name` found in directory `dirfd` (source path `src` for messages) as
    /// archive entry `dest`; directories recurse (or, with `contents_only`, only their
    /// children are emitted, directly under `dest`).
    fn emit(
        &mut self,
        dirfd: &OwnedFd,
        name: &OsStr,
        src: &Path,
        dest: &Path,
        contents_only: bool,
    ) -> Result<(), CopyError> {
        let st = fstatat(dirfd, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| src_err(src, e))?;
        let io = |e: io::Error| src_err(src, e);
        match kind_of(&st) {
            SFlag::S_IFDIR => {
                if !contents_only && !dest.as_os_str().is_empty() && !self.tree.excluded(src) {
                    let mut h = self.header(&st, tar::EntryType::Directory);
                    let mut n = dest.as_os_str().to_os_string();
                    n.push("/");
                    self.out
                        .append_data(&mut h, Path::new(&n), io::empty())
                        .map_err(io)?;
                }
                if self.tree.excluded(src) && !self.tree.may_include_below(src) {
                    return Ok(());
                }
                let fd = openat(
                    dirfd,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| src_err(src, e))?;
                let listing = fd.try_clone().map_err(io)?;
                let mut names = list_dir(listing, src)?;
                names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                for (child, _) in names {
                    self.emit(&fd, &child, &src.join(&child), &dest.join(&child), false)?;
                }
                Ok(())
            }
            _ if self.tree.excluded(src) => Ok(()),
            SFlag::S_IFREG => {
                if let Some(first) = self.known_link(&st, dest) {
                    let mut h = self.header(&st, tar::EntryType::Link);
                    self.out.append_link(&mut h, dest, &first).map_err(io)?;
                    return Ok(());
                }
                let fd = openat(
                    dirfd,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
                    Mode::empty(),
                )
                .map_err(|e| src_err(src, e))?;
                self.write_file(&st, File::from(fd), src, dest)
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(dirfd, name).map_err(|e| src_err(src, e))?;
                let mut h = self.header(&st, tar::EntryType::Symlink);
                self.out
                    .append_link(&mut h, dest, Path::new(&target))
                    .map_err(io)?;
                Ok(())
            }
            SFlag::S_IFIFO => {
                let mut h = self.header(&st, tar::EntryType::Fifo);
                self.out
                    .append_data(&mut h, dest, io::empty())
                    .map_err(io)?;
                Ok(())
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK if self.tree.keep_owner => {
                let kind = if kind_of(&st) == SFlag::S_IFCHR {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = self.header(&st, kind);
                h.set_device_major(nix::sys::stat::major(st.st_rdev) as u32)
                    .map_err(io)?;
                h.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32)
                    .map_err(io)?;
                self.out
                    .append_data(&mut h, dest, io::empty())
                    .map_err(io)?;
                Ok(())
            }
            _ => Err(src_msg(
                src,
                "cannot copy sockets or device files from the build context",
            )),
        }
    }
}

/// A resolved COPY: where the entries go and what each source becomes.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    /// Destination directory inside the rootfs (relative to the rootfs root).
    pub dest_dir: PathBuf,
    /// (source, entry name under dest_dir; empty = a directory's contents go straight in).
    pub items: Vec<(Source, PathBuf)>,
}

/// Docker's destination rules. `dest` is absolute in the rootfs (WORKDIR already applied);
/// `dest_is_dir` tells whether it exists as a directory in the rootfs.
pub fn plan_copy(
    sources: Vec<Source>,
    dest: &str,
    dest_is_dir: bool,
) -> Result<CopyPlan, CopyError> {
    let dest_path = clean_source(dest)?;
    let wants_dir = dest.ends_with('/') || dest.ends_with("/.") || dest == "." || dest_is_dir;
    if sources.len() > 1 && !wants_dir {
        return Err(CopyError::DestNotDir);
    }
    if dest_path.as_os_str().is_empty() {
        // Copying into "/".
        let items = sources
            .into_iter()
            .map(|s| {
                let name = entry_name(&s);
                (s, name)
            })
            .collect();
        return Ok(CopyPlan {
            dest_dir: PathBuf::new(),
            items,
        });
    }
    if wants_dir {
        let items = sources
            .into_iter()
            .map(|s| {
                let name = entry_name(&s);
                (s, name)
            })
            .collect();
        return Ok(CopyPlan {
            dest_dir: dest_path,
            items,
        });
    }
    // One source, destination names the result.
    let Some(src) = sources.into_iter().next() else {
        return Err(CopyError::Other("no source files were specified".into()));
    };
    match &src {
        Source::Path { is_dir: true, .. } => Ok(CopyPlan {
            dest_dir: dest_path,
            items: vec![(src, PathBuf::new())],
        }),
        _ => {
            let parent = dest_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let name = dest_path.file_name().map(PathBuf::from).unwrap_or_default();
            Ok(CopyPlan {
                dest_dir: parent,
                items: vec![(src, name)],
            })
        }
    }
}

/// A file source lands under its base name; a directory's contents land directly.
fn entry_name(s: &Source) -> PathBuf {
    match s {
        Source::Path { is_dir: true, .. } => PathBuf::new(),
        Source::Path { rel, .. } => rel.file_name().map(PathBuf::from).unwrap_or_default(),
        Source::Inline { name, .. } => PathBuf::from(name),
    }
}

fn produce<W: Write>(
    tree: &SourceTree,
    plan: &CopyPlan,
    ov: Overrides,
    out: W,
) -> Result<(), CopyError> {
    let mut p = Producer {
        tree,
        out: tar::Builder::new(out),
        ov,
        links: HashMap::new(),
        buf: vec![0u8; 1 << 20],
    };
    for (src, name) in &plan.items {
        match src {
            Source::Inline { content, .. } => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(ov.mode.unwrap_or(0o644));
                let (u, g) = ov.owner.unwrap_or((0, 0));
                h.set_uid(u as u64);
                h.set_gid(g as u64);
                h.set_mtime(0);
                h.set_size(content.len() as u64);
                p.out
                    .append_data(&mut h, name, &content[..])
                    .map_err(|e| src_err(name, e))?;
            }
            Source::Path { rel, is_dir } => {
                // The top-level source path follows symlinks inside the tree.
                let resolved = if rel.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    rel.as_path()
                };
                let handle = tree.root.resolve(resolved).map_err(|e| src_err(rel, e))?;
                if *is_dir {
                    let fd: OwnedFd = handle
                        .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
                        .map_err(|e| src_err(rel, e))?
                        .into();
                    let mut names = list_dir(fd.try_clone().map_err(|e| src_err(rel, e))?, rel)?;
                    names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                    for (child, _) in names {
                        p.emit(&fd, &child, &rel.join(&child), &name.join(&child), false)?;
                    }
                } else {
                    // The resolved object itself (symlinks already followed inside the tree).
                    let st = nix::sys::stat::fstat(&handle).map_err(|e| src_err(rel, e))?;
                    if kind_of(&st) != SFlag::S_IFREG {
                        return Err(src_msg(rel, "not a regular file or directory"));
                    }
                    let f = handle
                        .reopen(OpenFlags::O_RDONLY)
                        .map_err(|e| src_err(rel, e))?;
                    p.write_file(&st, f, rel, name)?;
                }
            }
        }
    }
    p.out
        .into_inner()
        .map_err(|e| src_err(&tree.path, e))?
        .flush()
        .map_err(|e| src_err(&tree.path, e))
}

/// Copy `plan` from `tree` into the rootfs at `rootfs` (a mounted stage rootfs).
pub fn copy_into(
    tree: &SourceTree,
    plan: &CopyPlan,
    ov: Overrides,
    rootfs: &Path,
) -> Result<(), CopyError> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(8);
    let mut reader = ChannelReader {
        rx,
        cur: Vec::new(),
        pos: 0,
    };
    let opts = UnpackOptions {
        allow_devices: tree.keep_owner,
        whiteouts: false,
    };
    std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let w = ChannelWriter {
                tx,
                buf: Vec::with_capacity(256 * 1024),
            };
            tree.access(|| produce(tree, plan, ov, w))
        });
        let unpacked = unpack::unpack_into(&mut reader, rootfs, &plan.dest_dir, opts, true);
        drop(reader);
        let produced = producer
            .join()
            .map_err(|_| CopyError::Other("copy thread panicked".into()))?;
        // A source error explains a destination error that followed from it.
        produced?;
        unpacked?;
        Ok(())
    })
}

/// ADD of a local archive: when `rel` in `tree` is a tar (plain, gzip, bzip2 or xz), extract it
/// into `dest_dir` of the rootfs and return true; otherwise return false.
pub fn add_archive(
    tree: &SourceTree,
    rel: &Path,
    rootfs: &Path,
    dest_dir: &Path,
) -> Result<bool, CopyError> {
    let opened = tree.access(|| -> Result<Option<File>, CopyError> {
        let handle = tree.root.resolve(rel).map_err(|e| src_err(rel, e))?;
        let f = handle
            .reopen(OpenFlags::O_RDONLY)
            .map_err(|e| src_err(rel, e))?;
        if !f.metadata().map_err(|e| src_err(rel, e))?.is_file() {
            return Ok(None);
        }
        let f2 = handle
            .reopen(OpenFlags::O_RDONLY)
            .map_err(|e| src_err(rel, e))?;
        Ok(looks_like_tar(f2)?.then_some(f))
    })?;
    let Some(f) = opened else {
        return Ok(false);
    };
    let (_, stream) = crate::compression::decompress(f).map_err(|e| src_err(rel, e))?;
    let opts = UnpackOptions {
        allow_devices: false,
        whiteouts: false,
    };
    unpack::unpack_into(stream, rootfs, dest_dir, opts, true)?;
    Ok(true)
}

/// Whether the (possibly compressed) stream starts with a valid tar header.
fn looks_like_tar(f: File) -> Result<bool, CopyError> {
    let (_, mut stream) = match crate::compression::decompress(f) {
        Ok(x) => x,
        Err(_) => return Ok(false),
    };
    let mut block = [0u8; 512];
    let mut got = 0;
    while got < 512 {
        match stream.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return Ok(false),
        }
    }
    if got < 512 || block.iter().all(|b| *b == 0) {
        return Ok(false);
    }
    let stored: u64 = match std::str::from_utf8(&block[148..156]) {
        Ok(s) => match u64::from_str_radix(s.trim_matches(|c: char| c == ' ' || c == '\0'), 8) {
            Ok(v) => v,
            Err(_) => return Ok(false),
        },
        Err(_) => return Ok(false),
    };
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u64
            }
        })
        .sum();
    Ok(sum == stored)
}

/// Whether `path` (relative to the rootfs) is a directory, following symlinks inside it.
pub fn is_dir_in(rootfs: &Path, path: &Path) -> bool {
    let Ok(root) = Root::open(rootfs) else {
        return false;
    };
    let p = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    root.resolve(p)
        .ok()
        .and_then(|h| nix::sys::stat::fstat(&h).ok())
        .is_some_and(|st| kind_of(&st) == SFlag::S_IFDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn ctx(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let full = d.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, c).unwrap();
        }
        d
    }

    fn tree(d: &Path, ignore: &[&str]) -> SourceTree {
        SourceTree::context(d, IgnoreMatcher::new(ignore).unwrap()).unwrap()
    }

    fn do_copy(t: &SourceTree, srcs: &[&str], dest: &str, rootfs: &Path) -> Result<(), CopyError> {
        let srcs: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
        let sel = select_sources(t, &srcs)?;
        let dest_rel = clean_source(dest)?;
        let plan = plan_copy(sel, dest, is_dir_in(rootfs, &dest_rel))?;
        copy_into(t, &plan, Overrides::default(), rootfs)
    }

    #[test]
    fn clean_source_paths() {
        assert_eq!(clean_source("/a/./b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(clean_source("a/../b").unwrap(), PathBuf::from("b"));
        assert!(matches!(
            clean_source("../x"),
            Err(CopyError::OutsideContext(_))
        ));
        assert!(matches!(
            clean_source("a/../../x"),
            Err(CopyError::OutsideContext(_))
        ));
    }

    #[test]
    fn file_dir_and_glob_semantics() {
        let c = ctx(&[
            ("a.txt", "A"),
            ("b.txt", "B"),
            ("dir/x", "X"),
            ("dir/sub/y", "Y"),
            ("skip.log", ""),
        ]);
        let t = tree(c.path(), &["*.log"]);
        let r = tempfile::tempdir().unwrap();
        do_copy(&t, &["a.txt"], "/etc/renamed", r.path()).unwrap();
        assert_eq!(std::fs::read(r.path().join("etc/renamed")).unwrap(), b"A");
        do_copy(&t, &["a.txt"], "/etc/", r.path()).unwrap();
        assert_eq!(std::fs::read(r.path().join("etc/a.txt")).unwrap(), b"A");
        // An existing directory destination works without the slash.
        do_copy(&t, &["b.txt"], "/etc", r.path()).unwrap();
        assert_eq!(std::fs::read(r.path().join("etc/b.txt")).unwrap(), b"B");
        // A directory source copies its contents.
        do_copy(&t, &["dir"], "/d", r.path()).unwrap();
        assert_eq!(std::fs::read(r.path().join("d/sub/y")).unwrap(), b"Y");
        assert!(!r.path().join("d/dir").exists());
        do_copy(&t, &["*.txt"], "/g/", r.path()).unwrap();
        assert!(r.path().join("g/a.txt").exists() && r.path().join("g/b.txt").exists());
        assert!(matches!(
            do_copy(&t, &["*.txt"], "/nodir", r.path()),
            Err(CopyError::DestNotDir)
        ));
        assert!(matches!(
            do_copy(&t, &["skip.log"], "/x", r.path()),
            Err(CopyError::NotFound(_))
        ));
        assert!(matches!(
            do_copy(&t, &["*.none"], "/x/", r.path()),
            Err(CopyError::NoMatch(_))
        ));
        assert!(matches!(
            do_copy(&t, &["../etc/passwd"], "/x", r.path()),
            Err(CopyError::OutsideContext(_))
        ));
        // Context files are owned by root.
        assert_eq!(
            std::fs::metadata(r.path().join("etc/a.txt")).unwrap().uid(),
            0
        );
    }

    #[test]
    fn symlinks_never_leave_the_context_or_the_rootfs() {
        let c = ctx(&[("inside", "in")]);
        std::os::unix::fs::symlink("/etc/hostname", c.path().join("abs-link")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc/hostname", c.path().join("rel-link"))
            .unwrap();
        let t = tree(c.path(), &[]);
        let r = tempfile::tempdir().unwrap();
        // Top-level symlinks are followed, but inside the context: /etc/hostname there does not exist.
        assert!(do_copy(&t, &["abs-link"], "/x", r.path()).is_err());
        assert!(do_copy(&t, &["rel-link"], "/y", r.path()).is_err());
        // A symlink in the rootfs pointing out: the write stays inside.
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), r.path().join("evil")).unwrap();
        let _ = do_copy(&t, &["inside"], "/evil/", r.path());
        assert!(
            !outside.path().join("inside").exists(),
            "wrote through a symlink out of the rootfs"
        );
        // An absolute symlink is resolved inside the rootfs, as in a container.
        std::fs::create_dir(r.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", r.path().join("link")).unwrap();
        do_copy(&t, &["inside"], "/link/", r.path()).unwrap();
        assert_eq!(std::fs::read(r.path().join("real/inside")).unwrap(), b"in");
        // Inside a copied directory, symlinks are copied as symlinks.
        let c2 = ctx(&[("d/f", "f")]);
        std::os::unix::fs::symlink("/etc/shadow", c2.path().join("d/l")).unwrap();
        let t2 = tree(c2.path(), &[]);
        do_copy(&t2, &["d"], "/copied", r.path()).unwrap();
        assert_eq!(
            std::fs::read_link(r.path().join("copied/l")).unwrap(),
            PathBuf::from("/etc/shadow")
        );
    }

    #[test]
    fn dockerignore_exceptions_inside_excluded_dirs() {
        let c = ctx(&[
            ("docs/a.md", "a"),
            ("docs/keep.md", "k"),
            ("src/main.rs", "m"),
        ]);
        let t = tree(c.path(), &["docs", "!docs/keep.md"]);
        let r = tempfile::tempdir().unwrap();
        do_copy(&t, &["."], "/app/", r.path()).unwrap();
        assert!(r.path().join("app/src/main.rs").exists());
        assert!(r.path().join("app/docs/keep.md").exists());
        assert!(!r.path().join("app/docs/a.md").exists());
    }

    #[test]
    fn hard_links_and_modes_survive() {
        let c = ctx(&[("h1", "same")]);
        std::fs::hard_link(c.path().join("h1"), c.path().join("h2")).unwrap();
        std::fs::set_permissions(
            c.path().join("h1"),
            std::os::unix::fs::PermissionsExt::from_mode(0o751),
        )
        .unwrap();
        let t = tree(c.path(), &[]);
        let r = tempfile::tempdir().unwrap();
        do_copy(&t, &["."], "/l/", r.path()).unwrap();
        let a = std::fs::metadata(r.path().join("l/h1")).unwrap();
        let b = std::fs::metadata(r.path().join("l/h2")).unwrap();
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.mode() & 0o7777, 0o751);
    }
}
