//! `ctr-img load`: images from a docker-archive or OCI-archive file (detected by content)
//! into the store.
//!
//! The archive is never extracted: its headers are scanned once and members are read in
//! place (see [`crate::image::archive::ArchiveIndex`]), so member order does not matter and
//! memory stays bounded. A compressed archive (`docker save | gzip`) is first decompressed
//! into the work dir. Each layer streams once from the archive: a plain tar into
//! [`layer::stage_layer`], which keeps it as the layer's blob, hashing it for the diff_id and
//! checking every entry on the way; a gzip or zstd member into
//! [`layer::stage_layer_from_blob_guarded`], which keeps it as received (no recompression)
//! and checks it through its decompressor. Layers are unpacked later, on first use by a
//! build. The
//! diff_id must match the config's `rootfs.diff_ids`, and a blob whose digest the layout
//! declares (OCI) must match it too. Everything is published in one transaction: on
//! any error the store is unchanged.

use crate::compression::{self, Compression};
use crate::digest::{Digest, Hasher};
use crate::image::archive::{docker_archive, oci_layout, ArchiveError, ArchiveIndex, ImagePlan};
use crate::image::config::{
    Descriptor, Manifest, RootFs, MEDIA_TYPE_DOCKER_CONFIG, MEDIA_TYPE_DOCKER_MANIFEST,
};
use crate::image::error::ImageError;
use crate::image::import::open_source;
use crate::policy::{self, Policy};
use crate::storage::unpack::UnpackOptions;
use crate::storage::{
    layer, ImageRecord, LayerMeta, Lease, StagedLayer, Store, StoreError, WorkDir,
};
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;

/// Largest archive `load` accepts, and the most bytes its layers may decompress to in
/// total (upstream's limit: 50 GiB).
pub const MAX_LOAD_SIZE: u64 = 50 * 1024 * 1024 * 1024;

/// A compressed layer may expand this many times its size once past
/// [`BOMB_FLOOR`] bytes; gzip cannot exceed ~1032:1, so only bombs in formats with higher
/// ratios (zstd, xz, bzip2) trip it.
pub const BOMB_RATIO: u64 = 1100;
pub const BOMB_FLOOR: u64 = 1024 * 1024 * 1024;

/// What `load` reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// Starting layer `n` of `total` (1-based), `size` bytes in the archive.
    Layer {
        n: usize,
        total: usize,
        id: &'a str,
        size: u64,
    },
    /// Bytes of the current layer read so far.
    Bytes(u64),
    /// The current layer is done.
    LayerDone,
    /// A layer the store already holds was skipped.
    LayerExists { id: &'a str },
}

/// One loaded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub id: String,
    pub names: Vec<String>,
}

/// Which layout an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    DockerArchive,
    Oci,
}

