//! Push: a stored image to a registry. Blobs the destination repository has are skipped
//! (`HEAD`), blobs known to be in another repository of the same registry are mounted
//! from there, the rest are uploaded (in parallel; in one PUT, or in PATCH chunks).
//!
//! Layers stored compressed (pulled, or loaded compressed) are pushed as they are. Layers
//! stored as uncompressed tars (built, imported, loaded) are gzip-compressed here, with the
//! pinned block-parallel encoder ([`compression::gzip_blocks`]: the same tar always gives
//! the same bytes, so the same image always gives the same manifest digest), into the push's
//! work dir. The digest and size of that gzip form are recorded in the layer's meta
//! ([`LayerMeta::gzip`]), so a later push knows the digest without compressing: it can skip
//! (`HEAD`) or mount the blob, and compresses again only to upload it. The manifest is
//! Docker schema2 or OCI.

use crate::compression::{self, Compression};
use crate::config::Settings;
use crate::digest::{Digest, HashingWriter};
use crate::registry::client::{BlobOutcome, RegistryClient, Upload};
use crate::registry::media::{self, Descriptor, Format, ImageManifest, LayerCompression};
use crate::registry::name::{ManifestRef, RemoteName};
use crate::registry::{sources, RegistryError};
use crate::storage::layer::CompressedBlob;
use crate::storage::{LayerMeta, Store, StoreError, WorkDir};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Blobs uploaded at once.
pub const PARALLEL_UPLOADS: usize = 4;

/// How to push.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    pub format: Format,
    /// Upload in PATCH chunks of this many bytes (monolithic PUT when `None`).
    pub chunk_size: Option<u64>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            format: Format::Docker,
            chunk_size: None,
        }
    }
}

/// What a push reports as it goes (from several threads).
#[derive(Debug, Clone)]
pub enum PushProgress<'a> {
    BlobStart {
        digest: &'a Digest,
        size: u64,
    },
    BlobDone {
        digest: &'a Digest,
        outcome: BlobOutcome,
    },
    ManifestDone {
        digest: &'a Digest,
    },
}

pub type PushProgressFn<'a> = &'a (dyn Fn(PushProgress<'_>) + Sync);

/// The result of a push.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub destination: String,
    pub manifest_digest: Digest,
    pub uploaded: usize,
    pub skipped: usize,
    pub mounted: usize,
}

/// A layer blob as the registry gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedLayer {
    pub digest: Digest,
    pub size: u64,
    pub compression: LayerCompression,
}

fn layer_compression(c: Compression, meta: &LayerMeta) -> Result<LayerCompression, RegistryError> {
    match c {
        Compression::Gzip => Ok(LayerCompression::Gzip),
        Compression::Zstd => Ok(LayerCompression::Zstd),
        Compression::None => Ok(LayerCompression::None),
        Compression::Xz | Compression::Bzip2 => Err(RegistryError::Unsupported(format!(
            "layer {} has unsupported media type {:?}",
            meta.blob, meta.media_type
        ))),
    }
}

/// The manifest to push for a stored image, in `format`, with `layers` as pushed. For
/// Docker, the stored manifest is sent byte for byte when it already describes exactly
/// these blobs (a pulled image).
pub fn manifest_for(
    store: &Store,
    stored_manifest: &Digest,
    config_bytes: &[u8],
    config_digest: &Digest,
    layers: &[PushedLayer],
    format: Format,
) -> Result<(String, Vec<u8>), RegistryError> {
    if format == Format::Docker {
        if let Ok(bytes) = store.read_blob(stored_manifest) {
            if let Ok((mt, media::Fetched::Image(m))) = media::parse_manifest("", &bytes) {
                if mt == media::DOCKER_MANIFEST
                    && m.config.digest == *config_digest
                    && m.layers.len() == layers.len()
                    && m.layers
                        .iter()
                        .zip(layers)
                        .all(|(d, l)| d.digest == l.digest && d.size == l.size)
                {
                    return Ok((mt, bytes));
                }
            }
        }
    }
    let desc = |mt: &str, size: u64, digest: &Digest| Descriptor {
        media_type: mt.to_string(),
        size,
        digest: digest.clone(),
        platform: None,
        urls: vec![],
        annotations: None,
    };
    let layers = layers
        .iter()
        .map(|l| {
            desc(
                media::layer_media_type(format, l.compression),
                l.size,
                &l.digest,
            )
        })
        .collect();
    let (mt, config_mt) = match format {
        Format::Docker => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
        Format::Oci => (media::OCI_MANIFEST, media::OCI_CONFIG),
    };
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(mt.to_string()),
        config: desc(config_mt, config_bytes.len() as u64, config_digest),
        layers,
    };
    let bytes = serde_json::to_vec(&m).map_err(|e| RegistryError::Other(e.to_string()))?;
    Ok((mt.to_string(), bytes))
}

