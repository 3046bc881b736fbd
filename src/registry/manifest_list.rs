//! Manifest lists (experimental, as upstream): created locally from remote images (their
//! manifests and platforms are fetched), annotated, inspected, and pushed — after making
//! sure every image they reference exists in the destination repository.
//!
//! Local lists live in `<dataroot>/manifest-lists/<sha256 of the name>.json`.

use crate::config::Settings;
use crate::digest::Digest;
use crate::image::reference::Reference;
use crate::registry::client::{RegistryClient, Upload};
use crate::registry::media::{self, Descriptor, Fetched, ManifestList, Platform};
use crate::registry::name::{ManifestRef, RemoteName};
use crate::registry::{RegistryError, MAX_CONFIG_SIZE};
use crate::storage::fsutil;
use crate::storage::Store;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::PathBuf;

const DIR: &str = "manifest-lists";

/// Where an entry of a list came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// What the user typed.
    pub reference: String,
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
}

/// A local manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalList {
    pub name: String,
    pub list: ManifestList,
    pub sources: Vec<Source>,
}

fn list_path(store: &Store, name: &str) -> PathBuf {
    store
        .root()
        .join(DIR)
        .join(format!("{}.json", Digest::of(name.as_bytes()).hex()))
}

fn normalize(name: &str) -> Result<String, RegistryError> {
    Ok(Reference::parse_tagged_name(name)?.to_string())
}

/// Load a list by name.
pub fn load(store: &Store, name: &str) -> Result<LocalList, RegistryError> {
    let name = normalize(name)?;
    let p = list_path(store, &name);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RegistryError::NotFound {
                what: format!("manifest list {name} (local)"),
            })
        }
        Err(e) => return Err(RegistryError::file(&p, e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::file(&p, e))
}

fn save(store: &Store, l: &LocalList) -> Result<(), RegistryError> {
    let p = list_path(store, &l.name);
    let dir = store.root().join(DIR);
    std::fs::create_dir_all(&dir).map_err(|e| RegistryError::file(&dir, e))?;
    let bytes = serde_json::to_vec(l).map_err(|e| RegistryError::Other(e.to_string()))?;
    let tmp = dir.join(format!(".{}.tmp", fsutil::random_hex(6)));
    fsutil::write_atomic(&tmp, &p, &bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        RegistryError::file(&p, e)
    })
}

/// The list as JSON, indented with four spaces (the manual's `inspect` output).
pub fn to_pretty_json(list: &ManifestList) -> Result<String, RegistryError> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    list.serialize(&mut ser)
        .map_err(|e| RegistryError::Other(e.to_string()))?;
    String::from_utf8(out).map_err(|e| RegistryError::Other(e.to_string()))
}

fn list_bytes(list: &ManifestList) -> Result<Vec<u8>, RegistryError> {
    serde_json::to_vec(list).map_err(|e| RegistryError::Other(e.to_string()))
}

#[derive(Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(rename = "os.version", default)]
    os_version: Option<String>,
    #[serde(rename = "os.features", default)]
    os_features: Vec<String>,
}

