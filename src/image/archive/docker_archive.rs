//! The docker-archive layout, as `docker save` (before Docker 25), `podman save` and
//! `skopeo copy docker-archive:` write it:
//!
//! ```text
//! <layer-id>/VERSION, <layer-id>/json, <layer-id>/layer.tar   one directory per layer
//! <config-hex>.json                                          image config
//! manifest.json    [{"Config": ..., "RepoTags": [...], "Layers": [...]}]
//! repositories     {"repo": {"tag": "<top layer id>"}}
//! ```
//!
//! Newer Docker writes the same `manifest.json` next to an OCI layout (`blobs/sha256/...`),
//! and containers/image writes `<diff-id>.tar` files with `<id>/layer.tar` symlinks; both
//! read the same way here since members are looked up by the names `manifest.json` gives.

use crate::digest::Digest;
use crate::image::archive::{ArchiveError, ArchiveIndex, ImagePlan, LayerSource, MAX_DOC_SIZE};
use crate::image::reference::Reference;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST_JSON: &str = "manifest.json";
pub const REPOSITORIES: &str = "repositories";

/// One entry of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// `repositories`: repository → tag → top layer id.
pub type Repositories = BTreeMap<String, BTreeMap<String, String>>;

/// When a member name carries a digest (`<hex>.json`, `<hex>.tar`, `blobs/sha256/<hex>`),
/// that digest, which the member's bytes must match.
pub fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let stem = base
        .strip_suffix(".json")
        .or_else(|| base.strip_suffix(".tar"))
        .unwrap_or(base);
    if name.starts_with("blobs/sha256/") || base.ends_with(".json") {
        Digest::from_hex(stem).ok()
    } else {
        None
    }
}

/// Validate a name from an archive as a `repository:tag` the store can hold.
pub fn parse_name(n: &str) -> Result<String, ArchiveError> {
    Reference::parse_tagged_name(n)
        .map(|r| r.to_string())
        .map_err(|e| ArchiveError::Invalid(format!("image name {n:?} in the archive: {e}")))
}

/// Read `manifest.json` and the configs it names; check every file it names is there.
pub fn plan(ix: &ArchiveIndex) -> Result<Vec<ImagePlan>, ArchiveError> {
    let bytes = ix.read_small(MANIFEST_JSON, "manifest", MAX_DOC_SIZE)?;
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&bytes)
        .map_err(|e| ArchiveError::Invalid(format!("manifest.json: {e}")))?;
    if entries.is_empty() {
        return Err(ArchiveError::Invalid(
            "manifest.json lists no images".into(),
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let config = match digest_in_name(&e.config) {
            Some(d) => ix.read_verified(&e.config, "config", MAX_DOC_SIZE, &d, None)?,
            None => ix.read_small(&e.config, "config", MAX_DOC_SIZE)?,
        };
        let mut layers = Vec::with_capacity(e.layers.len());
        for l in &e.layers {
            // Fails early, before any work, for a layer the archive does not hold.
            ix.size(l, "layer")?;
            let blob = if l.starts_with("blobs/sha256/") {
                digest_in_name(l).map(|d| (d, None))
            } else {
                None
            };
            layers.push(LayerSource {
                member: l.clone(),
                blob,
            });
        }
        let names = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|n| parse_name(n))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(ImagePlan {
            config,
            layers,
            names,
        });
    }
    Ok(out)
}