/// A request body reading `len` bytes at `offset` of a file.
fn file_body(path: &Path, offset: u64, len: u64) -> Result<Upload, RegistryError> {
    let io = |e| RegistryError::Store(StoreError::io(path, e));
    let mut f = File::open(path).map_err(io)?;
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    Ok(Upload::new(f.take(len), len))
}

/// Threads compressing one layer.
fn compress_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Compress the uncompressed store blob of `meta` into a new file of `ws` with the pinned
/// encoder; returns the file and the digest and size of what it holds.
pub fn gzip_layer(
    store: &Store,
    ws: &WorkDir,
    meta: &LayerMeta,
) -> Result<(PathBuf, CompressedBlob), RegistryError> {
    let src = store.open_blob(&meta.blob)?;
    let path = ws.child(&format!(
        "gzip-{}-{}",
        meta.blob.hex(),
        crate::storage::fsutil::random_hex(4)
    ));
    let io = |e| RegistryError::Store(StoreError::io(&path, e));
    let out = File::create(&path).map_err(io)?;
    let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, out));
    let n = compression::gzip_blocks(src, &mut w, compress_threads()).map_err(io)?;
    if n != meta.blob_size {
        return Err(RegistryError::Store(StoreError::Corrupt(format!(
            "blob {} is {n} bytes, its layer records {}",
            meta.blob, meta.blob_size
        ))));
    }
    let (digest, size, w) = w.finish();
    w.into_inner().map_err(|e| io(e.into_error()))?;
    Ok((path, CompressedBlob { digest, size }))
}

/// Where the bytes of one pushed layer come from.
enum Source<'a> {
    /// The store blob as it is.
    Stored,
    /// The gzip form, compressed already (its file).
    Compressed(PathBuf),
    /// The gzip form of a recorded digest, compressed only if an upload needs it.
    Lazy(&'a OnceLock<Result<PathBuf, String>>),
}

