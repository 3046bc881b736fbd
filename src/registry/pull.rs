//! Pull: resolve a name (search registries for short names), fetch the manifest (a list or
//! index resolves to the host platform), the config (kept byte for byte: the image ID is
//! its digest) and the layers — in parallel, streamed to disk, size and digest checked while
//! they stream, checked entry by entry in the same pass (unpacked later, on first use by a
//! build), diff_ids checked against the config. Layers
//! already in the store are not downloaded. Everything is published in one store
//! transaction; on any error nothing is published.

use crate::config::Settings;
use crate::digest::Digest;
use crate::digest::Hasher;
use crate::image::config::{host_platform, now_rfc3339};
use crate::policy;
use crate::registry::client::RegistryClient;
use crate::registry::download::{self, Downloads, Part, Start};
use crate::registry::media::{self, Descriptor, Fetched, ImageManifest};
use crate::registry::name::{ManifestRef, RemoteName};
use crate::registry::{mirrors, sources, RegistryError, MAX_CONFIG_SIZE};
use crate::storage::layer::{self, chain_id};
use crate::storage::unpack::UnpackOptions;
use crate::storage::{fsutil, ImageRecord, StagedLayer, Store, StoreError, WorkDir};
use reqwest::blocking::Response;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Layers downloaded at once (containers/image's default too). More layers than cores is
/// deliberate: with fewer workers than layers the last layer runs alone on one core.
pub const PARALLEL_LAYERS: usize = 6;

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

/// Pull one fully qualified remote image, when `policy.json` lets it in, from the mirrors
/// and the location `registries.toml` gives it ([`mirrors::pull_sources`]), in order;
/// stored as `name`.
pub fn pull_remote(
    store: &Store,
    settings: &Settings,
    name: &RemoteName,
    progress: ProgressFn<'_>,
) -> Result<Pulled, RegistryError> {
    // The policy judges the name asked for, wherever the bytes come from.
    let scopes = policy::docker_scopes(
        &name.registry,
        &name.repository,
        &name.reference.to_string(),
    );
    settings
        .policy
        .check(policy::DOCKER, &scopes, &format!("docker://{name}"))?;
    let sources = mirrors::pull_sources(name, &settings.registries)?;
    if let [only] = sources.as_slice() {
        return pull_from(store, settings, &only.name, name, progress);
    }
    let mut errors = Vec::new();
    for src in &sources {
        match pull_from(store, settings, &src.name, name, progress) {
            Ok(p) => return Ok(p),
            Err(e @ RegistryError::Store(_)) => return Err(e),
            Err(e) => {
                let what = if src.mirror { "mirror" } else { "location" };
                tracing::info!("{name}: not pulled from {what} {}: {e}", src.name);
                errors.push(format!("{what} {}: {e}", src.name));
            }
        }
    }
    Err(RegistryError::Other(format!(
        "{name}: not pulled from any mirror or its location: {}",
        errors.join("; ")
    )))
}

/// Pull `name` from `source` (the same image at a mirror or rewritten location).
fn pull_from(
    store: &Store,
    settings: &Settings,
    source: &RemoteName,
    name: &RemoteName,
    progress: ProgressFn<'_>,
) -> Result<Pulled, RegistryError> {
    let client = RegistryClient::connect(settings, &source.registry, source.api_host(), None)?;
    let resolved = if source == name {
        name.to_string()
    } else {
        format!("{name} (from {source})")
    };
    progress(Progress::Resolved { name: &resolved });
    let display = source.to_string();
    let (bytes, mt, fetched, digest) =
        client.get_manifest(&source.repository, &source.reference, &display)?;
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
            let (b, mt, f, dg) = client.get_manifest(&source.repository, &r, &display)?;
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
        store, &client, source, name, &bytes, &mt, &manifest, digest, progress,
    )
}

/// Bytes of a partial download between two early-writeback requests: the blob is on disk
/// by the time it is verified, so the layer's `fsync` finds little to wait for.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Why a [`BlobReader`] failed a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnError {
    /// The registry stayed silent longer than the read timeout.
    TimedOut,
    /// Writing the partial download (the blob's only copy) failed.
    CacheWrite,
    /// The network, the size limit, reading the cache file or a cancel.
    Other,
}

