//! Pull: resolve a name (search registries for short names), fetch the manifest (a list or
//! index resolves to the host platform), the config (kept byte for byte: the image ID is
//! its digest) and the layers — in parallel, streamed to disk, size and digest checked while
//! they stream, unpacked in the same pass, diff_ids checked against the config. Layers
//! already in the store are not downloaded. Everything is published in one store
//! transaction; on any error nothing is published.

use crate::config::Settings;
use crate::digest::Digest;
use crate::image::config::{host_platform, now_rfc3339};
use crate::registry::client::RegistryClient;
use crate::registry::media::{self, Descriptor, Fetched, ImageManifest};
use crate::registry::name::{ManifestRef, RemoteName};
use crate::registry::{sources, RegistryError, MAX_CONFIG_SIZE};
use crate::storage::layer::{self, chain_id};
use crate::storage::unpack::UnpackOptions;
use crate::storage::{fsutil, ImageRecord, StagedLayer, Store, StoreError, WorkDir};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Layers downloaded at once.
pub const PARALLEL_LAYERS: usize = 4;

/// What a pull reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// Resolved to this remote image.
    Resolved {
        name: &'a str,
    },
    /// The image is already in the store.
    Present,
    LayerStart {
        digest: &'a Digest,
        size: u64,
    },
    LayerBytes {
        digest: &'a Digest,
        done: u64,
    },
    /// Already in the store: not downloaded.
    LayerExists {
        digest: &'a Digest,
    },
    LayerDone {
        digest: &'a Digest,
    },
}

/// A progress callback (called from several threads).
pub type ProgressFn<'a> = &'a (dyn Fn(Progress<'_>) + Sync);

/// The result of a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Image ID (hex of the config digest).
    pub id: String,
    /// Local name (`registry/repository:tag`); `None` for a pull by digest.
    pub name: Option<String>,
    /// Digest of the manifest that was pulled (the platform's, for lists).
    pub manifest_digest: Digest,
}

/// The parts of a config a pull needs.
#[derive(serde::Deserialize)]
struct ConfigProbe {
    #[serde(default)]
    created: Option<String>,
    rootfs: RootFsProbe,
}
#[derive(serde::Deserialize)]
struct RootFsProbe {
    diff_ids: Vec<Digest>,
}

/// Pull `reference` into the store. Short names are tried against each
/// `registries.search` entry in order. This is the entry point for `ctr-img pull` and for
/// `FROM` of an image that is not in the store.
pub fn pull(
    store: &Store,
    settings: &Settings,
    reference: &str,
    progress: ProgressFn<'_>,
) -> Result<Pulled, RegistryError> {
    let candidates = RemoteName::candidates(reference, &settings.registries)?;
    let n = candidates.len();
    let mut errors = Vec::new();
    for name in candidates {
        match pull_remote(store, settings, &name, progress) {
            Ok(p) => return Ok(p),
            Err(e) if n == 1 => return Err(e),
            Err(e @ RegistryError::Store(_)) => return Err(e),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    Err(RegistryError::Other(format!(
        "{reference}: not pulled from any search registry: {}",
        errors.join("; ")
    )))
}

/// Pull one fully qualified remote image.
pub fn pull_remote(
    store: &Store,
    settings: &Settings,
    name: &RemoteName,
    progress: ProgressFn<'_>,
) -> Result<Pulled, RegistryError> {
    let client = RegistryClient::connect(settings, &name.registry, name.api_host(), None)?;
    let display = name.to_string();
    progress(Progress::Resolved { name: &display });
    let (bytes, mt, fetched, digest) =
        client.get_manifest(&name.repository, &name.reference, &display)?;
    let (bytes, mt, manifest, digest) = match fetched {
        Fetched::Image(m) => (bytes, mt, m, digest),
        Fetched::List(list) => {
            let (arch, variant) = host_platform();
            let d = media::select_platform(&list, "linux", arch, variant).ok_or_else(|| {
                RegistryError::NotFound {
                    what: format!("image for linux/{arch} in manifest list {display}"),
                }
            })?;
            let r = ManifestRef::Digest(d.digest.clone());
            let (b, mt, f, dg) = client.get_manifest(&name.repository, &r, &display)?;
            match f {
                Fetched::Image(m) => (b, mt, m, dg),
                Fetched::List(_) => {
                    return Err(RegistryError::invalid(
                        format!("manifest list {display}"),
                        "it points to another list",
                    ))
                }
            }
        }
    };
    fetch_image(
        store, settings, &client, name, &bytes, &mt, &manifest, digest, progress,
    )
}

/// Counts, limits and reports the bytes of a blob; stops when the pull is cancelled.
struct BlobReader<'a, R> {
    inner: R,
    read: u64,
    limit: u64,
    what: &'a Digest,
    cancel: &'a AtomicBool,
    progress: ProgressFn<'a>,
    reported: u64,
}

impl<R: Read> Read for BlobReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "blob {} is larger than the {} bytes its manifest gives",
                self.what, self.limit
            )));
        }
        if self.read - self.reported >= 256 * 1024 || (n == 0 && self.read != self.reported) {
            self.reported = self.read;
            (self.progress)(Progress::LayerBytes {
                digest: self.what,
                done: self.read,
            });
        }
        Ok(n)
    }
}

