//! The data root: content-addressed blobs, unpacked layers, image records.
//!
//! ```text
//! <dataroot>/
//!   store.lock                  the store lock (see crate::lock)
//!   images.json                 every image record (replaced atomically)
//!   blobs/sha256/<hex>          layer blobs (tars, or as received), configs, manifests
//!   layers/<chain-id>/diff/     unpacked layer, an overlay lowerdir (made on first use)
//!   layers/<chain-id>/meta.json diff_id, parent, sizes, blob digest and media type, gzip form
//!   leases/<chain-id>.lock      shared locks of layers in use
//!   tmp/                        work in progress; garbage after a crash
//! ```
//!
//! Rules: nothing enters `blobs/`, `layers/` or `images.json` except by `rename` of a complete,
//! synced object (fsync'd file by file, or the work dir `syncfs`'d once), and only under the
//! exclusive store lock ([`Transaction`]). Heavy work (unpack, pack, hash) happens in a
//! [`WorkDir`] under `tmp/` without that lock.
//!
//! Layers are published with their blob and meta.json; a layer loaded, imported or pulled
//! gets its `diff/` dir only when a build first needs it ([`Store::unpacked_layer`]: unpacked
//! in a work dir by a leaseholder, synced, renamed into place under the exclusive lock), so
//! moving images in and out of the store writes every byte once. Removal first
//! rewrites `images.json`, then sweeps what nothing references, so a crash at any point leaves
//! a valid store with, at worst, garbage for the next sweep.

pub mod fsutil;
pub mod index;
pub mod layer;
pub mod overlay;
pub mod pack;
pub mod unpack;
pub mod workspace;

pub use index::{FindError, ImageIndex, ImageRecord};
pub use layer::{LayerMeta, StagedLayer};
pub use workspace::WorkDir;

use crate::digest::Digest;
use crate::lock::{self, LockGuard, Mode};
use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("data root is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Find(#[from] FindError),
    #[error(transparent)]
    Unpack(#[from] unpack::UnpackError),
    #[error("blob {0} is missing from the store")]
    MissingBlob(Digest),
    #[error("layer {0} is missing from the store")]
    MissingLayer(Digest),
}

impl StoreError {
    pub fn io(path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An open data root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    runroot: PathBuf,
}

/// Shared locks on layers in use; `rm` and GC keep leased layers.
#[derive(Debug)]
pub struct Lease {
    _guards: Vec<LockGuard>,
}

/// What a sweep removed.
#[derive(Debug, Default, Clone)]
pub struct Sweep {
    pub layers: Vec<Digest>,
    pub blobs: usize,
}

fn mkdir_private(p: &Path) -> Result<(), StoreError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| StoreError::io(p, e))
}

impl Store {
    /// Open (creating if needed) a data root and run root, and clean scratch space left by
    /// dead processes.
    pub fn open(dataroot: &Path, runroot: &Path) -> Result<Store, StoreError> {
        for d in ["blobs/sha256", "layers", "leases", "tmp"] {
            mkdir_private(&dataroot.join(d))?;
        }
        mkdir_private(&runroot.join("builds"))?;
        let store = Store {
            root: dataroot.to_path_buf(),
            runroot: runroot.to_path_buf(),
        };
        workspace::clean_tmp(&store.tmp_dir());
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn runroot(&self) -> &Path {
        &self.runroot
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn index_path(&self) -> PathBuf {
        self.root.join("images.json")
    }
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }
    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("layers").join(chain.hex())
    }
    /// The unpacked layer, usable as an overlay lowerdir.
    pub fn layer_diff(&self, chain: &Digest) -> PathBuf {
        self.layer_dir(chain).join("diff")
    }

    /// The unpacked form of a layer (`layers/<chain>/diff`), unpacking its blob first if
    /// this is the layer's first use. The caller must hold a [`Lease`] on the layer.
    ///
    /// Concurrent callers serialise on a per-layer lock in `tmp/`, so the work is done once;
    /// the finished dir is synced and renamed into the layer under the exclusive store lock,
    /// so a crash leaves either no `diff/` or a complete one.
    pub fn unpacked_layer(&self, chain: &Digest) -> Result<PathBuf, StoreError> {
        let diff = self.layer_diff(chain);
        if diff.is_dir() {
            return Ok(diff);
        }
        let _one = lock::lock(
            &self.tmp_dir().join(format!("unpack-{}.lock", chain.hex())),
            Mode::Exclusive,
        )?;
        if diff.is_dir() {
            return Ok(diff);
        }
        let meta = self.layer_meta(chain)?;
        let ws = self.workspace("unpack")?;
        let staged = ws.child("diff");
        std::fs::create_dir(&staged).map_err(|e| StoreError::io(&staged, e))?;
        layer::unpack_blob(self.open_blob(&meta.blob)?, &meta, &staged)?;
        fsutil::syncfs(ws.path()).map_err(|e| StoreError::io(ws.path(), e))?;
        let _g = lock::lock(&lock::store_lock_path(&self.root), Mode::Exclusive)?;
        let dir = self.layer_dir(chain);
        if !dir.join("meta.json").is_file() {
            return Err(StoreError::MissingLayer(chain.clone()));
        }
        match std::fs::rename(&staged, &diff) {
            Ok(()) => {}
            // Another process (one not using the per-layer lock) got there first.
            Err(_) if diff.is_dir() => return Ok(diff),
            Err(e) => return Err(StoreError::io(&diff, e)),
        }
        fsutil::fsync_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(diff)
    }

