//! `ctr-img import`: a rootfs tarball (plain, gzip, xz, bzip2 or zstd, detected by content)
//! becomes a single-layer image.

use crate::compression;
use crate::image::config::{
    host_platform, now_rfc3339, Descriptor, History, ImageConfig, Manifest, RootFs,
    MEDIA_TYPE_DOCKER_CONFIG, MEDIA_TYPE_DOCKER_MANIFEST,
};
use crate::image::error::ImageError;
use crate::image::reference::Reference;
use crate::storage::unpack::UnpackOptions;
use crate::storage::{layer, ImageRecord, Store, StoreError};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest tarball `import` accepts (upstream's limit).
pub const MAX_IMPORT_SIZE: u64 = 1024 * 1024 * 1024;

/// Result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    pub id: String,
    pub name: String,
}

/// Reader that fails once more than `limit` bytes come through (the file may grow after the
/// size check) and reports progress.
struct Limited<'a, R> {
    inner: R,
    read: u64,
    limit: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "input exceeds the {} byte import limit",
                self.limit
            )));
        }
        (self.progress)(self.read);
        Ok(n)
    }
}

/// Open a file the user named for reading: it must be a regular file of at most `limit`
/// bytes. Returns the file and its size.
pub fn open_source(path: &Path, limit: u64, what: &str) -> Result<(File, u64), ImageError> {
    let err = |reason: String| ImageError::Source {
        path: path.to_path_buf(),
        reason,
    };
    // A path the user named: opened with their rights when installed setuid.
    let f = crate::privilege::as_caller(|| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
    })
    .map_err(|e| err(e.to_string()))?;
    let md = f.metadata().map_err(|e| err(e.to_string()))?;
    if !md.is_file() {
        return Err(err(format!("{what} must be a regular file")));
    }
    if md.len() > limit {
        return Err(err(format!(
            "{what} is {} bytes, larger than the limit of {limit} bytes",
            md.len()
        )));
    }
    if md.len() == 0 {
        return Err(err(format!("{what} is empty")));
    }
    Ok((f, md.len()))
}

/// Import the rootfs tarball at `source` as `reference` (`name` means `name:latest`), when
/// `policy` lets images in from it (the `tarball` transport).
/// `progress` is called with the number of bytes read from the tarball.
pub fn import(
    store: &Store,
    policy: &crate::policy::Policy,
    source: &Path,
    reference: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Imported, ImageError> {
    let name = Reference::parse_tagged_name(reference)?.to_string();
    let (file, _size) = open_source(source, MAX_IMPORT_SIZE, "import file")?;
    crate::image::load::check_file_policy(policy, crate::policy::TARBALL, source)?;
    let fail = |reason: String| ImageError::Import {
        path: source.to_path_buf(),
        reason,
    };

    let ws = store.workspace("import")?;
    let limited = Limited {
        inner: file,
        read: 0,
        limit: MAX_IMPORT_SIZE,
        progress,
    };
    let (_kind, tar_stream) = compression::decompress(limited).map_err(|e| fail(e.to_string()))?;
    let opts = UnpackOptions {
        allow_devices: false,
        whiteouts: false,
    };
    let staged = layer::stage_layer(&ws, tar_stream, None, opts).map_err(|e| match e {
        StoreError::Unpack(u) => fail(u.to_string()),
        other => ImageError::Store(other),
    })?;

    let created = now_rfc3339();
    let (arch, variant) = host_platform();
    let config = ImageConfig {
        architecture: arch.to_string(),
        variant: variant.map(str::to_string),
        os: "linux".to_string(),
        created: Some(created.clone()),
        history: vec![History {
            created: Some(created.clone()),
            created_by: Some(format!(
                "isula-build ctr-img import {}",
                source
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )),
            comment: Some("imported from a rootfs tarball".into()),
            ..Default::default()
        }],
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![staged.meta.diff_id.clone()],
        },
        ..Default::default()
    };
    let config_bytes = serde_json::to_vec(&config).map_err(|e| fail(e.to_string()))?;
    let (config_path, config_digest) = ws.stage_blob(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: MEDIA_TYPE_DOCKER_MANIFEST.into(),
        config: Descriptor {
            media_type: MEDIA_TYPE_DOCKER_CONFIG.into(),
            size: config_bytes.len() as u64,
            digest: config_digest.clone(),
        },
        layers: vec![Descriptor {
            media_type: staged.meta.media_type.clone(),
            size: staged.meta.blob_size,
            digest: staged.meta.blob.clone(),
        }],
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| fail(e.to_string()))?;
    let (manifest_path, manifest_digest) = ws.stage_blob(&manifest_bytes)?;
    // The blobs are synced by stage_blob; the layer's own files, not the whole filesystem.
    staged.sync()?;

    let id = config_digest.hex().to_string();
    let mut tx = store.begin()?;
    tx.publish_layer(&staged)?;
    tx.publish_blob(&config_path, &config_digest)?;
    tx.publish_blob(&manifest_path, &manifest_digest)?;
    let mut names = tx
        .index
        .get(&id)
        .map(|r| r.names.clone())
        .unwrap_or_default();
    if !names.contains(&name) {
        names.push(name.clone());
    }
    tx.index.put(ImageRecord {
        id: id.clone(),
        names,
        layers: vec![staged.meta.chain_id.clone()],
        manifest: manifest_digest,
        created,
        size: staged.meta.size,
    });
    tx.commit()?;
    drop(ws);
    Ok(Imported { id, name })
}