fn layer_media_ok(d: &Descriptor) -> Result<(), RegistryError> {
    if media::layer_compression(&d.media_type).is_none() {
        return Err(RegistryError::Unsupported(format!(
            "layer {} has unsupported media type {:?}",
            d.digest, d.media_type
        )));
    }
    if !d.urls.is_empty() || d.media_type == media::DOCKER_FOREIGN_LAYER {
        return Err(RegistryError::Unsupported(format!(
            "layer {} is a foreign layer, which is not supported",
            d.digest
        )));
    }
    Ok(())
}

/// Download, verify and stage one layer.
#[allow(clippy::too_many_arguments)]
fn fetch_layer(
    client: &RegistryClient,
    repo: &str,
    ws: &WorkDir,
    desc: &Descriptor,
    diff_id: &Digest,
    parent: Option<&Digest>,
    cancel: &AtomicBool,
    progress: ProgressFn<'_>,
) -> Result<StagedLayer, RegistryError> {
    progress(Progress::LayerStart {
        digest: &desc.digest,
        size: desc.size,
    });
    let resp = client.get_blob(repo, &desc.digest)?;
    if let Some(len) = resp.content_length() {
        if len != desc.size {
            return Err(RegistryError::SizeMismatch {
                what: format!("layer {}", desc.digest),
                expected: desc.size,
                actual: len,
            });
        }
    }
    let reader = BlobReader {
        inner: resp,
        read: 0,
        limit: desc.size,
        what: &desc.digest,
        cancel,
        progress,
        reported: 0,
    };
    let opts = UnpackOptions {
        allow_devices: true,
        whiteouts: true,
    };
    let staged =
        layer::stage_layer_from_blob(ws, reader, &desc.media_type, parent, opts).map_err(|e| {
            match e {
                // A read error in the stream is the network's (or the limit's), not the store's.
                StoreError::Io { source, .. } if source.kind() == io::ErrorKind::Other => {
                    RegistryError::Network(format!("layer {}: {source}", desc.digest))
                }
                StoreError::Unpack(u) => {
                    RegistryError::invalid(format!("layer {}", desc.digest), u)
                }
                other => RegistryError::Store(other),
            }
        })?;
    if staged.meta.blob != desc.digest {
        return Err(RegistryError::DigestMismatch {
            what: format!("layer {}", desc.digest),
            expected: desc.digest.clone(),
            actual: staged.meta.blob.clone(),
        });
    }
    if staged.meta.blob_size != desc.size {
        return Err(RegistryError::SizeMismatch {
            what: format!("layer {}", desc.digest),
            expected: desc.size,
            actual: staged.meta.blob_size,
        });
    }
    if &staged.meta.diff_id != diff_id {
        return Err(RegistryError::DigestMismatch {
            what: format!("uncompressed layer {} (config diff_id)", desc.digest),
            expected: diff_id.clone(),
            actual: staged.meta.diff_id.clone(),
        });
    }
    progress(Progress::LayerDone {
        digest: &desc.digest,
    });
    Ok(staged)
}