fn fail(path: &Path, reason: impl std::fmt::Display) -> ImageError {
    ImageError::Load {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Load every image of the archive at `path`, when `policy` lets images in from it (as
/// `docker-archive` or `oci-archive`, by its layout).
pub fn load(
    store: &Store,
    policy: &Policy,
    path: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Loaded>, ImageError> {
    let (file, _) = open_source(path, MAX_LOAD_SIZE, "load file")?;
    let ws = store.workspace("load")?;
    let file = spool_if_compressed(&ws, file).map_err(|e| fail(path, e))?;
    let ix = ArchiveIndex::scan(vec![file]).map_err(|e| fail(path, e))?;
    let (layout, plans) = plan(&ix).map_err(|e| fail(path, e))?;
    let transport = match layout {
        Layout::DockerArchive => policy::DOCKER_ARCHIVE,
        Layout::Oci => policy::OCI_ARCHIVE,
    };
    check_file_policy(policy, transport, path)?;
    load_plans(store, &ws, &ix, plans, progress).map_err(|e| match e {
        LoadError::Image(i) => i,
        other => fail(path, other),
    })
}

/// May images come in from the file `path` by `transport`? (Policy scopes name the file
/// with symlinks resolved, as containers/image does.)
pub fn check_file_policy(policy: &Policy, transport: &str, path: &Path) -> Result<(), ImageError> {
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let image = format!("{transport}:{}", full.display());
    Ok(policy.check(transport, &policy::path_scopes(&full), &image)?)
}

/// Detect the layout and read its plans.
pub fn plan(ix: &ArchiveIndex) -> Result<(Layout, Vec<ImagePlan>), ArchiveError> {
    if ix.contains(docker_archive::MANIFEST_JSON) {
        Ok((Layout::DockerArchive, docker_archive::plan(ix)?))
    } else if ix.contains(oci_layout::INDEX_JSON) {
        Ok((Layout::Oci, oci_layout::plan(ix)?))
    } else {
        Err(ArchiveError::Invalid(
            "wrong image format detected from local tarball: it has neither manifest.json \
             (docker-archive) nor index.json (OCI layout)"
                .into(),
        ))
    }
}

/// A compressed archive is decompressed into the work dir (bounded by the load limit) so
/// its members can be read in place; an uncompressed one is used as it is.
pub fn spool_if_compressed(ws: &WorkDir, file: File) -> Result<File, ArchiveError> {
    let mut head = [0u8; 8];
    let n = file
        .read_at(&mut head, 0)
        .map_err(|e| ArchiveError::Read(e.to_string()))?;
    if Compression::detect(&head[..n]) == Compression::None {
        return Ok(file);
    }
    spool(ws, file, "archive.tar", false).map(|(f, _)| f)
}

/// Decompress `src` into a new file `name` in the work dir, at most [`MAX_LOAD_SIZE`]
/// bytes; with `hash`, also returns the sha256 of the whole compressed input.
pub fn spool(
    ws: &WorkDir,
    src: File,
    name: &str,
    hash: bool,
) -> Result<(File, Option<Digest>), ArchiveError> {
    let mut hr = crate::digest::HashingReader::new(io::BufReader::with_capacity(1 << 20, src));
    let dest = ws.child(name);
    let write_err = |e: io::Error| ArchiveError::Write {
        path: dest.display().to_string(),
        source: e,
    };
    let mut out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&dest)
        .map_err(write_err)?;
    {
        let (_, dec) =
            compression::decompress(&mut hr).map_err(|e| ArchiveError::Read(e.to_string()))?;
        let mut limited = dec.take(MAX_LOAD_SIZE + 1);
        let n = copy_big(&mut limited, &mut out).map_err(|e| match e {
            CopyError::Read(e) => ArchiveError::Read(format!("decompress: {e}")),
            CopyError::Write(e) => write_err(e),
        })?;
        if n > MAX_LOAD_SIZE {
            return Err(ArchiveError::Invalid(format!(
                "the archive decompresses to more than the {MAX_LOAD_SIZE} byte load limit"
            )));
        }
    }
    let digest = if hash {
        io::copy(&mut hr, &mut io::sink()).map_err(|e| ArchiveError::Read(e.to_string()))?;
        Some(hr.finish().0)
    } else {
        None
    };
    Ok((out, digest))
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy_big(r: &mut dyn Read, w: &mut dyn io::Write) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// Errors of the shared loading engine.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{0}")]
    Invalid(String),
}

impl From<StoreError> for LoadError {
    fn from(e: StoreError) -> Self {
        LoadError::Image(ImageError::Store(e))
    }
}

/// The part of a config the loader needs.
#[derive(serde::Deserialize)]
struct ConfigHead {
    #[serde(default)]
    created: Option<String>,
    rootfs: RootFs,
}

/// Counts the raw member bytes read, reporting progress (and hashes them when asked).
struct Counting<'p, R> {
    inner: R,
    count: Rc<Cell<u64>>,
    hasher: Option<Hasher>,
    progress: &'p mut dyn FnMut(Progress),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.count.set(self.count.get() + n as u64);
        (self.progress)(Progress::Bytes(self.count.get()));
        Ok(n)
    }
}

/// Fails once a layer's decompressed bytes `out` pass the load budget `limit`, or (with
/// `check_ratio`) expand more than [`BOMB_RATIO`] times the `compressed` bytes read.
fn check_expansion(out: u64, limit: u64, compressed: u64, check_ratio: bool) -> io::Result<()> {
    if out > limit {
        return Err(io::Error::other(
            "layers decompress to more than the 50 GiB load limit",
        ));
    }
    if check_ratio && out > BOMB_FLOOR && out / BOMB_RATIO > compressed.max(1) {
        return Err(io::Error::other(format!(
            "a layer expands more than {BOMB_RATIO} times its compressed size (decompression bomb)"
        )));
    }
    Ok(())
}

/// Bounds what a layer decompresses to: the load limit overall, and a ratio to its
/// compressed size past a floor (decompression bombs).
struct Guarded<R> {
    inner: R,
    out: u64,
    limit: u64,
    compressed: Rc<Cell<u64>>,
    check_ratio: bool,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        check_expansion(
            self.out,
            self.limit,
            self.compressed.get(),
            self.check_ratio,
        )?;
        Ok(n)
    }
}

