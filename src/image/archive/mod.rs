//! Image archives as files: reading tar archives by member name without extracting them
//! ([`ArchiveIndex`]), writing deterministic tar streams ([`TarOut`]), and the three layouts
//! built on them: docker-archive ([`docker_archive`]), OCI image layout ([`oci_layout`]) and
//! separated base/lib/app bundles ([`separated`]).
//!
//! Reading never extracts an archive to disk: the archive file is scanned once for its
//! headers (seeking over member data), and members are then read in place with positional
//! reads. Members may therefore come in any order, and nothing an archive names can reach a
//! path outside it: names are resolved inside the index, never on a filesystem.

pub mod docker_archive;
pub mod oci_layout;
pub mod separated;

use crate::digest::{Digest, Hasher};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Errors reading or writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("read archive: {0}")]
    Read(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what} {name:?} is not in the archive")]
    Missing { what: String, name: String },
    #[error("{what} {name:?} points outside the archive")]
    Outside { what: String, name: String },
    #[error("{name:?} is {size} bytes, more than the {limit} bytes allowed for it")]
    TooLarge { name: String, size: u64, limit: u64 },
    #[error("digest mismatch for {name:?}: expected {expected}, content is {actual}")]
    Digest {
        name: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("write {path:?}: {source}")]
    Write { path: String, source: io::Error },
}

/// Where a regular member's bytes are.
#[derive(Debug, Clone)]
enum Member {
    File { file: usize, offset: u64, size: u64 },
    Symlink(String),
    Hardlink(String),
    Dir,
}

/// The members of one or more tar files, by normalised name. When several tar files are
/// given (separated images), they form one union; a later member of the same name replaces
/// an earlier one, as extracting them in order would.
pub struct ArchiveIndex {
    files: Vec<Arc<File>>,
    members: HashMap<String, Member>,
}