    /// A new scratch dir for one operation.
    pub fn workspace(&self, purpose: &str) -> Result<WorkDir, StoreError> {
        WorkDir::create(&self.tmp_dir(), purpose)
    }

    /// Take the store lock shared: the index and the layers it names stay put while held.
    pub fn read_lock(&self) -> Result<LockGuard, StoreError> {
        Ok(lock::lock(
            &lock::store_lock_path(&self.root),
            Mode::Shared,
        )?)
    }

    /// Read `images.json`. Safe without a lock (it is replaced atomically); hold
    /// [`Store::read_lock`] when the answer must stay true for a while.
    pub fn index(&self) -> Result<ImageIndex, StoreError> {
        let p = self.index_path();
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(ImageIndex {
                    version: ImageIndex::VERSION,
                    images: vec![],
                })
            }
            Err(e) => return Err(StoreError::io(&p, e)),
        };
        let ix: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", p.display())))?;
        ix.validate()
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", p.display())))?;
        Ok(ix)
    }

    pub fn layer_meta(&self, chain: &Digest) -> Result<LayerMeta, StoreError> {
        let dir = self.layer_dir(chain);
        if !dir.exists() {
            return Err(StoreError::MissingLayer(chain.clone()));
        }
        layer::read_meta(&dir)
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob(d.clone()),
            _ => StoreError::io(&p, e),
        })
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(d);
        std::fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob(d.clone()),
            _ => StoreError::io(&p, e),
        })
    }

    /// Lease layers. Call with the store lock held (shared, or inside a transaction), so
    /// that a sweep cannot run between finding the layers and leasing them.
    pub fn lease(&self, chains: &[Digest]) -> Result<Lease, StoreError> {
        let mut guards = Vec::with_capacity(chains.len());
        for c in chains {
            guards.push(lock::lock(
                &lock::lease_lock_path(&self.root, c.hex()),
                Mode::Shared,
            )?);
        }
        Ok(Lease { _guards: guards })
    }

    /// Record (or, with `None`, forget) the gzip form of an uncompressed layer in its
    /// meta.json: the meta is rewritten whole (synced, renamed over the old one, its
    /// directory synced) under the exclusive store lock, so readers see the old or the new
    /// meta and concurrent recorders do not lose each other's fields. A layer that is gone
    /// is left alone (nothing to record).
    pub fn set_layer_gzip(
        &self,
        chain: &Digest,
        gzip: Option<&layer::CompressedBlob>,
    ) -> Result<(), StoreError> {
        let _g = lock::lock(&lock::store_lock_path(&self.root), Mode::Exclusive)?;
        let dir = self.layer_dir(chain);
        if !dir.is_dir() {
            return Ok(());
        }
        let mut meta = layer::read_meta(&dir)?;
        if meta.gzip.as_ref() == gzip {
            return Ok(());
        }
        meta.gzip = gzip.cloned();
        let bytes =
            serde_json::to_vec_pretty(&meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tmp = self
            .tmp_dir()
            .join(format!("meta-{}.tmp", fsutil::random_hex(8)));
        let dest = dir.join("meta.json");
        fsutil::write_atomic(&tmp, &dest, &bytes).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            StoreError::io(&dest, e)
        })
    }

    /// Start a change: takes the store lock exclusively and reads the index.
    pub fn begin(&self) -> Result<Transaction<'_>, StoreError> {
        let guard = lock::lock(&lock::store_lock_path(&self.root), Mode::Exclusive)?;
        let index = self.index()?;
        Ok(Transaction {
            store: self,
            _guard: guard,
            original: index.clone(),
            index,
            trash: Vec::new(),
        })
    }
}

/// A change to the store under its exclusive lock. Publish objects, edit `index`, then
/// [`Transaction::commit`]. Dropping without commit leaves `images.json` as it was (objects
/// already published are unreferenced garbage for the next sweep).
pub struct Transaction<'a> {
    store: &'a Store,
    _guard: LockGuard,
    original: ImageIndex,
    pub index: ImageIndex,
    trash: Vec<PathBuf>,
}