/// Fetch config and layers of `manifest` and publish the image.
#[allow(clippy::too_many_arguments)]
pub fn fetch_image(
    store: &Store,
    _settings: &Settings,
    client: &RegistryClient,
    name: &RemoteName,
    manifest_bytes: &[u8],
    manifest_type: &str,
    manifest: &ImageManifest,
    manifest_digest: Digest,
    progress: ProgressFn<'_>,
) -> Result<Pulled, RegistryError> {
    let repo = &name.repository;
    let display = name.to_string();
    // The config, verified.
    let cfg = &manifest.config;
    if cfg.size > MAX_CONFIG_SIZE {
        return Err(RegistryError::TooLarge {
            what: format!("config of {display}"),
            limit: MAX_CONFIG_SIZE,
        });
    }
    let resp = client.get_blob(repo, &cfg.digest)?;
    let mut config_bytes = Vec::new();
    resp.take(cfg.size + 1)
        .read_to_end(&mut config_bytes)
        .map_err(|e| RegistryError::Network(format!("config of {display}: {e}")))?;
    if config_bytes.len() as u64 != cfg.size {
        return Err(RegistryError::SizeMismatch {
            what: format!("config of {display}"),
            expected: cfg.size,
            actual: config_bytes.len() as u64,
        });
    }
    let config_digest = Digest::of(&config_bytes);
    if config_digest != cfg.digest {
        return Err(RegistryError::DigestMismatch {
            what: format!("config of {display}"),
            expected: cfg.digest.clone(),
            actual: config_digest,
        });
    }
    let probe: ConfigProbe = serde_json::from_slice(&config_bytes)
        .map_err(|e| RegistryError::invalid(format!("config of {display}"), e))?;
    let diff_ids = probe.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::invalid(
            format!("image {display}"),
            format!(
                "the manifest has {} layers but the config {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    for l in &manifest.layers {
        layer_media_ok(l)?;
    }
    let mut chains: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in &diff_ids {
        let c = chain_id(chains.last(), d);
        chains.push(c);
    }
    let id = config_digest.hex().to_string();
    let local_name = name.local_name();

    // Which layers the store has; lease them so no sweep removes them meanwhile.
    let (present, _lease) = {
        let _g = store.read_lock()?;
        let present: Vec<bool> = chains
            .iter()
            .map(|c| store.layer_dir(c).join("meta.json").exists())
            .collect();
        let have: Vec<Digest> = chains
            .iter()
            .zip(&present)
            .filter(|(_, p)| **p)
            .map(|(c, _)| c.clone())
            .collect();
        let lease = store.lease(&have)?;
        (present, lease)
    };
    if present.iter().all(|p| *p) {
        if let Some(rec) = store.index()?.get(&id) {
            if rec.layers == chains {
                progress(Progress::Present);
                let mut tx = store.begin()?;
                if let Some(n) = &local_name {
                    tx.index.add_name(&id, n);
                }
                let manifest = tx.index.get(&id).map(|r| r.manifest.clone());
                tx.commit()?;
                return Ok(Pulled {
                    id,
                    name: local_name,
                    manifest_digest: manifest.unwrap_or(manifest_digest),
                });
            }
        }
    }
    for (i, l) in manifest.layers.iter().enumerate() {
        if present[i] {
            progress(Progress::LayerExists { digest: &l.digest });
        }
    }

    let ws = store.workspace("pull")?;
    let todo: Vec<usize> = (0..chains.len()).filter(|i| !present[*i]).collect();
    let staged: Mutex<Vec<Option<StagedLayer>>> =
        Mutex::new((0..chains.len()).map(|_| None).collect());
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    let cancel = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let workers = todo.len().min(PARALLEL_LAYERS);
    // Each finished layer starts going to disk while the others download.
    let flusher = fsutil::Flusher::start(ws.path());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { break };
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
                match fetch_layer(
                    client,
                    repo,
                    &ws,
                    &manifest.layers[i],
                    &diff_ids[i],
                    parent,
                    &cancel,
                    progress,
                ) {
                    Ok(st) => {
                        staged.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(st);
                        flusher.kick();
                    }
                    Err(e) => {
                        let was_cancelled = cancel.swap(true, Ordering::SeqCst);
                        let mut fe = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        if fe.is_none() && !was_cancelled {
                            *fe = Some(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    drop(flusher);
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let staged = staged.into_inner().unwrap_or_else(|p| p.into_inner());

    // The layers as they will be in the store, to write the stored manifest.
    let mut metas = Vec::with_capacity(chains.len());
    for (i, c) in chains.iter().enumerate() {
        match &staged[i] {
            Some(st) => metas.push(st.meta.clone()),
            None => metas.push(store.layer_meta(c)?),
        }
    }
    let stored_manifest = if manifest_type == media::DOCKER_MANIFEST
        && metas
            .iter()
            .zip(&manifest.layers)
            .all(|(m, d)| m.blob == d.digest)
    {
        manifest_bytes.to_vec()
    } else {
        synthesize_docker_manifest(&config_bytes, &config_digest, &metas)?
    };
    let (config_path, _) = ws.stage_blob(&config_bytes)?;
    let (manifest_path, stored_digest) = ws.stage_blob(&stored_manifest)?;
    fsutil::syncfs(ws.path()).map_err(|e| StoreError::io(ws.path(), e))?;

    let mut tx = store.begin()?;
    for st in staged.iter().flatten() {
        tx.publish_layer(st)?;
    }
    tx.publish_blob(&config_path, &config_digest)?;
    tx.publish_blob(&manifest_path, &stored_digest)?;
    let mut names = tx
        .index
        .get(&id)
        .map(|r| r.names.clone())
        .unwrap_or_default();
    if let Some(n) = &local_name {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    tx.index.put(ImageRecord {
        id: id.clone(),
        names,
        layers: chains,
        manifest: stored_digest,
        created: probe.created.unwrap_or_else(now_rfc3339),
        size: metas.iter().map(|m| m.size).sum(),
    });
    tx.commit()?;
    drop(ws);
    let blobs: Vec<Digest> = manifest
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .chain(std::iter::once(config_digest))
        .collect();
    sources::record(store.root(), &name.full_repository(), &blobs);
    Ok(Pulled {
        id,
        name: local_name,
        manifest_digest,
    })
}

/// A Docker schema2 manifest for a config and the store's layers.
pub fn synthesize_docker_manifest(
    config_bytes: &[u8],
    config_digest: &Digest,
    metas: &[crate::storage::LayerMeta],
) -> Result<Vec<u8>, RegistryError> {
    let layers = metas
        .iter()
        .map(|m| {
            let c = media::layer_compression(&m.media_type).ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "layer {} has unsupported media type {:?}",
                    m.blob, m.media_type
                ))
            })?;
            Ok(Descriptor {
                media_type: media::layer_media_type(media::Format::Docker, c).to_string(),
                size: m.blob_size,
                digest: m.blob.clone(),
                platform: None,
                urls: vec![],
                annotations: None,
            })
        })
        .collect::<Result<Vec<_>, RegistryError>>()?;
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(media::DOCKER_MANIFEST.to_string()),
        config: Descriptor {
            media_type: media::DOCKER_CONFIG.to_string(),
            size: config_bytes.len() as u64,
            digest: config_digest.clone(),
            platform: None,
            urls: vec![],
            annotations: None,
        },
        layers,
    };
    serde_json::to_vec(&m).map_err(|e| RegistryError::Other(e.to_string()))
}
