//! The OCI image layout (image-spec `image-layout.md`) in a tar file, as `podman save
//! --format oci-archive`, `skopeo copy oci-archive:` and `ctr-img save -f oci` write it:
//!
//! ```text
//! oci-layout            {"imageLayoutVersion": "1.0.0"}
//! index.json            image index; names in org.opencontainers.image.ref.name
//! blobs/sha256/<hex>    manifests, configs, layers
//! ```

use crate::digest::Digest;
use crate::image::archive::docker_archive::parse_name;
use crate::image::archive::{ArchiveError, ArchiveIndex, ImagePlan, LayerSource, MAX_DOC_SIZE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_LAYOUT: &str = "oci-layout";
pub const INDEX_JSON: &str = "index.json";
pub const LAYOUT_VERSION: &str = "1.0.0";

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Full image name as containerd and Docker 25+ record it next to the short ref name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layout {
    image_layout_version: String,
}

/// Member name of a blob.
pub fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Pick the manifest of a nested index (multi-platform image) for this host.
fn pick_platform(ix: &Index) -> Option<&Descriptor> {
    let (arch, variant) = crate::image::config::host_platform();
    let fits = |d: &&Descriptor| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            && !is_index(&d.media_type)
    };
    let mut cands = ix.manifests.iter().filter(fits);
    let first = cands.clone().next();
    cands
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_deref()) == variant)
        .or(first)
}

/// Read `index.json` and the manifests and configs it leads to, verifying each digest.
pub fn plan(ix: &ArchiveIndex) -> Result<Vec<ImagePlan>, ArchiveError> {
    if ix.contains(OCI_LAYOUT) {
        let bytes = ix.read_small(OCI_LAYOUT, "oci-layout file", 4096)?;
        let l: Layout = serde_json::from_slice(&bytes)
            .map_err(|e| ArchiveError::Invalid(format!("oci-layout: {e}")))?;
        if l.image_layout_version != LAYOUT_VERSION {
            return Err(ArchiveError::Invalid(format!(
                "unsupported OCI layout version {:?}",
                l.image_layout_version
            )));
        }
    }
    let bytes = ix.read_small(INDEX_JSON, "index", MAX_DOC_SIZE)?;
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|e| ArchiveError::Invalid(format!("index.json: {e}")))?;
    if index.manifests.is_empty() {
        return Err(ArchiveError::Invalid("index.json lists no images".into()));
    }
    // Several names for one manifest become one image with several names.
    let mut out: Vec<(Digest, ImagePlan)> = Vec::new();
    for desc in &index.manifests {
        let ann = desc.annotations.clone().unwrap_or_default();
        let name = ann
            .get(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| ann.get(ANNOTATION_REF_NAME))
            .map(|n| parse_name(n))
            .transpose()?;
        let mut d = desc.clone();
        for _ in 0..4 {
            if !is_index(&d.media_type) {
                break;
            }
            let b = ix.read_verified(
                &blob_name(&d.digest),
                "image index",
                MAX_DOC_SIZE,
                &d.digest,
                Some(d.size),
            )?;
            let nested: Index = serde_json::from_slice(&b)
                .map_err(|e| ArchiveError::Invalid(format!("image index {}: {e}", d.digest)))?;
            d = pick_platform(&nested)
                .ok_or_else(|| {
                    ArchiveError::Invalid(format!(
                        "image index {} has no image for this platform",
                        d.digest
                    ))
                })?
                .clone();
        }
        let mb = ix.read_verified(
            &blob_name(&d.digest),
            "manifest",
            MAX_DOC_SIZE,
            &d.digest,
            Some(d.size),
        )?;
        let m: Manifest = serde_json::from_slice(&mb)
            .map_err(|e| ArchiveError::Invalid(format!("manifest {}: {e}", d.digest)))?;
        if let Some((_, p)) = out.iter_mut().find(|(md, _)| md == &d.digest) {
            if let Some(n) = name {
                if !p.names.contains(&n) {
                    p.names.push(n);
                }
            }
            continue;
        }
        let config = ix.read_verified(
            &blob_name(&m.config.digest),
            "config",
            MAX_DOC_SIZE,
            &m.config.digest,
            Some(m.config.size),
        )?;
        let mut layers = Vec::with_capacity(m.layers.len());
        for l in &m.layers {
            let member = blob_name(&l.digest);
            ix.size(&member, "layer")?;
            layers.push(LayerSource {
                member,
                blob: Some((l.digest.clone(), Some(l.size))),
            });
        }
        out.push((
            d.digest.clone(),
            ImagePlan {
                config,
                layers,
                names: name.into_iter().collect(),
            },
        ));
    }
    Ok(out.into_iter().map(|(_, p)| p).collect())
}