/// Stage every layer of `plans` (sharing layers between images and with the store),
/// verify them, and publish all images in one transaction.
pub fn load_plans(
    store: &Store,
    ws: &WorkDir,
    ix: &ArchiveIndex,
    plans: Vec<ImagePlan>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Loaded>, LoadError> {
    // One plan per config: the same image listed twice is loaded once with all names.
    let mut merged: Vec<(Digest, ImagePlan)> = Vec::new();
    for p in plans {
        let d = Digest::of(&p.config);
        match merged.iter_mut().find(|(md, _)| md == &d) {
            Some((_, q)) => {
                for n in p.names {
                    if !q.names.contains(&n) {
                        q.names.push(n);
                    }
                }
            }
            None => merged.push((d, p)),
        }
    }
    if merged.len() > 1 && merged.iter().any(|(_, p)| p.names.is_empty()) {
        return Err(LoadError::Invalid(format!(
            "the archive holds {} images and not all of them are named: refusing to load unnamed images from a multi-image archive",
            merged.len()
        )));
    }

    let mut heads = Vec::with_capacity(merged.len());
    for (d, p) in &merged {
        let head: ConfigHead = serde_json::from_slice(&p.config)
            .map_err(|e| LoadError::Invalid(format!("image config {d}: {e}")))?;
        if head.rootfs.diff_ids.len() != p.layers.len() {
            return Err(LoadError::Invalid(format!(
                "image config {d} lists {} layers (rootfs.diff_ids) but the archive gives {}",
                head.rootfs.diff_ids.len(),
                p.layers.len()
            )));
        }
        heads.push(head);
    }

    let total_layers: usize = merged.iter().map(|(_, p)| p.layers.len()).sum();
    let mut staged: Vec<StagedLayer> = Vec::new();
    let mut metas: HashMap<Digest, LayerMeta> = HashMap::new();
    let mut leases: Vec<Lease> = Vec::new();
    let mut budget = MAX_LOAD_SIZE;
    let mut n = 0usize;
    for ((_, p), head) in merged.iter().zip(&heads) {
        let mut parent: Option<Digest> = None;
        for (src, diff_id) in p.layers.iter().zip(&head.rootfs.diff_ids) {
            n += 1;
            let chain = layer::chain_id(parent.as_ref(), diff_id);
            if metas.contains_key(&chain) {
                parent = Some(chain);
                continue;
            }
            // A layer the store already has is leased and reused, not read again.
            {
                let _g = store.read_lock()?;
                if store.layer_dir(&chain).is_dir() {
                    if let Ok(meta) = store.layer_meta(&chain) {
                        leases.push(store.lease(std::slice::from_ref(&chain))?);
                        progress(Progress::LayerExists { id: chain.short() });
                        metas.insert(chain.clone(), meta);
                        parent = Some(chain);
                        continue;
                    }
                }
            }
            let size = ix.size(&src.member, "layer")?;
            progress(Progress::Layer {
                n,
                total: total_layers,
                id: diff_id.short(),
                size,
            });
            let st = stage_one(ws, ix, src, parent.as_ref(), diff_id, &mut budget, progress)?;
            progress(Progress::LayerDone);
            metas.insert(chain.clone(), st.meta.clone());
            staged.push(st);
            parent = Some(chain);
        }
    }

    // Configs and our manifests.
    let mut blobs = Vec::new();
    let mut records = Vec::new();
    for ((config_digest, p), head) in merged.iter().zip(&heads) {
        let (cpath, cd) = ws.stage_blob(&p.config)?;
        blobs.push((cpath, cd));
        let mut parent: Option<Digest> = None;
        let mut chains = Vec::new();
        let mut layers = Vec::new();
        let mut size = 0u64;
        for diff_id in &head.rootfs.diff_ids {
            let chain = layer::chain_id(parent.as_ref(), diff_id);
            let meta = metas
                .get(&chain)
                .ok_or_else(|| LoadError::Invalid(format!("internal: layer {chain} not staged")))?;
            layers.push(Descriptor {
                media_type: meta.media_type.clone(),
                size: meta.blob_size,
                digest: meta.blob.clone(),
            });
            size += meta.size;
            chains.push(chain.clone());
            parent = Some(chain);
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_DOCKER_MANIFEST.into(),
            config: Descriptor {
                media_type: MEDIA_TYPE_DOCKER_CONFIG.into(),
                size: p.config.len() as u64,
                digest: config_digest.clone(),
            },
            layers,
        };
        let mbytes =
            serde_json::to_vec(&manifest).map_err(|e| LoadError::Invalid(e.to_string()))?;
        let (mpath, md) = ws.stage_blob(&mbytes)?;
        blobs.push((mpath, md.clone()));
        records.push(ImageRecord {
            id: config_digest.hex().to_string(),
            names: p.names.clone(),
            layers: chains,
            manifest: md,
            created: head
                .created
                .clone()
                .unwrap_or_else(crate::image::config::now_rfc3339),
            size,
        });
    }
    // Only what is published, file by file (configs and manifests were synced by
    // stage_blob): a `syncfs` would also wait for every other process's dirty data.
    for st in &staged {
        st.sync()?;
    }

    let mut tx = store.begin()?;
    for st in &staged {
        tx.publish_layer(st)?;
    }
    for (path, d) in &blobs {
        if path.exists() {
            tx.publish_blob(path, d)?;
        }
    }
    let mut out = Vec::new();
    for mut rec in records {
        let mut names = tx
            .index
            .get(&rec.id)
            .map(|r| r.names.clone())
            .unwrap_or_default();
        for n in &rec.names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        out.push(Loaded {
            id: rec.id.clone(),
            names: rec.names.clone(),
        });
        rec.names = names;
        tx.index.put(rec);
    }
    tx.commit()?;
    drop(leases);
    Ok(out)
}

fn stage_one(
    ws: &WorkDir,
    ix: &ArchiveIndex,
    src: &crate::image::archive::LayerSource,
    parent: Option<&Digest>,
    diff_id: &Digest,
    budget: &mut u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<StagedLayer, LoadError> {
    let invalid =
        |e: &dyn std::fmt::Display| LoadError::Invalid(format!("layer {}: {e}", src.member));
    let mut head = [0u8; 8];
    let mut got = 0;
    {
        let mut r = ix.open(&src.member, "layer")?;
        while got < head.len() {
            match r.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(invalid(&e)),
            }
        }
    }
    let kind = Compression::detect(&head[..got]);
    let count = Rc::new(Cell::new(0u64));
    let mut counting = Counting {
        inner: ix.open(&src.member, "layer")?,
        count: count.clone(),
        // Only a layer stored in another form than the member needs the member's own hash.
        hasher: matches!(kind, Compression::Xz | Compression::Bzip2).then(Hasher::new),
        progress,
    };
    let opts = UnpackOptions {
        allow_devices: false,
        whiteouts: true,
    };
    let limit = *budget;
    let (res, used) = match kind {
        // Kept as received (like a pulled layer): no recompression, pushed as it is.
        Compression::Gzip | Compression::Zstd => {
            let used = Cell::new(0u64);
            let mut guard = |out: u64| -> io::Result<()> {
                used.set(out);
                check_expansion(out, limit, count.get(), true)
            };
            let res = layer::stage_layer_from_blob_guarded(
                ws,
                &mut counting,
                layer::layer_media_type(false, kind),
                parent,
                opts,
                &mut guard,
            );
            (res, used.get())
        }
        // The tar itself: it becomes the layer's blob as it is checked.
        Compression::None => {
            let mut guarded = Guarded {
                inner: &mut counting,
                out: 0,
                limit,
                compressed: count.clone(),
                check_ratio: false,
            };
            let res = layer::stage_layer(ws, &mut guarded, parent, opts);
            (res, guarded.out)
        }
        // No layer media type names xz or bzip2: the layer is stored as its tar.
        Compression::Xz | Compression::Bzip2 => {
            let (_, dec) = compression::decompress(&mut counting).map_err(|e| invalid(&e))?;
            let mut guarded = Guarded {
                inner: dec,
                out: 0,
                limit,
                compressed: count.clone(),
                check_ratio: true,
            };
            let res = layer::stage_layer(ws, &mut guarded, parent, opts);
            (res, guarded.out)
        }
    };
    let st = res.map_err(|e| match e {
        StoreError::Unpack(u) => invalid(&u),
        other => LoadError::from(other),
    })?;
    *budget = budget.saturating_sub(used);
    // Whatever the decompressor left unread still counts for the member's digest.
    io::copy(&mut counting, &mut io::sink()).map_err(|e| invalid(&e))?;
    let (raw_digest, raw_len) = match counting.hasher.take() {
        Some(h) => {
            let len = h.len();
            (h.finish(), len)
        }
        None => (st.meta.blob.clone(), st.meta.blob_size),
    };
    if let Some((want, want_size)) = &src.blob {
        if &raw_digest != want {
            return Err(ArchiveError::Digest {
                name: src.member.clone(),
                expected: want.clone(),
                actual: raw_digest,
            }
            .into());
        }
        if let Some(s) = want_size {
            if *s != raw_len {
                return Err(LoadError::Invalid(format!(
                    "layer {} is {raw_len} bytes but its descriptor says {s}",
                    src.member
                )));
            }
        }
    }
    if &st.meta.diff_id != diff_id {
        return Err(LoadError::Invalid(format!(
            "layer {} does not match the image config: its diff_id is {}, the config says {diff_id}",
            src.member, st.meta.diff_id
        )));
    }
    Ok(st)
}
