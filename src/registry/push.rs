//! Push: a stored image to a registry. Blobs the destination repository has are skipped
//! (`HEAD`), blobs known to be in another repository of the same registry are mounted
//! from there, the rest are uploaded (in parallel; in one PUT, or in PATCH chunks). The
//! layer blobs pushed are the ones the store keeps (`LayerMeta.blob`); the manifest is
//! Docker schema2 or OCI.

use crate::config::Settings;
use crate::digest::Digest;
use crate::registry::client::{BlobOutcome, RegistryClient};
use crate::registry::media::{self, Descriptor, Format, ImageManifest};
use crate::registry::name::{ManifestRef, RemoteName};
use crate::registry::{sources, RegistryError};
use crate::storage::{LayerMeta, Store};
use reqwest::blocking::Body;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

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

/// The manifest to push for a stored image, in `format`. For Docker, the stored manifest
/// is sent byte for byte when it already describes exactly these blobs.
pub fn manifest_for(
    store: &Store,
    stored_manifest: &Digest,
    config_bytes: &[u8],
    config_digest: &Digest,
    metas: &[LayerMeta],
    format: Format,
) -> Result<(String, Vec<u8>), RegistryError> {
    if format == Format::Docker {
        if let Ok(bytes) = store.read_blob(stored_manifest) {
            if let Ok((mt, media::Fetched::Image(m))) = media::parse_manifest("", &bytes) {
                if mt == media::DOCKER_MANIFEST
                    && m.config.digest == *config_digest
                    && m.layers.len() == metas.len()
                    && m.layers.iter().zip(metas).all(|(d, l)| d.digest == l.blob)
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
    let mut layers = Vec::with_capacity(metas.len());
    for m in metas {
        let c = media::layer_compression(&m.media_type).ok_or_else(|| {
            RegistryError::Unsupported(format!(
                "layer {} has unsupported media type {:?}",
                m.blob, m.media_type
            ))
        })?;
        layers.push(desc(
            media::layer_media_type(format, c),
            m.blob_size,
            &m.blob,
        ));
    }
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

/// A request body reading `len` bytes at `offset` of a store blob.
fn blob_body(store: &Store, d: &Digest, offset: u64, len: u64) -> Result<Body, RegistryError> {
    let mut f = store.open_blob(d)?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| crate::storage::StoreError::io(&store.blob_path(d), e))?;
    Ok(Body::sized(f.take(len), len))
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
    let (manifest_type, manifest_bytes) = manifest_for(
        store,
        &rec.manifest,
        &config_bytes,
        &config_digest,
        &metas,
        opts.format,
    )?;

    let client = RegistryClient::connect(settings, &dest.registry, dest.api_host(), None)?;
    let repo = &dest.repository;
    let prefix = format!("{}/", dest.registry);

    // Layers (distinct blobs), then the config.
    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    for m in &metas {
        if !blobs.iter().any(|(d, _)| *d == m.blob) {
            blobs.push((m.blob.clone(), m.blob_size));
        }
    }
    let counts = Mutex::new((0usize, 0usize, 0usize));
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    let cancel = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let one = |d: &Digest, size: u64| -> Result<(), RegistryError> {
        progress(PushProgress::BlobStart { digest: d, size });
        let from: Vec<String> = sources::lookup(store.root(), d)
            .into_iter()
            .filter_map(|r| r.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let body = |off: u64, len: u64| blob_body(store, d, off, len);
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
        Ok(())
    };
    let workers = blobs.len().clamp(1, PARALLEL_UPLOADS);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some((d, size)) = blobs.get(k) else { break };
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = one(d, *size) {
                    cancel.store(true, Ordering::SeqCst);
                    let mut fe = first_error.lock().unwrap_or_else(|p| p.into_inner());
                    if fe.is_none() {
                        *fe = Some(e);
                    }
                    break;
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    one(&config_digest, config_bytes.len() as u64)?;
    let manifest_digest = client.put_manifest(repo, tag, &manifest_type, &manifest_bytes)?;
    progress(PushProgress::ManifestDone {
        digest: &manifest_digest,
    });
    let mut all: Vec<Digest> = blobs.into_iter().map(|(d, _)| d).collect();
    all.push(config_digest);
    sources::record(store.root(), &dest.full_repository(), &all);
    let (uploaded, skipped, mounted) = counts.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(Pushed {
        destination: dest.to_string(),
        manifest_digest,
        uploaded,
        skipped,
        mounted,
    })
}
