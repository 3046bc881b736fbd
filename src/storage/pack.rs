//! Turning an overlay diff dir (a RUN's upper dir, a COPY's staging dir) back into a layer tar.
//!
//! The output is deterministic: entries in byte order of their paths (a directory before its
//! contents), numeric owners without names, whole-second mtimes (optionally clamped or fixed),
//! no atime/ctime, no sparse entries, GNU long-name records for long paths and PAX records only
//! for xattrs. Overlay whiteouts (0/0 character devices) become OCI `.wh.NAME` files and
//! opaque directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry.

use crate::storage::unpack::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// How entry times are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamps {
    /// The file's own mtime (whole seconds).
    Keep,
    /// min(mtime, t): `SOURCE_DATE_EPOCH` semantics.
    Clamp(i64),
    /// Every entry gets t: `--build-static build-time=...`.
    Fixed(i64),
}

#[derive(Debug, Clone, Copy)]
pub struct PackOptions {
    pub timestamps: Timestamps,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: unsupported file type")]
    Unsupported { path: PathBuf },
}

fn io_err(path: &Path, source: io::Error) -> PackError {
    PackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Xattrs carried into layers (the same set the unpacker applies).
fn wanted_xattr(name: &str) -> bool {
    name.starts_with("user.") || name == "security.capability"
}

struct Packer<'a, W: Write> {
    out: tar::Builder<W>,
    root: &'a Path,
    opts: PackOptions,
    /// (dev, ino) of multiply-linked files already written → their archive path.
    links: HashMap<(u64, u64), PathBuf>,
    entries: u64,
    /// File data is copied through this (the tar builder would use 8 KiB reads).
    buf: Vec<u8>,
}

/// One PAX record: "<len> key=value\n" where len counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body_len + 1;
    while len.to_string().len() + body_len != len {
        len = len.to_string().len() + body_len;
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

impl<W: Write> Packer<'_, W> {
    fn mtime(&self, md: &Metadata) -> u64 {
        let own = md.mtime().max(0);
        (match self.opts.timestamps {
            Timestamps::Keep => own,
            Timestamps::Clamp(t) => own.min(t.max(0)),
            Timestamps::Fixed(t) => t.max(0),
        }) as u64
    }

    fn base_header(&self, md: &Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mtime(self.mtime(md));
        h.set_size(0);
        h
    }

    fn write_xattrs(&mut self, src: &Path, name: &Path) -> Result<(), PackError> {
        let names = match xattr::list(src) {
            Ok(n) => n,
            // Filesystems without xattr support have none to carry.
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
            Err(e) => return Err(io_err(src, e)),
        };
        let mut keys: Vec<String> = names
            .filter_map(|n| n.to_str().map(str::to_string))
            .filter(|n| wanted_xattr(n))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort();
        let mut data = Vec::new();
        for k in keys {
            if let Some(v) = xattr::get(src, &k).map_err(|e| io_err(src, e))? {
                data.extend(pax_record(&format!("SCHILY.xattr.{k}"), &v));
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        let pax_name = format!(
            "PaxHeaders/{}",
            name.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let pax_name: String = pax_name.chars().take(99).collect();
        h.set_path(&pax_name).map_err(|e| io_err(src, e))?;
        h.set_cksum();
        self.out.append(&h, &data[..]).map_err(|e| io_err(src, e))
    }

    fn entry(&mut self, src: &Path, rel: &Path) -> Result<(), PackError> {
        let md = std::fs::symlink_metadata(src).map_err(|e| io_err(src, e))?;
        let ft = md.file_type();
        let io = |e| io_err(src, e);
        if ft.is_char_device() && md.rdev() == 0 {
            // Overlay whiteout → OCI whiteout file.
            let name = rel
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            let mut wh = OsString::from(WHITEOUT_PREFIX);
            wh.push(&name);
            let path = rel.with_file_name(wh);
            let mut h = self.base_header(&md, tar::EntryType::Regular);
            h.set_mode(0);
            h.set_uid(0);
            h.set_gid(0);
            self.out
                .append_data(&mut h, &path, io::empty())
                .map_err(io)?;
            self.entries += 1;
            return Ok(());
        }
        if ft.is_dir() {
            let mut h = self.base_header(&md, tar::EntryType::Directory);
            self.write_xattrs(src, rel)?;
            let mut name = rel.as_os_str().to_os_string();
            name.push("/");
            self.out
                .append_data(&mut h, Path::new(&name), io::empty())
                .map_err(io)?;
            self.entries += 1;
            let opaque = xattr::get(src, OVERLAY_OPAQUE_XATTR).ok().flatten();
            if opaque.as_deref() == Some(b"y") {
                let mut h = self.base_header(&md, tar::EntryType::Regular);
                h.set_mode(0);
                h.set_uid(0);
                h.set_gid(0);
                self.out
                    .append_data(&mut h, rel.join(OPAQUE_MARKER), io::empty())
                    .map_err(io)?;
                self.entries += 1;
            }
            return self.dir_children(src, rel);
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(src).map_err(io)?;
            let mut h = self.base_header(&md, tar::EntryType::Symlink);
            self.out.append_link(&mut h, rel, &target).map_err(io)?;
            self.entries += 1;
            return Ok(());
        }
        if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key) {
                    let mut h = self.base_header(&md, tar::EntryType::Link);
                    let first = first.clone();
                    self.out.append_link(&mut h, rel, &first).map_err(io)?;
                    self.entries += 1;
                    return Ok(());
                }
                self.links.insert(key, rel.to_path_buf());
            }
            self.write_xattrs(src, rel)?;
            let mut f = File::open(src).map_err(io)?;
            let mut h = self.base_header(&md, tar::EntryType::Regular);
            h.set_size(md.len());
            // The header (and any long-name record) goes through the builder with no data;
            // the data follows here, in large reads.
            self.out.append_data(&mut h, rel, io::empty()).map_err(io)?;
            // A file that changes size while packed would corrupt the archive: copy exactly
            // the size in the header, and fail if it shrank.
            let out = self.out.get_mut();
            let mut left = md.len();
            while left > 0 {
                let want = (self.buf.len() as u64).min(left) as usize;
                let n = match io::Read::read(&mut f, &mut self.buf[..want]) {
                    Ok(0) => {
                        return Err(io_err(
                            src,
                            io::Error::other("file shrank while being packed"),
                        ))
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io(e)),
                };
                out.write_all(&self.buf[..n]).map_err(io)?;
                left -= n as u64;
            }
            let rem = (md.len() % 512) as usize;
            if rem != 0 {
                out.write_all(&[0u8; 512][..512 - rem]).map_err(io)?;
            }
            self.entries += 1;
            return Ok(());
        }
        let kind = if ft.is_fifo() {
            tar::EntryType::Fifo
        } else if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            return Err(PackError::Unsupported {
                path: src.to_path_buf(),
            });
        };
        let mut h = self.base_header(&md, kind);
        if kind != tar::EntryType::Fifo {
            let rdev = md.rdev();
            h.set_device_major(nix::sys::stat::major(rdev) as u32)
                .map_err(io)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)
                .map_err(io)?;
        }
        self.out.append_data(&mut h, rel, io::empty()).map_err(io)?;
        self.entries += 1;
        Ok(())
    }

    fn dir_children(&mut self, dir: &Path, rel: &Path) -> Result<(), PackError> {
        let mut names: Vec<OsString> = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| io_err(dir, e))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            self.entry(&dir.join(&n), &rel.join(&n))?;
        }
        Ok(())
    }
}