/// The bytes of one blob: cached bytes first (a complete earlier download, or the start of
/// a partial one), then the registry's, which are written through to the partial download
/// (which becomes the staged blob: a failed write there fails the read).
/// Counts, limits and reports the bytes; stops when the pull is cancelled; remembers
/// whether a failed read was its own (rather than its consumer's, e.g. the decompressor).
struct BlobReader<'a> {
    cached: Option<Box<dyn Read + 'a>>,
    net: Option<Response>,
    /// The partial download the registry's bytes go to.
    tee: Option<&'a File>,
    tee_failed: bool,
    /// Where the next tee write lands in the partial download, and where the range not
    /// yet handed to early writeback starts.
    tee_pos: u64,
    tee_flushed: u64,
    /// Hash of everything read, kept when there is no partial download to hash later.
    hasher: Option<Hasher>,
    read: u64,
    limit: u64,
    what: &'a Digest,
    cancel: &'a AtomicBool,
    progress: ProgressFn<'a>,
    reported: u64,
    own_error: Option<OwnError>,
}

fn is_timeout(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|r| r.downcast_ref::<reqwest::Error>())
        .is_some_and(reqwest::Error::is_timeout)
        || e.kind() == io::ErrorKind::TimedOut
}

impl BlobReader<'_> {
    fn fail(&mut self, kind: OwnError, e: io::Error) -> io::Error {
        self.own_error = Some(kind);
        e
    }

    fn next_bytes(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(c) = &mut self.cached {
            match c.read(buf) {
                Ok(0) => self.cached = None,
                Ok(n) => return Ok(n),
                Err(e) => {
                    let e = io::Error::other(format!("reading the download cache: {e}"));
                    return Err(self.fail(OwnError::Other, e));
                }
            }
        }
        let Some(net) = &mut self.net else {
            return Ok(0);
        };
        match net.read(buf) {
            Ok(n) => {
                if let Some(f) = self.tee {
                    if n > 0 {
                        if let Err(e) = (&*f).write_all(&buf[..n]) {
                            self.tee = None;
                            self.tee_failed = true;
                            return Err(self.fail(OwnError::CacheWrite, e));
                        }
                        self.tee_pos += n as u64;
                        if self.tee_pos - self.tee_flushed >= WRITEBACK_EVERY {
                            let len = self.tee_pos - self.tee_flushed;
                            fsutil::start_writeback(f, self.tee_flushed, len);
                            self.tee_flushed = self.tee_pos;
                        }
                    }
                }
                Ok(n)
            }
            Err(e) => {
                let kind = if is_timeout(&e) {
                    OwnError::TimedOut
                } else {
                    OwnError::Other
                };
                Err(self.fail(kind, e))
            }
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(self.fail(OwnError::Other, io::Error::other("cancelled")));
        }
        let n = self.next_bytes(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.read += n as u64;
        if self.read > self.limit {
            let e = io::Error::other(format!(
                "blob {} is larger than the {} bytes its manifest gives",
                self.what, self.limit
            ));
            return Err(self.fail(OwnError::Other, e));
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

/// Does a 206's `Content-Range` (`bytes START-END/TOTAL`) give the blob from `offset` on?
fn range_fits(resp: &Response, offset: u64, size: u64) -> bool {
    let Some(v) = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(rest) = v.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((range, total)) = rest.split_once('/') else {
        return false;
    };
    let Some((a, b)) = range.split_once('-') else {
        return false;
    };
    let total_ok = total == "*" || total.parse::<u64>().ok() == Some(size);
    a.parse::<u64>().ok() == Some(offset)
        && b.parse::<u64>().ok() == size.checked_sub(1)
        && total_ok
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

/// A failed attempt at a layer; `retry` when it failed on cached bytes that did not
/// verify, so a fresh download may succeed.
struct Failure {
    err: RegistryError,
    retry: bool,
}

impl From<RegistryError> for Failure {
    fn from(err: RegistryError) -> Self {
        Failure { err, retry: false }
    }
}

/// What every layer of one pull is fetched with.
struct LayerFetch<'a> {
    client: &'a RegistryClient,
    repo: &'a str,
    ws: &'a WorkDir,
    cancel: &'a AtomicBool,
    progress: ProgressFn<'a>,
    downloads: Option<&'a Downloads>,
}

impl LayerFetch<'_> {
    /// Download, verify and stage one layer, resuming from the download cache when it has
    /// (part of) the blob; once more from scratch when the cached bytes do not verify.
    fn fetch(
        &self,
        desc: &Descriptor,
        diff_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<StagedLayer, RegistryError> {
        match self.fetch_once(desc, diff_id, parent, false) {
            Ok(st) => Ok(st),
            Err(f) if f.retry => {
                tracing::debug!(
                    "layer {}: cached bytes did not verify: {}",
                    desc.digest,
                    f.err
                );
                self.fetch_once(desc, diff_id, parent, true)
                    .map_err(|f| f.err)
            }
            Err(f) => Err(f.err),
        }
    }

    fn fetch_once(
        &self,
        desc: &Descriptor,
        diff_id: &Digest,
        parent: Option<&Digest>,
        fresh: bool,
    ) -> Result<StagedLayer, Failure> {
        let LayerFetch {
            client,
            repo,
            ws,
            cancel,
            progress,
            downloads,
        } = *self;
        progress(Progress::LayerStart {
            digest: &desc.digest,
            size: desc.size,
        });
        let what = format!("layer {}", desc.digest);
        let size_check = |len: Option<u64>, expected: u64| match len {
            Some(len) if len != expected => Err(RegistryError::SizeMismatch {
                what: what.clone(),
                expected,
                actual: len,
            }),
            _ => Ok(()),
        };
        let start = downloads.map_or(Start::Uncached, |d| d.begin(&desc.digest, desc.size, fresh));
        // Where the bytes come from: (cached bytes, the registry's reply, the partial download).
        let mut complete_entry = None;
        let (cached, net, part): (Option<Box<dyn Read>>, Option<Response>, Option<Part>) =
            match start {
                Start::Complete(f, path) => {
                    complete_entry = Some(path);
                    (Some(Box::new(f)), None, None)
                }
                Start::Partial(p) if p.have() > 0 => {
                    let have = p.have();
                    let resp = client.get_blob_from(repo, &desc.digest, have)?;
                    if resp.status() == reqwest::StatusCode::PARTIAL_CONTENT
                        && range_fits(&resp, have, desc.size)
                    {
                        size_check(resp.content_length(), desc.size - have)?;
                        let prefix = p
                            .prefix()
                            .map_err(|e| RegistryError::file(&PathBuf::from(download::DIR), e))?;
                        (Some(Box::new(prefix)), Some(resp), Some(p))
                    } else {
                        // The whole blob again (no range support): start the partial again.
                        let resp = if resp.status() == reqwest::StatusCode::PARTIAL_CONTENT {
                            drop(resp);
                            client.get_blob(repo, &desc.digest)?
                        } else {
                            resp
                        };
                        size_check(resp.content_length(), desc.size)?;
                        let part = match downloads.map(|d| d.restart(p)) {
                            Some(Start::Partial(p)) => Some(p),
                            _ => None,
                        };
                        (None, Some(resp), part)
                    }
                }
                Start::Partial(p) => {
                    // Nothing downloaded yet: an empty entry is not worth keeping on failure.
                    let resp = client.get_blob(repo, &desc.digest).and_then(|r| {
                        size_check(r.content_length(), desc.size)?;
                        Ok(r)
                    });
                    match resp {
                        Ok(r) => (None, Some(r), Some(p)),
                        Err(e) => {
                            p.discard();
                            return Err(e.into());
                        }
                    }
                }
                Start::Uncached => {
                    let resp = client.get_blob(repo, &desc.digest)?;
                    size_check(resp.content_length(), desc.size)?;
                    (None, Some(resp), None)
                }
            };
        let used_cache = cached.is_some();
        let opts = UnpackOptions {
            allow_devices: true,
            whiteouts: true,
        };
        // The file that will hold every byte read, if there is one: it becomes the blob.
        let received = complete_entry
            .as_deref()
            .or(part.as_ref().map(Part::path))
            .map(std::path::Path::to_path_buf);
        let mut reader = BlobReader {
            cached,
            net,
            tee: part.as_ref().map(Part::file),
            tee_failed: false,
            tee_pos: part.as_ref().map_or(0, Part::have),
            tee_flushed: part.as_ref().map_or(0, Part::have),
            // Only without a file to hash afterwards (staging hashes the stream itself;
            // this is for the error report when staging fails).
            hasher: received.is_none().then(Hasher::new),
            read: 0,
            limit: desc.size,
            what: &desc.digest,
            cancel,
            progress,
            reported: 0,
            own_error: None,
        };
        let staged = match &received {
            Some(path) => layer::stage_layer_from_received(
                ws,
                &mut reader,
                &desc.media_type,
                parent,
                opts,
                path,
            ),
            None => layer::stage_layer_from_blob(ws, &mut reader, &desc.media_type, parent, opts),
        };
        let staged = match staged {
            Ok(st) => st,
            Err(e) => {
                let own = reader.own_error;
                let mapped = match e {
                    StoreError::Io { source, .. } if own.is_some() => match own {
                        Some(OwnError::TimedOut) => {
                            client.timeout_error(&format!("the download of layer {}", desc.digest))
                        }
                        Some(OwnError::CacheWrite) => RegistryError::file(
                            received
                                .as_deref()
                                .unwrap_or(std::path::Path::new(download::DIR)),
                            source,
                        ),
                        _ => RegistryError::Network(format!("layer {}: {source}", desc.digest)),
                    },
                    StoreError::Unpack(u) => RegistryError::invalid(&what, u),
                    StoreError::Io { source, .. } => RegistryError::invalid(&what, source),
                    other => RegistryError::Store(other),
                };
                if own.is_some() {
                    // The partial download stays for a retry (unless a write to it failed).
                    let broken = reader.tee_failed;
                    drop(reader);
                    if let Some(p) = part {
                        if broken || p.file().metadata().map_or(true, |m| m.len() == 0) {
                            p.discard();
                        }
                    }
                    return Err(mapped.into());
                }
                // The layer did not decompress or unpack: if the blob is not the one the
                // manifest names, that is the cause to report. Read the rest and hash it all.
                if io::copy(&mut reader, &mut io::sink()).is_err() {
                    return Err(mapped.into());
                }
                let tee_ok = reader.tee.is_some() && !reader.tee_failed;
                let hashed = reader.hasher.take().map(Hasher::finish);
                drop(reader);
                let actual = match (&received, hashed) {
                    (_, Some(d)) => Some(d),
                    (Some(path), None) if tee_ok || part.is_none() => {
                        download::file_digest(path).ok().map(|(d, _)| d)
                    }
                    _ => None,
                };
                if let Some(p) = part {
                    p.discard();
                }
                return Err(match actual {
                    Some(actual) if actual != desc.digest => Failure {
                        err: RegistryError::DigestMismatch {
                            what,
                            expected: desc.digest.clone(),
                            actual,
                        },
                        retry: used_cache,
                    },
                    _ => mapped.into(),
                });
            }
        };
        drop(reader);
        let mismatch = if staged.meta.blob != desc.digest {
            Some(RegistryError::DigestMismatch {
                what: what.clone(),
                expected: desc.digest.clone(),
                actual: staged.meta.blob.clone(),
            })
        } else if staged.meta.blob_size != desc.size {
            Some(RegistryError::SizeMismatch {
                what: what.clone(),
                expected: desc.size,
                actual: staged.meta.blob_size,
            })
        } else {
            None
        };
        if let Some(err) = mismatch {
            if let Some(p) = part {
                p.discard();
            }
            return Err(Failure {
                err,
                retry: used_cache,
            });
        }
        if &staged.meta.diff_id != diff_id {
            if let Some(p) = part {
                p.discard();
            }
            return Err(RegistryError::DigestMismatch {
                what: format!("uncompressed layer {} (config diff_id)", desc.digest),
                expected: diff_id.clone(),
                actual: staged.meta.diff_id.clone(),
            }
            .into());
        }
        if let Some(d) = downloads {
            d.complete(&desc.digest, &staged.blob_path, part, desc.size);
        }
        progress(Progress::LayerDone {
            digest: &desc.digest,
        });
        Ok(staged)
    }
}

/// Fetch config and layers of `manifest` from `source` (through `client`) and publish the
/// image under `name`.
#[allow(clippy::too_many_arguments)]
pub fn fetch_image(
    store: &Store,
    client: &RegistryClient,
    source: &RemoteName,
    name: &RemoteName,
    manifest_bytes: &[u8],
    manifest_type: &str,
    manifest: &ImageManifest,
    manifest_digest: Digest,
    progress: ProgressFn<'_>,
) -> Result<Pulled, RegistryError> {
    let repo = &source.repository;
    let display = source.to_string();
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
    let downloads = Downloads::open(store.root());
    if let Some(d) = &downloads {
        d.clean(download::MAX_AGE);
    }
    let todo: Vec<usize> = (0..chains.len()).filter(|i| !present[*i]).collect();
    let staged: Mutex<Vec<Option<StagedLayer>>> =
        Mutex::new((0..chains.len()).map(|_| None).collect());
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    let cancel = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let workers = todo.len().min(PARALLEL_LAYERS);
    let layers = LayerFetch {
        client,
        repo,
        ws: &ws,
        cancel: &cancel,
        progress,
        downloads: downloads.as_ref(),
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { break };
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
                // Each finished layer goes to disk (its files only) while others download.
                let fetched = layers
                    .fetch(&manifest.layers[i], &diff_ids[i], parent)
                    .and_then(|st| st.sync().map(|()| st).map_err(RegistryError::from));
                match fetched {
                    Ok(st) => {
                        staged.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(st);
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
    // Synced by stage_blob, as each layer was after staging.
    let (config_path, _) = ws.stage_blob(&config_bytes)?;
    let (manifest_path, stored_digest) = ws.stage_blob(&stored_manifest)?;

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
    if let Some(d) = &downloads {
        for i in &todo {
            d.forget(&manifest.layers[*i].digest);
        }
    }
    let blobs: Vec<Digest> = manifest
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .chain(std::iter::once(config_digest))
        .collect();
    sources::record(store.root(), &source.full_repository(), &blobs);
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