/// Push the stored image `image` (a name or ID) to `destination`
/// (`registry/repository[:tag]`). Entry point for `ctr-img push` and build `-o docker://`.
pub fn push(
    store: &Store,
    settings: &Settings,
    image: &str,
    destination: &str,
    opts: PushOptions,
    progress: PushProgressFn<'_>,
) -> Result<Pushed, RegistryError> {
    let dest = RemoteName::parse_qualified(destination)?;
    let ManifestRef::Tag(tag) = &dest.reference else {
        return Err(RegistryError::invalid(
            format!("destination {destination:?}"),
            "push to a tag, not a digest",
        ));
    };
    // Find the image and lease its layers for the duration of the push.
    let (rec, _lease) = {
        let _g = store.read_lock()?;
        let index = store.index()?;
        let rec = index
            .find(image)
            .map_err(|e| RegistryError::Store(e.into()))?
            .clone();
        let lease = store.lease(&rec.layers)?;
        (rec, lease)
    };
    let metas = rec
        .layers
        .iter()
        .map(|c| store.layer_meta(c))
        .collect::<Result<Vec<_>, _>>()?;
    let config_digest = rec
        .config_digest()
        .map_err(|e| RegistryError::Other(e.to_string()))?;
    let config_bytes = store.read_blob(&config_digest)?;

    let client = RegistryClient::connect(settings, &dest.registry, dest.api_host(), None)?;
    let repo = &dest.repository;
    let prefix = format!("{}/", dest.registry);
    let ws = store.workspace("push")?;

    // Distinct layers (by stored blob), each pushed by one worker.
    let mut jobs: Vec<&LayerMeta> = Vec::new();
    for m in &metas {
        if !jobs.iter().any(|j| j.blob == m.blob) {
            jobs.push(m);
        }
    }
    let lazy: Vec<OnceLock<Result<PathBuf, String>>> =
        jobs.iter().map(|_| OnceLock::new()).collect();
    let pushed: Mutex<Vec<Option<PushedLayer>>> = Mutex::new(vec![None; jobs.len()]);
    let counts = Mutex::new((0usize, 0usize, 0usize));
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    let cancel = AtomicBool::new(false);
    let next = AtomicUsize::new(0);

    let send = |d: &Digest, size: u64, source: &Source<'_>, meta: Option<&LayerMeta>| {
        progress(PushProgress::BlobStart { digest: d, size });
        let from: Vec<String> = sources::lookup(store.root(), d)
            .into_iter()
            .filter_map(|r| r.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let body = |off: u64, len: u64| -> Result<Upload, RegistryError> {
            match source {
                Source::Stored => file_body(&store.blob_path(d), off, len),
                Source::Compressed(p) => file_body(p, off, len),
                Source::Lazy(cell) => {
                    let meta = meta.ok_or_else(|| {
                        RegistryError::Other("internal: lazy blob without layer".into())
                    })?;
                    let made = cell.get_or_init(|| {
                        let (p, gz) = gzip_layer(store, &ws, meta).map_err(|e| e.to_string())?;
                        if &gz.digest != d || gz.size != size {
                            // The encoder no longer gives the recorded bytes: forget the record
                            // so that the next push compresses and records afresh.
                            let _ = store.set_layer_gzip(&meta.chain_id, None);
                            return Err(format!(
                                "layer {}: its gzip form is now {} ({} bytes), not the recorded {d} ({size} bytes); the record was cleared, push again",
                                meta.diff_id, gz.digest, gz.size
                            ));
                        }
                        Ok(p)
                    });
                    match made {
                        Ok(p) => file_body(p, off, len),
                        Err(e) => Err(RegistryError::Other(e.clone())),
                    }
                }
            }
        };
        let outcome = client.ensure_blob(repo, d, size, &from, &body, opts.chunk_size)?;
        {
            let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                BlobOutcome::Uploaded => c.0 += 1,
                BlobOutcome::Exists => c.1 += 1,
                BlobOutcome::Mounted => c.2 += 1,
            }
        }
        progress(PushProgress::BlobDone { digest: d, outcome });
        Ok::<(), RegistryError>(())
    };

    let one = |k: usize| -> Result<PushedLayer, RegistryError> {
        let meta = jobs[k];
        let c = meta.compression();
        if c != Compression::None {
            let l = PushedLayer {
                digest: meta.blob.clone(),
                size: meta.blob_size,
                compression: layer_compression(c, meta)?,
            };
            send(&l.digest, l.size, &Source::Stored, None)?;
            return Ok(l);
        }
        let (gz, source) = match &meta.gzip {
            Some(gz) => (gz.clone(), Source::Lazy(&lazy[k])),
            None => {
                let (p, gz) = gzip_layer(store, &ws, meta)?;
                store.set_layer_gzip(&meta.chain_id, Some(&gz))?;
                (gz, Source::Compressed(p))
            }
        };
        send(&gz.digest, gz.size, &source, Some(meta))?;
        Ok(PushedLayer {
            digest: gz.digest,
            size: gz.size,
            compression: LayerCompression::Gzip,
        })
    };

    let workers = jobs.len().clamp(1, PARALLEL_UPLOADS);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= jobs.len() || cancel.load(Ordering::Relaxed) {
                    break;
                }
                match one(k) {
                    Ok(l) => pushed.lock().unwrap_or_else(|p| p.into_inner())[k] = Some(l),
                    Err(e) => {
                        cancel.store(true, Ordering::SeqCst);
                        let mut fe = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        if fe.is_none() {
                            *fe = Some(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let pushed = pushed.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut layers = Vec::with_capacity(metas.len());
    for m in &metas {
        let k = jobs
            .iter()
            .position(|j| j.blob == m.blob)
            .ok_or_else(|| RegistryError::Other("internal: layer not pushed".into()))?;
        let l = pushed[k]
            .clone()
            .ok_or_else(|| RegistryError::Other("internal: layer not pushed".into()))?;
        layers.push(l);
    }
    send(
        &config_digest,
        config_bytes.len() as u64,
        &Source::Stored,
        None,
    )?;
    let (manifest_type, manifest_bytes) = manifest_for(
        store,
        &rec.manifest,
        &config_bytes,
        &config_digest,
        &layers,
        opts.format,
    )?;
    let manifest_digest = client.put_manifest(repo, tag, &manifest_type, &manifest_bytes)?;
    progress(PushProgress::ManifestDone {
        digest: &manifest_digest,
    });
    let mut all: Vec<Digest> = Vec::new();
    for l in layers {
        if !all.contains(&l.digest) {
            all.push(l.digest);
        }
    }
    all.push(config_digest);
    sources::record(store.root(), &dest.full_repository(), &all);
    drop(ws);
    let (uploaded, skipped, mounted) = counts.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(Pushed {
        destination: dest.to_string(),
        manifest_digest,
        uploaded,
        skipped,
        mounted,
    })
}
