//! Media types of the Docker and OCI image formats, and the manifest/index documents
//! read from registries.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The `Accept` header for manifest requests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Output format of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "docker" => Ok(Format::Docker),
            "oci" => Ok(Format::Oci),
            o => Err(format!(
                "wrong image format {o:?}: it must be docker or oci"
            )),
        }
    }
}

/// A layer's compression, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    Zstd,
    None,
}

pub fn layer_compression(media_type: &str) -> Option<LayerCompression> {
    match media_type {
        DOCKER_LAYER_GZIP | OCI_LAYER_GZIP | DOCKER_FOREIGN_LAYER => Some(LayerCompression::Gzip),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
            Some(LayerCompression::Gzip)
        }
        OCI_LAYER_ZSTD => Some(LayerCompression::Zstd),
        OCI_LAYER | "application/vnd.docker.image.rootfs.diff.tar" => Some(LayerCompression::None),
        _ => None,
    }
}

/// The media type of a layer with `c` in `format` (Docker has no zstd or plain-tar type
/// in practice: those layers keep their OCI types).
pub fn layer_media_type(format: Format, c: LayerCompression) -> &'static str {
    match (format, c) {
        (Format::Docker, LayerCompression::Gzip) => DOCKER_LAYER_GZIP,
        (Format::Oci, LayerCompression::Gzip) => OCI_LAYER_GZIP,
        (_, LayerCompression::Zstd) => OCI_LAYER_ZSTD,
        (_, LayerCompression::None) => OCI_LAYER,
    }
}

/// A platform in a manifest list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A descriptor as found in manifests and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub size: u64,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image manifest (Docker schema2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestList {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// What a manifest document turned out to be (short-lived: the size difference between
/// the variants does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Fetched {
    Image(ImageManifest),
    List(ManifestList),
}

/// Classify manifest bytes by the `Content-Type` the registry sent, falling back to the
/// document's own `mediaType` (and its shape) when the header is generic.
pub fn parse_manifest(content_type: &str, bytes: &[u8]) -> Result<(String, Fetched), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let mt = match ct {
        DOCKER_MANIFEST | DOCKER_LIST | OCI_MANIFEST | OCI_INDEX => ct.to_string(),
        _ => match probe.media_type.as_deref() {
            Some(m) => m.to_string(),
            None if probe.manifests.is_some() => OCI_INDEX.to_string(),
            None => OCI_MANIFEST.to_string(),
        },
    };
    if probe.schema_version == Some(1)
        || mt.starts_with("application/vnd.docker.distribution.manifest.v1")
    {
        return Err("Docker schema1 manifests are not supported".into());
    }
    match mt.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let m: ImageManifest =
                serde_json::from_slice(bytes).map_err(|e| format!("bad image manifest: {e}"))?;
            Ok((mt, Fetched::Image(m)))
        }
        DOCKER_LIST | OCI_INDEX => {
            let l: ManifestList =
                serde_json::from_slice(bytes).map_err(|e| format!("bad manifest list: {e}"))?;
            Ok((mt, Fetched::List(l)))
        }
        other => Err(format!("unsupported manifest media type {other:?}")),
    }
}

/// Pick the entry of a list matching `(os, arch, variant)`; a variant of `None` on
/// either side matches any.
pub fn select_platform<'a>(
    list: &'a ManifestList,
    os: &str,
    arch: &str,
    variant: Option<&str>,
) -> Option<&'a Descriptor> {
    let matches = |d: &&Descriptor, strict: bool| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == os
                && p.architecture == arch
                && (!strict
                    || match (variant, p.variant.as_deref()) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    })
        })
    };
    list.manifests
        .iter()
        .find(|d| matches(d, true))
        .or_else(|| list.manifests.iter().find(|d| matches(d, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_manifests() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"a","size":1,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"layers":[]}"#;
        let (mt, f) = parse_manifest("application/json", m).unwrap();
        assert_eq!(mt, OCI_MANIFEST);
        assert!(matches!(f, Fetched::Image(_)));
        let l = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(parse_manifest("", l).unwrap().1, Fetched::List(_)));
        assert!(parse_manifest("", br#"{"schemaVersion":1}"#).is_err());
        assert!(parse_manifest("", b"<html>").is_err());
    }
}