/// Normalise an archive-internal name: drop `.` and empty components and resolve `..`
/// lexically. `None` when the name is absolute or climbs out of the archive root.
pub fn normalize_name(name: &str) -> Option<String> {
    if name.starts_with('/') || name.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

const MAX_LINK_HOPS: usize = 16;

impl ArchiveIndex {
    /// Scan the headers of `files` (uncompressed tar archives).
    pub fn scan(files: Vec<File>) -> Result<ArchiveIndex, ArchiveError> {
        let mut members = HashMap::new();
        let mut arcs = Vec::with_capacity(files.len());
        for (i, f) in files.into_iter().enumerate() {
            let f = Arc::new(f);
            let mut ar = tar::Archive::new(PositionalReader::new(f.clone()));
            let entries = ar
                .entries_with_seek()
                .map_err(|e| ArchiveError::Read(short(&e.to_string())))?;
            let mut any = false;
            for entry in entries {
                let entry = entry.map_err(|e| {
                    ArchiveError::Read(if any {
                        short(&e.to_string())
                    } else {
                        format!("not a tar archive ({})", short(&e.to_string()))
                    })
                })?;
                any = true;
                let raw = entry.path_bytes();
                let name = String::from_utf8_lossy(&raw).into_owned();
                // Members with names outside the root can never be reached by a lookup.
                let Some(name) = normalize_name(&name) else {
                    continue;
                };
                let link = || {
                    entry
                        .link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .unwrap_or_default()
                };
                use tar::EntryType as T;
                let m = match entry.header().entry_type() {
                    T::Regular | T::Continuous => Member::File {
                        file: i,
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                    T::Symlink => Member::Symlink(link()),
                    T::Link => Member::Hardlink(link()),
                    T::Directory => Member::Dir,
                    _ => continue,
                };
                members.insert(name, m);
            }
            if !any {
                return Err(ArchiveError::Read(
                    "the archive holds no tar entries: not a tar archive, or an empty one".into(),
                ));
            }
            arcs.push(f);
        }
        Ok(ArchiveIndex {
            files: arcs,
            members,
        })
    }

    /// True when a member of this name exists (after normalisation, before link resolution).
    pub fn contains(&self, name: &str) -> bool {
        normalize_name(name).is_some_and(|n| self.members.contains_key(&n))
    }

    /// Resolve `name` (as written in a manifest) to a regular member, following symlinks and
    /// hard links inside the archive. `what` names the reference in errors.
    fn resolve(&self, name: &str, what: &str) -> Result<(usize, u64, u64), ArchiveError> {
        let outside = || ArchiveError::Outside {
            what: what.to_string(),
            name: name.to_string(),
        };
        let missing = || ArchiveError::Missing {
            what: what.to_string(),
            name: name.to_string(),
        };
        let mut cur = normalize_name(name).ok_or_else(outside)?;
        for _ in 0..MAX_LINK_HOPS {
            match self.members.get(&cur).ok_or_else(missing)? {
                Member::File { file, offset, size } => return Ok((*file, *offset, *size)),
                Member::Dir => {
                    return Err(ArchiveError::Invalid(format!(
                        "{what} {name:?} is a directory"
                    )))
                }
                Member::Hardlink(t) => cur = normalize_name(t).ok_or_else(outside)?,
                Member::Symlink(t) => {
                    if t.starts_with('/') {
                        return Err(outside());
                    }
                    let dir = match cur.rfind('/') {
                        Some(i) => &cur[..i],
                        None => "",
                    };
                    cur = normalize_name(&format!("{dir}/{t}")).ok_or_else(outside)?;
                }
            }
        }
        Err(ArchiveError::Invalid(format!(
            "{what} {name:?}: too many levels of links"
        )))
    }

    /// Size of a member.
    pub fn size(&self, name: &str, what: &str) -> Result<u64, ArchiveError> {
        Ok(self.resolve(name, what)?.2)
    }

    /// A reader over a member's bytes.
    pub fn open(&self, name: &str, what: &str) -> Result<MemberReader, ArchiveError> {
        let (file, offset, size) = self.resolve(name, what)?;
        Ok(MemberReader {
            file: self.files[file].clone(),
            pos: offset,
            end: offset + size,
        })
    }

    /// Read a small member whole (manifests, configs): at most `limit` bytes.
    pub fn read_small(&self, name: &str, what: &str, limit: u64) -> Result<Vec<u8>, ArchiveError> {
        let (_, _, size) = self.resolve(name, what)?;
        if size > limit {
            return Err(ArchiveError::TooLarge {
                name: name.to_string(),
                size,
                limit,
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        self.open(name, what)?
            .read_to_end(&mut out)
            .map_err(|e| ArchiveError::Read(format!("{name}: {e}")))?;
        Ok(out)
    }

    /// Read a small member and check it against `digest` (and `size` when given).
    pub fn read_verified(
        &self,
        name: &str,
        what: &str,
        limit: u64,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Vec<u8>, ArchiveError> {
        let bytes = self.read_small(name, what, limit)?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(ArchiveError::Digest {
                name: name.to_string(),
                expected: digest.clone(),
                actual,
            });
        }
        if let Some(s) = size {
            if s != bytes.len() as u64 {
                return Err(ArchiveError::Invalid(format!(
                    "{what} {name:?} is {} bytes but its descriptor says {s}",
                    bytes.len()
                )));
            }
        }
        Ok(bytes)
    }
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Reads a byte range of a shared file with `pread`, so several readers never disturb each
/// other's position.
pub struct MemberReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive member is truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A whole file read through `pread` with a seekable position (for the header scan).
struct PositionalReader {
    file: Arc<File>,
    pos: u64,
}

impl PositionalReader {
    fn new(file: Arc<File>) -> Self {
        PositionalReader { file, pos: 0 }
    }
}

impl Read for PositionalReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for PositionalReader {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        let new = match to {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            io::SeekFrom::End(d) => len.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::other("seek out of range"))?;
        // Seeking past the end means a member claims more bytes than the file holds.
        if self.pos > len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        Ok(self.pos)
    }
}

/// Writes a tar stream with deterministic headers (GNU format, mode 0644/0755, owner 0:0,
/// mtime 0), so the same content always gives the same bytes.
pub struct TarOut<W: Write> {
    w: W,
    buf: Vec<u8>,
}

const BLOCK: usize = 512;

impl<W: Write> TarOut<W> {
    pub fn new(w: W) -> Self {
        TarOut {
            w,
            buf: vec![0u8; 1 << 20],
        }
    }

    fn header(&mut self, path: &str, kind: tar::EntryType, size: u64, mode: u32) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if path.len() > 100 {
            // GNU long name record.
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::GNULongName);
            l.as_gnu_mut()
                .ok_or_else(|| io::Error::other("gnu header"))?
                .name[..13]
                .copy_from_slice(b"././@LongLink");
            let name = path.as_bytes();
            l.set_size(name.len() as u64 + 1);
            l.set_mode(0o644);
            l.set_cksum();
            self.w.write_all(l.as_bytes())?;
            self.w.write_all(name)?;
            self.w.write_all(&[0])?;
            self.pad(name.len() as u64 + 1)?;
            h.as_old_mut().name[..100].copy_from_slice(&name[..100]);
        } else {
            h.set_path(path)?;
        }
        h.set_cksum();
        self.w.write_all(h.as_bytes())
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        let p = format!("{}/", path.trim_end_matches('/'));
        self.header(&p, tar::EntryType::Directory, 0, 0o755)
    }

    pub fn file(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        self.header(path, tar::EntryType::Regular, bytes.len() as u64, 0o644)?;
        self.w.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    /// A member of `size` bytes streamed from `r`; hashes what it copies and fails unless
    /// `r` yields exactly `size` bytes.
    pub fn stream(
        &mut self,
        path: &str,
        size: u64,
        r: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<Digest> {
        self.header(path, tar::EntryType::Regular, size, 0o644)?;
        let mut hasher = Hasher::new();
        let mut done = 0u64;
        loop {
            let n = match r.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            done += n as u64;
            if done > size {
                return Err(io::Error::other(format!(
                    "{path}: source is longer than its recorded size {size}"
                )));
            }
            hasher.update(&self.buf[..n]);
            self.w.write_all(&self.buf[..n])?;
            progress(done);
        }
        if done != size {
            return Err(io::Error::other(format!(
                "{path}: source has {done} bytes, its recorded size is {size}"
            )));
        }
        self.pad(size)?;
        Ok(hasher.finish())
    }

    /// A member of `size` bytes copied from the start of `file` with [`io::copy`] (in the
    /// kernel — `copy_file_range`, `sendfile`, `splice` — when `W` is a file, a pipe or a
    /// socket, possibly behind a `BufWriter`): no per-byte work here. Fails unless `file`
    /// holds at least `size` bytes; `progress` gets the bytes copied so far.
    pub fn copy_file(
        &mut self,
        path: &str,
        size: u64,
        file: &std::fs::File,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        self.header(path, tar::EntryType::Regular, size, 0o644)?;
        // In slices, so progress moves on long copies.
        const SLICE: u64 = 64 << 20;
        let mut done = 0u64;
        while done < size {
            let want = SLICE.min(size - done);
            let mut r = io::Read::take(file, want);
            let n = io::copy(&mut r, &mut self.w)?;
            if n == 0 {
                return Err(io::Error::other(format!(
                    "{path}: source has {done} bytes, its recorded size is {size}"
                )));
            }
            done += n;
            progress(done);
        }
        self.pad(size)
    }

    /// Write the end-of-archive marker and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; BLOCK * 2])?;
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Write a file the user named, atomically and without replacing anything: the content
/// goes to a temporary file in the same directory, which is then hard-linked to `dest`
/// (failing if `dest` appeared meanwhile) and removed.
pub struct NewFile {
    tmp: std::path::PathBuf,
    dest: std::path::PathBuf,
    done: bool,
}

impl NewFile {
    pub fn create(dest: &Path) -> Result<(NewFile, File), ArchiveError> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{name}.tmp-{}",
            crate::storage::fsutil::random_hex(6)
        ));
        // The user's file: created with their rights (and owned by them) when setuid.
        let f = crate::privilege::as_caller(|| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
        })
        .map_err(|e| ArchiveError::Write {
            path: dest.display().to_string(),
            source: e,
        })?;
        Ok((
            NewFile {
                tmp,
                dest: dest.to_path_buf(),
                done: false,
            },
            f,
        ))
    }

    pub fn commit(mut self, f: File) -> Result<(), ArchiveError> {
        let err = |e: io::Error| ArchiveError::Write {
            path: self.dest.display().to_string(),
            source: e,
        };
        // No fsync: like cp or docker save, the output is as durable as any file written;
        // the store's own writes are the ones that must survive a crash.
        drop(f);
        crate::privilege::as_caller(|| {
            std::fs::hard_link(&self.tmp, &self.dest)?;
            let _ = std::fs::remove_file(&self.tmp);
            Ok(())
        })
        .map_err(err)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = crate::privilege::as_caller(|| std::fs::remove_file(&self.tmp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_inside_the_root() {
        assert_eq!(normalize_name("./a/b/").as_deref(), Some("a/b"));
        assert_eq!(normalize_name("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize_name("../x"), None);
        assert_eq!(normalize_name("a/../../x"), None);
        assert_eq!(normalize_name("/etc/passwd"), None);
    }

    #[test]
    fn members_resolve_through_links_but_not_out() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_path("blobs/x.tar").unwrap();
        h.set_cksum();
        b.append(&h, &b"hello"[..]).unwrap();
        for (name, target) in [
            ("a/layer.tar", "../blobs/x.tar"),
            ("evil", "../../etc/passwd"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_path(name).unwrap();
            h.set_link_name(target).unwrap();
            h.set_cksum();
            b.append(&h, &b""[..]).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        let ix = ArchiveIndex::scan(vec![f]).unwrap();
        assert_eq!(
            ix.read_small("a/layer.tar", "layer", 100).unwrap(),
            b"hello"
        );
        assert!(matches!(
            ix.read_small("evil", "layer", 100),
            Err(ArchiveError::Outside { .. })
        ));
        assert!(matches!(
            ix.read_small("../blobs/x.tar", "layer", 100),
            Err(ArchiveError::Outside { .. })
        ));
        assert!(matches!(
            ix.read_small("nope", "layer", 100),
            Err(ArchiveError::Missing { .. })
        ));
        assert!(matches!(
            ix.read_small("blobs/x.tar", "layer", 2),
            Err(ArchiveError::TooLarge { .. })
        ));
    }

    #[test]
    fn tar_out_is_readable_and_checks_sizes() {
        let mut t = TarOut::new(Vec::new());
        t.dir("d").unwrap();
        t.file("d/a", b"abc").unwrap();
        let long = format!("{}/file", "x".repeat(120));
        t.file(&long, b"long").unwrap();
        let d = t.stream("s", 3, &mut &b"xyz"[..], &mut |_| {}).unwrap();
        assert_eq!(d, Digest::of(b"xyz"));
        assert!(t.stream("s2", 4, &mut &b"xyz"[..], &mut |_| {}).is_err());
        let mut t = TarOut::new(Vec::new());
        t.file("d/a", b"abc").unwrap();
        t.file(&long, b"long").unwrap();
        let bytes = t.finish().unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["d/a".to_string(), long]);
    }
}

/// One image found in an archive, ready to load.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// The config exactly as found in the archive (its sha256 is the image ID).
    pub config: Vec<u8>,
    pub layers: Vec<LayerSource>,
    /// Names to give the image (validated `repository:tag`).
    pub names: Vec<String>,
}

/// Where one layer of an [`ImagePlan`] is in the archive.
#[derive(Debug, Clone)]
pub struct LayerSource {
    pub member: String,
    /// Digest and size of the member's bytes, when the layout declares them (OCI blobs).
    pub blob: Option<(Digest, Option<u64>)>,
}

/// Largest manifest, index or config document read from an archive.
pub const MAX_DOC_SIZE: u64 = 16 * 1024 * 1024;