/// Write the contents of `root` (not `root` itself) as a layer tar into `out`.
/// Returns the number of entries written.
pub fn pack_dir<W: Write>(root: &Path, out: W, opts: PackOptions) -> Result<u64, PackError> {
    let mut p = Packer {
        out: tar::Builder::new(out),
        root,
        opts,
        links: HashMap::new(),
        entries: 0,
        buf: vec![0u8; 1 << 20],
    };
    let root = p.root.to_path_buf();
    p.dir_children(&root, Path::new(""))?;
    p.out.finish().map_err(|e| io_err(&root, e))?;
    Ok(p.entries)
}

/// True when a diff dir holds no changes at all.
pub fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    Ok(std::fs::read_dir(dir)?.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::unpack::{unpack_layer, UnpackOptions};

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_record("SCHILY.xattr.user.a", b"v");
        let s = String::from_utf8(r.clone()).unwrap();
        let n: usize = s.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, r.len());
        let long = pax_record("k", &[b'x'; 95]);
        let n: usize = String::from_utf8_lossy(&long)
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(n, long.len());
    }

    #[test]
    fn pack_is_sorted_deterministic_and_roundtrips() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("b/deep")).unwrap();
        std::fs::write(src.join("b/deep/f"), b"deep").unwrap();
        std::fs::write(src.join("a"), b"a").unwrap();
        std::fs::hard_link(src.join("a"), src.join("c-hard")).unwrap();
        std::os::unix::fs::symlink("a", src.join("l")).unwrap();
        let long = "n".repeat(150);
        std::fs::write(src.join(&long), b"long").unwrap();
        let opts = PackOptions {
            timestamps: Timestamps::Fixed(1_234_567),
        };
        let mut one = Vec::new();
        pack_dir(&src, &mut one, opts).unwrap();
        let mut two = Vec::new();
        pack_dir(&src, &mut two, opts).unwrap();
        assert_eq!(one, two, "same tree, same bytes");
        let mut ar = tar::Archive::new(&one[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "a",
                "b/",
                "b/deep/",
                "b/deep/f",
                "c-hard",
                "l",
                long.as_str()
            ]
        );
        let back = t.path().join("back");
        std::fs::create_dir(&back).unwrap();
        unpack_layer(
            &one[..],
            &back,
            UnpackOptions {
                allow_devices: false,
                whiteouts: true,
            },
        )
        .unwrap();
        assert_eq!(std::fs::read(back.join("b/deep/f")).unwrap(), b"deep");
        assert_eq!(std::fs::read(back.join(&long)).unwrap(), b"long");
        let a = std::fs::metadata(back.join("a")).unwrap();
        assert_eq!(
            a.ino(),
            std::fs::metadata(back.join("c-hard")).unwrap().ino()
        );
        assert_eq!(a.mtime(), 1_234_567);
    }

    #[test]
    fn whiteouts_and_opaque_dirs_become_oci_markers() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP whiteouts_and_opaque_dirs_become_oci_markers: needs root for mknod and trusted xattrs");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("opq")).unwrap();
        nix::sys::stat::mknod(
            &src.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        xattr::set(src.join("opq"), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
        let mut out = Vec::new();
        pack_dir(
            &src,
            &mut out,
            PackOptions {
                timestamps: Timestamps::Keep,
            },
        )
        .unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec![".wh.gone", "opq/", "opq/.wh..wh..opq"]);
        // And back: the unpacker turns them into overlay form again.
        let back = t.path().join("back");
        std::fs::create_dir(&back).unwrap();
        unpack_layer(
            &out[..],
            &back,
            UnpackOptions {
                allow_devices: false,
                whiteouts: true,
            },
        )
        .unwrap();
        let md = std::fs::symlink_metadata(back.join("gone")).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0);
        assert_eq!(
            xattr::get(back.join("opq"), OVERLAY_OPAQUE_XATTR)
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
    }
}