impl Transaction<'_> {
    pub fn store(&self) -> &Store {
        self.store
    }

    /// Move a complete, synced blob file into `blobs/` (or drop it if already there).
    /// "Synced": the caller has `syncfs`'d its work dir (or fsync'd the file) since writing it.
    pub fn publish_blob(&mut self, staged: &Path, d: &Digest) -> Result<(), StoreError> {
        let dest = self.store.blob_path(d);
        if dest.exists() {
            let _ = std::fs::remove_file(staged);
            return Ok(());
        }
        std::fs::rename(staged, &dest).map_err(|e| StoreError::io(&dest, e))
    }

    /// Move a staged layer (and its blob) into the store, unless an identical layer is there;
    /// then the staged `diff/` (if any) is still given to that layer when it has none yet.
    pub fn publish_layer(&mut self, staged: &StagedLayer) -> Result<(), StoreError> {
        self.publish_blob(&staged.blob_path, &staged.meta.blob)?;
        let dest = self.store.layer_dir(&staged.meta.chain_id);
        if dest.exists() {
            let (from, to) = (staged.dir.join("diff"), dest.join("diff"));
            if from.is_dir() && !to.exists() {
                std::fs::rename(&from, &to).map_err(|e| StoreError::io(&to, e))?;
                fsutil::fsync_dir(&dest).map_err(|e| StoreError::io(&dest, e))?;
            }
            return Ok(());
        }
        std::fs::rename(&staged.dir, &dest).map_err(|e| StoreError::io(&dest, e))
    }

    /// Write the index if it changed, then sweep unreferenced objects.
    pub fn commit(mut self) -> Result<Sweep, StoreError> {
        for d in ["blobs/sha256", "layers"] {
            fsutil::fsync_dir(&self.store.root.join(d))
                .map_err(|e| StoreError::io(&self.store.root, e))?;
        }
        if self.index != self.original {
            self.index.version = ImageIndex::VERSION;
            let bytes =
                serde_json::to_vec(&self.index).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let tmp = self
                .store
                .tmp_dir()
                .join(format!("index-{}.tmp", fsutil::random_hex(8)));
            let dest = self.store.index_path();
            fsutil::write_atomic(&tmp, &dest, &bytes).map_err(|e| StoreError::io(&dest, e))?;
        }
        let sweep = self.sweep()?;
        let trash = std::mem::take(&mut self.trash);
        drop(self);
        for t in trash {
            let _ = std::fs::remove_dir_all(t);
        }
        Ok(sweep)
    }

    /// Remove layers and blobs nothing references (and no one leases). Layers go to
    /// `tmp/trash-*` by rename now and are deleted after the lock is released.
    fn sweep(&mut self) -> Result<Sweep, StoreError> {
        let store = self.store;
        let mut out = Sweep::default();
        let referenced: HashSet<&Digest> = self
            .index
            .images
            .iter()
            .flat_map(|i| i.layers.iter())
            .collect();
        let mut keep_blobs: HashSet<String> = HashSet::new();
        for img in &self.index.images {
            keep_blobs.insert(img.id.clone());
            keep_blobs.insert(img.manifest.hex().to_string());
        }
        let layers_dir = store.root.join("layers");
        let entries = std::fs::read_dir(&layers_dir).map_err(|e| StoreError::io(&layers_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&layers_dir, e))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str() else { continue };
            let Ok(chain) = Digest::from_hex(hex) else {
                continue;
            };
            let dir = entry.path();
            let keep = if referenced.contains(&chain) {
                true
            } else {
                let lease_path = lock::lease_lock_path(&store.root, hex);
                match lock::try_lock(&lease_path, Mode::Exclusive)? {
                    None => true,
                    Some(g) => {
                        let trash = store
                            .tmp_dir()
                            .join(format!("trash-{}", fsutil::random_hex(8)));
                        std::fs::rename(&dir, &trash).map_err(|e| StoreError::io(&dir, e))?;
                        let _ = std::fs::remove_file(g.path());
                        self.trash.push(trash);
                        out.layers.push(chain.clone());
                        false
                    }
                }
            };
            if keep {
                match layer::read_meta(&dir) {
                    Ok(meta) => {
                        keep_blobs.insert(meta.blob.hex().to_string());
                    }
                    Err(e) => tracing::warn!("layer {hex}: {e}"),
                }
            }
        }
        let blobs_dir = store.root.join("blobs/sha256");
        let entries = std::fs::read_dir(&blobs_dir).map_err(|e| StoreError::io(&blobs_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&blobs_dir, e))?;
            let name = entry.file_name();
            if name.to_str().is_some_and(|n| keep_blobs.contains(n)) {
                continue;
            }
            std::fs::remove_file(entry.path()).map_err(|e| StoreError::io(&entry.path(), e))?;
            out.blobs += 1;
        }
        // Index and layer-meta temp files of writers that died mid-write.
        if let Ok(entries) = std::fs::read_dir(store.tmp_dir()) {
            for e in entries.flatten() {
                if e.file_name().to_str().is_some_and(|n| {
                    (n.starts_with("index-") || n.starts_with("meta-")) && n.ends_with(".tmp")
                }) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(out)
    }
}
