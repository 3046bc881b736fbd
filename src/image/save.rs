//! `ctr-img save`: images from the store into a docker-archive (what `docker save` writes,
//! uncompressed layers) or an OCI image layout tar (`-f oci`), several images sharing
//! layers once.
//!
//! Layers stored as uncompressed tars (built, imported, loaded) are copied into the archive
//! as they are, by the kernel ([`TarOut::copy_file`]); the store verified their digests when
//! they entered it. Layers stored compressed (pulled) are decompressed into a docker-archive,
//! their diff_id checked as they stream, and copied as they are into an OCI layout.
//! Headers are deterministic (see [`TarOut`]): saving the same images twice, or after a
//! load of the archive, gives the same bytes.

use crate::digest::Digest;
use crate::image::archive::docker_archive::{
    ManifestEntry, Repositories, MANIFEST_JSON, REPOSITORIES,
};
use crate::image::archive::oci_layout::{self, blob_name};
use crate::image::archive::{NewFile, TarOut};
use crate::image::error::ImageError;
use crate::image::load::Progress;
use crate::image::reference::{split_repo_tag, Reference};
use crate::storage::{ImageRecord, LayerMeta, Lease, Store};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    Oci,
}

/// An image chosen for saving, with what is needed to write it.
#[derive(Debug, Clone)]
pub struct Selected {
    pub record: ImageRecord,
    /// Names to record in the archive (those the user gave; none when saved by ID).
    pub tags: Vec<String>,
    pub config: Vec<u8>,
    pub layers: Vec<LayerMeta>,
}

/// Images resolved and their layers leased (kept while the lease lives).
pub struct Selection {
    pub images: Vec<Selected>,
    _lease: Lease,
}