/// Fetch one remote image's manifest and platform.
fn describe_remote(
    settings: &Settings,
    reference: &str,
) -> Result<(Descriptor, Source), RegistryError> {
    let candidates = RemoteName::candidates(reference, &settings.registries)?;
    let mut last = None;
    for name in candidates {
        let r = (|| {
            let client = RegistryClient::connect(settings, &name.registry, name.api_host(), None)?;
            let display = name.to_string();
            let (bytes, mt, fetched, digest) =
                client.get_manifest(&name.repository, &name.reference, &display)?;
            let Fetched::Image(m) = fetched else {
                return Err(RegistryError::Unsupported(format!(
                    "{display} is a manifest list: name an image"
                )));
            };
            if m.config.size > MAX_CONFIG_SIZE {
                return Err(RegistryError::TooLarge {
                    what: format!("config of {display}"),
                    limit: MAX_CONFIG_SIZE,
                });
            }
            let mut cfg = Vec::new();
            client
                .get_blob(&name.repository, &m.config.digest)?
                .take(m.config.size + 1)
                .read_to_end(&mut cfg)
                .map_err(|e| RegistryError::Network(e.to_string()))?;
            if Digest::of(&cfg) != m.config.digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("config of {display}"),
                    expected: m.config.digest.clone(),
                    actual: Digest::of(&cfg),
                });
            }
            let p: ConfigPlatform = serde_json::from_slice(&cfg)
                .map_err(|e| RegistryError::invalid(format!("config of {display}"), e))?;
            let desc = Descriptor {
                media_type: mt,
                size: bytes.len() as u64,
                digest: digest.clone(),
                platform: Some(Platform {
                    architecture: p.architecture,
                    os: p.os,
                    os_version: p.os_version,
                    os_features: p.os_features,
                    variant: p.variant.filter(|v| !v.is_empty()),
                }),
                urls: vec![],
                annotations: None,
            };
            Ok((
                desc,
                Source {
                    reference: reference.to_string(),
                    registry: name.registry.clone(),
                    repository: name.repository.clone(),
                    digest,
                },
            ))
        })();
        match r {
            Ok(x) => return Ok(x),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| RegistryError::Other(format!("{reference}: nothing to try"))))
}

/// `manifest create LIST MANIFEST...`: returns the list's ID (hex digest of its JSON).
pub fn create(
    store: &Store,
    settings: &Settings,
    list_name: &str,
    manifests: &[String],
) -> Result<String, RegistryError> {
    let name = normalize(list_name)?;
    if list_path(store, &name).exists() {
        return Err(RegistryError::Other(format!(
            "manifest list {name} already exists"
        )));
    }
    let mut list = ManifestList {
        schema_version: 2,
        media_type: Some(media::DOCKER_LIST.to_string()),
        manifests: vec![],
    };
    let mut sources = vec![];
    for m in manifests {
        let (d, s) = describe_remote(settings, m)?;
        list.manifests.retain(|x| x.digest != d.digest);
        sources.retain(|x: &Source| x.digest != d.digest);
        list.manifests.push(d);
        sources.push(s);
    }
    let id = Digest::of(&list_bytes(&list)?).hex().to_string();
    save(
        store,
        &LocalList {
            name,
            list,
            sources,
        },
    )?;
    Ok(id)
}

/// What `annotate` changes (empty fields are left alone).
#[derive(Debug, Default, Clone)]
pub struct Annotation {
    pub arch: Option<String>,
    pub os: Option<String>,
    pub os_features: Vec<String>,
    pub variant: Option<String>,
}

/// `manifest annotate LIST MANIFEST`: MANIFEST is the reference given at create, or a digest.
pub fn annotate(
    store: &Store,
    list_name: &str,
    manifest: &str,
    a: &Annotation,
) -> Result<(), RegistryError> {
    let mut l = load(store, list_name)?;
    let digest = l
        .sources
        .iter()
        .find(|s| {
            s.reference == manifest
                || s.digest.to_string() == manifest
                || format!("{}/{}", s.registry, s.repository) == manifest
        })
        .map(|s| s.digest.clone())
        .or_else(|| manifest.parse::<Digest>().ok())
        .ok_or_else(|| RegistryError::NotFound {
            what: format!("{manifest} in manifest list {}", l.name),
        })?;
    let entry = l
        .list
        .manifests
        .iter_mut()
        .find(|d| d.digest == digest)
        .ok_or_else(|| RegistryError::NotFound {
            what: format!("{manifest} in manifest list {}", l.name),
        })?;
    let p = entry.platform.get_or_insert_with(Platform::default);
    if let Some(v) = a.arch.as_ref().filter(|v| !v.is_empty()) {
        p.architecture = v.clone();
    }
    if let Some(v) = a.os.as_ref().filter(|v| !v.is_empty()) {
        p.os = v.clone();
    }
    if !a.os_features.is_empty() {
        p.os_features = a.os_features.clone();
    }
    if let Some(v) = a.variant.as_ref().filter(|v| !v.is_empty()) {
        p.variant = Some(v.clone());
    }
    save(store, &l)
}

/// Copy one image (by digest) from its source repository into `dest_repo` of `dest`.
fn copy_image(
    settings: &Settings,
    dest: &RegistryClient,
    dest_repo: &str,
    src: &Source,
) -> Result<(), RegistryError> {
    let same_registry = src.registry == dest.registry();
    let name = RemoteName {
        registry: src.registry.clone(),
        repository: src.repository.clone(),
        reference: ManifestRef::Digest(src.digest.clone()),
    };
    let srcc = RegistryClient::connect(settings, &name.registry, name.api_host(), None)?;
    let display = name.to_string();
    let (bytes, mt, fetched, _) = srcc.get_manifest(&name.repository, &name.reference, &display)?;
    let Fetched::Image(m) = fetched else {
        return Err(RegistryError::Unsupported(format!(
            "{display} is a manifest list"
        )));
    };
    let mount_from: Vec<String> = if same_registry {
        vec![src.repository.clone()]
    } else {
        vec![]
    };
    for d in std::iter::once(&m.config).chain(m.layers.iter()) {
        let (digest, size) = (d.digest.clone(), d.size);
        let body = |_off: u64, len: u64| -> Result<Upload, RegistryError> {
            let resp = srcc.get_blob(&name.repository, &digest)?;
            Ok(Upload::new(resp, len))
        };
        dest.ensure_blob(dest_repo, &d.digest, size, &mount_from, &body, None)?;
    }
    dest.put_manifest(dest_repo, &src.digest.to_string(), &mt, &bytes)?;
    Ok(())
}

/// `manifest push LIST DESTINATION`: returns the digest of the pushed list.
pub fn push(
    store: &Store,
    settings: &Settings,
    list_name: &str,
    destination: &str,
) -> Result<Digest, RegistryError> {
    let l = load(store, list_name)?;
    let dest = RemoteName::parse_qualified(destination)?;
    let ManifestRef::Tag(tag) = &dest.reference else {
        return Err(RegistryError::invalid(
            format!("destination {destination:?}"),
            "push to a tag, not a digest",
        ));
    };
    let client = RegistryClient::connect(settings, &dest.registry, dest.api_host(), None)?;
    for d in &l.list.manifests {
        if client.has_manifest(&dest.repository, &d.digest, true)? {
            continue;
        }
        let src = l
            .sources
            .iter()
            .find(|s| s.digest == d.digest)
            .ok_or_else(|| RegistryError::NotFound {
                what: format!("source of {} in manifest list {}", d.digest, l.name),
            })?;
        copy_image(settings, &client, &dest.repository, src)?;
    }
    let bytes = list_bytes(&l.list)?;
    let mt = l
        .list
        .media_type
        .clone()
        .unwrap_or_else(|| media::DOCKER_LIST.to_string());
    client.put_manifest(&dest.repository, tag, &mt, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_matches_the_manual_layout() {
        let list = ManifestList {
            schema_version: 2,
            media_type: Some(media::DOCKER_LIST.into()),
            manifests: vec![Descriptor {
                media_type: media::DOCKER_MANIFEST.into(),
                size: 527,
                digest: Digest::of(b"x"),
                platform: Some(Platform {
                    architecture: "amd64".into(),
                    os: "linux".into(),
                    ..Default::default()
                }),
                urls: vec![],
                annotations: None,
            }],
        };
        let s = to_pretty_json(&list).unwrap();
        let want = format!(
            "{{\n    \"schemaVersion\": 2,\n    \"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\",\n    \"manifests\": [\n        {{\n            \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n            \"size\": 527,\n            \"digest\": \"{}\",\n            \"platform\": {{\n                \"architecture\": \"amd64\",\n                \"os\": \"linux\"\n            }}\n        }}\n    ]\n}}",
            Digest::of(b"x")
        );
        assert_eq!(s, want);
    }
}