/// Resolve what the user typed (names, IDs, ID prefixes), merging arguments naming the
/// same image, and lease every layer so nothing is removed while it is being written.
pub fn select(store: &Store, args: &[String]) -> Result<Selection, ImageError> {
    let _g = store.read_lock()?;
    let index = store.index()?;
    let mut images: Vec<Selected> = Vec::new();
    for arg in args {
        let rec = index
            .find(arg)
            .map_err(|e| ImageError::Invalid(format!("find local image {arg:?} failed: {e}")))?;
        let bare = arg.strip_prefix("sha256:").unwrap_or(arg);
        let tag = if rec.id.starts_with(bare) {
            None
        } else {
            Some(Reference::parse_tagged_name(arg)?.to_string())
        };
        if let Some(s) = images.iter_mut().find(|s| s.record.id == rec.id) {
            if let Some(t) = tag {
                if !s.tags.contains(&t) {
                    s.tags.push(t);
                }
            }
            continue;
        }
        let config_digest = rec
            .config_digest()
            .map_err(|e| ImageError::Invalid(e.to_string()))?;
        let config = store.read_blob(&config_digest)?;
        let layers = rec
            .layers
            .iter()
            .map(|c| store.layer_meta(c))
            .collect::<Result<Vec<_>, _>>()?;
        images.push(Selected {
            record: rec.clone(),
            tags: tag.into_iter().collect(),
            config,
            layers,
        });
    }
    let chains: Vec<Digest> = images
        .iter()
        .flat_map(|s| s.record.layers.iter().cloned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let lease = store.lease(&chains)?;
    Ok(Selection {
        images,
        _lease: lease,
    })
}

fn werr(e: io::Error) -> ImageError {
    ImageError::Save(e.to_string())
}

/// Save `args` to a new file `output` (which must not exist).
pub fn save(
    store: &Store,
    args: &[String],
    output: &Path,
    format: Format,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    let sel = select(store, args)?;
    save_selection(store, &sel, output, format, progress)
}

/// Save one image under the archive name `name` (which need not be a name it has in the
/// store): the build's `-o docker-archive:PATH:NAME:TAG` output.
pub fn save_as(
    store: &Store,
    image_id: &str,
    name: Option<&str>,
    output: &Path,
    format: Format,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    let sel = select_as(store, image_id, name)?;
    save_selection(store, &sel, output, format, progress)
}

/// Select one image to be written under the archive name `name` (which need not be a name
/// it has in the store); its layers stay leased while the selection lives.
pub fn select_as(
    store: &Store,
    image_id: &str,
    name: Option<&str>,
) -> Result<Selection, ImageError> {
    let mut sel = select(store, &[image_id.to_string()])?;
    if let Some(n) = name {
        let n = Reference::parse_tagged_name(n)?.to_string();
        for img in &mut sel.images {
            img.tags = vec![n.clone()];
        }
    }
    Ok(sel)
}

/// Write a selection as an archive stream into `w` (a file, a pipe, a request body) as it
/// is produced; nothing is held in memory beyond one buffer. Returns the writer, flushed.
pub fn write_selection<W: Write>(
    store: &Store,
    sel: &Selection,
    w: W,
    format: Format,
    progress: &mut dyn FnMut(Progress),
) -> Result<W, ImageError> {
    let mut tar = TarOut::new(w);
    match format {
        Format::DockerArchive => write_docker_archive(store, &sel.images, &mut tar, progress)?,
        Format::Oci => write_oci(store, &sel.images, &mut tar, progress)?,
    }
    tar.finish().map_err(werr)
}

/// Write a selection to a new file `output` (which must not exist).
pub fn save_selection(
    store: &Store,
    sel: &Selection,
    output: &Path,
    format: Format,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    let (guard, file) = NewFile::create(output).map_err(|e| ImageError::Save(e.to_string()))?;
    let w = write_selection(
        store,
        sel,
        BufWriter::with_capacity(1 << 20, file),
        format,
        progress,
    )?;
    let file = w.into_inner().map_err(|e| werr(e.into_error()))?;
    guard
        .commit(file)
        .map_err(|e| ImageError::Save(e.to_string()))?;
    Ok(())
}

/// Directory name of a layer in a docker-archive: its chain ID (unique per layer *and*
/// everything below it, like Docker's v1 layer IDs).
pub fn layer_dir_name(meta: &LayerMeta) -> String {
    meta.chain_id.hex().to_string()
}

/// Write one layer as `<id>/VERSION`, `<id>/json`, `<id>/layer.tar`: the store's tar blob
/// copied as it is, or a compressed blob decompressed with its diff_id verified.
pub fn write_docker_layer<W: Write>(
    store: &Store,
    meta: &LayerMeta,
    tar: &mut TarOut<W>,
    bytes: &mut dyn FnMut(u64),
) -> Result<String, ImageError> {
    let id = layer_dir_name(meta);
    tar.dir(&id).map_err(werr)?;
    tar.file(&format!("{id}/VERSION"), b"1.0").map_err(werr)?;
    let mut v1 = serde_json::Map::new();
    v1.insert("id".into(), id.clone().into());
    if let Some(p) = &meta.parent {
        v1.insert("parent".into(), p.hex().into());
    }
    let v1 = serde_json::to_vec(&v1).map_err(|e| ImageError::Save(e.to_string()))?;
    tar.file(&format!("{id}/json"), &v1).map_err(werr)?;
    let blob = store.open_blob(&meta.blob)?;
    let name = format!("{id}/layer.tar");
    let fail = |e: io::Error| ImageError::Save(format!("layer {}: {e}", meta.diff_id));
    if meta.is_uncompressed() {
        tar.copy_file(&name, meta.size, &blob, bytes)
            .map_err(fail)?;
        return Ok(name);
    }
    let (_, mut tar_stream) = crate::compression::decompress(blob).map_err(fail)?;
    let got = tar
        .stream(&name, meta.size, &mut tar_stream, bytes)
        .map_err(fail)?;
    if got != meta.diff_id {
        return Err(ImageError::Save(format!(
            "layer {} in the store is damaged: its content hashes to {got}",
            meta.diff_id
        )));
    }
    Ok(name)
}

fn repositories_of(images: &[Selected]) -> Repositories {
    let mut repos = Repositories::new();
    for s in images {
        let Some(top) = s.layers.last() else { continue };
        for t in &s.tags {
            let (repo, tag) = split_repo_tag(t);
            repos
                .entry(repo.to_string())
                .or_default()
                .insert(tag.unwrap_or("latest").to_string(), layer_dir_name(top));
        }
    }
    repos
}

fn write_docker_archive<W: Write>(
    store: &Store,
    images: &[Selected],
    tar: &mut TarOut<W>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    let mut written = HashSet::new();
    let total: usize = images.iter().map(|s| s.layers.len()).sum();
    let mut n = 0;
    let mut manifest = Vec::new();
    for s in images {
        let mut names = Vec::new();
        for meta in &s.layers {
            n += 1;
            let id = layer_dir_name(meta);
            if written.insert(id.clone()) {
                progress(Progress::Layer {
                    n,
                    total,
                    id: meta.diff_id.short(),
                    size: meta.size,
                });
                write_docker_layer(store, meta, tar, &mut |b| progress(Progress::Bytes(b)))?;
                progress(Progress::LayerDone);
            }
            names.push(format!("{id}/layer.tar"));
        }
        let config_name = format!("{}.json", s.record.id);
        if written.insert(config_name.clone()) {
            tar.file(&config_name, &s.config).map_err(werr)?;
        }
        manifest.push(ManifestEntry {
            config: config_name,
            repo_tags: (!s.tags.is_empty()).then(|| s.tags.clone()),
            layers: names,
        });
    }
    let m = serde_json::to_vec(&manifest).map_err(|e| ImageError::Save(e.to_string()))?;
    tar.file(MANIFEST_JSON, &m).map_err(werr)?;
    let repos = repositories_of(images);
    if !repos.is_empty() {
        let r = serde_json::to_vec(&repos).map_err(|e| ImageError::Save(e.to_string()))?;
        tar.file(REPOSITORIES, &r).map_err(werr)?;
    }
    Ok(())
}

/// Copy a blob from the store into the archive as it is.
fn copy_blob<W: Write>(
    store: &Store,
    digest: &Digest,
    size: u64,
    tar: &mut TarOut<W>,
    bytes: &mut dyn FnMut(u64),
) -> Result<(), ImageError> {
    let f = store.open_blob(digest)?;
    tar.copy_file(&blob_name(digest), size, &f, bytes)
        .map_err(|e| ImageError::Save(format!("blob {digest}: {e}")))
}

fn write_oci<W: Write>(
    store: &Store,
    images: &[Selected],
    tar: &mut TarOut<W>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    let layout = serde_json::json!({ "imageLayoutVersion": oci_layout::LAYOUT_VERSION });
    tar.file(oci_layout::OCI_LAYOUT, layout.to_string().as_bytes())
        .map_err(werr)?;
    tar.dir("blobs").map_err(werr)?;
    tar.dir("blobs/sha256").map_err(werr)?;
    let mut written: HashSet<Digest> = HashSet::new();
    let total: usize = images.iter().map(|s| s.layers.len()).sum();
    let mut n = 0;
    let mut index = Vec::new();
    for s in images {
        let mut layers = Vec::new();
        for meta in &s.layers {
            n += 1;
            if written.insert(meta.blob.clone()) {
                progress(Progress::Layer {
                    n,
                    total,
                    id: meta.diff_id.short(),
                    size: meta.blob_size,
                });
                copy_blob(store, &meta.blob, meta.blob_size, tar, &mut |b| {
                    progress(Progress::Bytes(b))
                })?;
                progress(Progress::LayerDone);
            }
            layers.push(oci_layout::Descriptor {
                media_type: crate::storage::layer::layer_media_type(true, meta.compression())
                    .into(),
                digest: meta.blob.clone(),
                size: meta.blob_size,
                annotations: None,
                platform: None,
            });
        }
        let config_digest = Digest::of(&s.config);
        if written.insert(config_digest.clone()) {
            tar.file(&blob_name(&config_digest), &s.config)
                .map_err(werr)?;
        }
        let manifest = oci_layout::Manifest {
            schema_version: 2,
            media_type: Some(oci_layout::MEDIA_TYPE_MANIFEST.into()),
            config: oci_layout::Descriptor {
                media_type: oci_layout::MEDIA_TYPE_CONFIG.into(),
                digest: config_digest,
                size: s.config.len() as u64,
                annotations: None,
                platform: None,
            },
            layers,
        };
        let mb = serde_json::to_vec(&manifest).map_err(|e| ImageError::Save(e.to_string()))?;
        let md = Digest::of(&mb);
        if written.insert(md.clone()) {
            tar.file(&blob_name(&md), &mb).map_err(werr)?;
        }
        let desc = |name: Option<&String>| oci_layout::Descriptor {
            media_type: oci_layout::MEDIA_TYPE_MANIFEST.into(),
            digest: md.clone(),
            size: mb.len() as u64,
            annotations: name.map(|n| {
                BTreeMap::from([(oci_layout::ANNOTATION_REF_NAME.to_string(), n.clone())])
            }),
            platform: None,
        };
        if s.tags.is_empty() {
            index.push(desc(None));
        } else {
            index.extend(s.tags.iter().map(|t| desc(Some(t))));
        }
    }
    let ix = oci_layout::Index {
        schema_version: 2,
        media_type: Some(oci_layout::MEDIA_TYPE_INDEX.into()),
        manifests: index,
    };
    let b = serde_json::to_vec(&ix).map_err(|e| ImageError::Save(e.to_string()))?;
    tar.file(oci_layout::INDEX_JSON, &b).map_err(werr)?;
    Ok(())
}
