//! Remote image names: which registry, which repository, which tag or digest. A name
//! whose first component has no `.` or `:` and is not `localhost` is a short name,
//! resolved through `registries.search` (Docker's rule for telling a domain from a path).

use crate::config::Registries;
use crate::digest::Digest;
use crate::image::reference::{Reference, DEFAULT_TAG};
use crate::registry::RegistryError;
use std::fmt;

/// Docker Hub's name as users write it, and where its API lives.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// What a manifest is fetched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// A fully qualified remote image name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteName {
    /// Registry as written (`localhost:5000`, `docker.io`): the key for credentials,
    /// certs.d and registries.toml.
    pub registry: String,
    /// Repository path inside the registry (`library/busybox`).
    pub repository: String,
    pub reference: ManifestRef,
}

fn is_domain(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

impl RemoteName {
    /// Host[:port] the HTTP API is reached at.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `registry/repository`, as image names are stored.
    pub fn full_repository(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The local image name after a pull: `registry/repository:tag` (digest pulls have none).
    pub fn local_name(&self) -> Option<String> {
        match &self.reference {
            ManifestRef::Tag(t) => Some(format!("{}:{t}", self.full_repository())),
            ManifestRef::Digest(_) => None,
        }
    }

    /// The same repository with another manifest reference.
    pub fn with_reference(&self, r: ManifestRef) -> RemoteName {
        RemoteName {
            reference: r,
            ..self.clone()
        }
    }

    fn build(registry: &str, path: &str, r: &Reference) -> RemoteName {
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let reference = match (r.digest(), r.tag()) {
            (Some(d), _) => ManifestRef::Digest(d.clone()),
            (None, Some(t)) => ManifestRef::Tag(t.to_string()),
            (None, None) => ManifestRef::Tag(DEFAULT_TAG.to_string()),
        };
        RemoteName {
            registry: registry.to_string(),
            repository,
            reference,
        }
    }

    /// Parse a name that must name its registry (push destinations, manifest lists).
    pub fn parse_qualified(s: &str) -> Result<RemoteName, RegistryError> {
        let s = s.strip_prefix("docker://").unwrap_or(s);
        let r = Reference::parse(s)?;
        let full = r.repository();
        match full.split_once('/') {
            Some((first, rest)) if is_domain(first) => Ok(Self::build(first, rest, &r)),
            _ => Err(RegistryError::invalid(
                format!("image name {s:?}"),
                "it must start with a registry (host[:port]/repository)",
            )),
        }
    }

    /// Every remote name `s` may mean, in the order to try: itself when it names a
    /// registry, otherwise one per `registries.search` entry.
    pub fn candidates(s: &str, regs: &Registries) -> Result<Vec<RemoteName>, RegistryError> {
        let s = s.strip_prefix("docker://").unwrap_or(s);
        let r = Reference::parse(s)?;
        let full = r.repository();
        if let Some((first, rest)) = full.split_once('/') {
            if is_domain(first) {
                return Ok(vec![Self::build(first, rest, &r)]);
            }
        }
        if regs.search.is_empty() {
            return Err(RegistryError::invalid(
                format!("short name {s:?}"),
                "no registry in the name and no registries.search in registries.toml",
            ));
        }
        Ok(regs
            .search
            .iter()
            .map(|reg| Self::build(reg, &full, &r))
            .collect())
    }
}

impl fmt::Display for RemoteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            ManifestRef::Tag(t) => write!(f, "{}:{t}", self.full_repository()),
            ManifestRef::Digest(d) => write!(f, "{}@{d}", self.full_repository()),
        }
    }
}

/// True when `registry` matches an entry of a registries.toml list (exact host[:port],
/// a prefix entry like `registry.example.com/ns` for the host part, or `*.example.com`).
pub fn listed(list: &[String], registry: &str) -> bool {
    list.iter().any(|e| {
        let e = e.trim();
        let host = e.split('/').next().unwrap_or(e);
        match host.strip_prefix("*.") {
            Some(domain) => in_subdomain(registry, domain),
            None => host == registry,
        }
    })
}

/// Is `registry` (host[:port]) a subdomain of `domain` (`*.domain` in registries.toml)?
pub fn in_subdomain(registry: &str, domain: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host.strip_suffix(domain)
        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_and_short_names() {
        let n = RemoteName::parse_qualified("localhost:5000/a/b:t").unwrap();
        assert_eq!(n.registry, "localhost:5000");
        assert_eq!(n.repository, "a/b");
        assert_eq!(n.reference, ManifestRef::Tag("t".into()));
        assert_eq!(n.local_name().unwrap(), "localhost:5000/a/b:t");
        assert!(RemoteName::parse_qualified("library/busybox").is_err());
        let regs = Registries {
            search: vec!["docker.io".into(), "r.example.com".into()],
            ..Default::default()
        };
        let c = RemoteName::candidates("busybox", &regs).unwrap();
        assert_eq!(c[0].to_string(), "docker.io/library/busybox:latest");
        assert_eq!(c[0].api_host(), "registry-1.docker.io");
        assert_eq!(c[1].to_string(), "r.example.com/busybox:latest");
        let c = RemoteName::candidates("127.0.0.1:5000/x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", &regs).unwrap();
        assert_eq!(c.len(), 1);
        assert!(matches!(c[0].reference, ManifestRef::Digest(_)));
        assert_eq!(c[0].local_name(), None);
        assert!(RemoteName::candidates("busybox", &Registries::default()).is_err());
    }

    #[test]
    fn listing_matches_host() {
        let l = vec!["127.0.0.1:5000".to_string(), "r.example.com/ns".to_string()];
        assert!(listed(&l, "127.0.0.1:5000"));
        assert!(listed(&l, "r.example.com"));
        assert!(!listed(&l, "127.0.0.1"));
        let w = vec!["*.example.com".to_string()];
        assert!(listed(&w, "a.example.com:5000"));
        assert!(listed(&w, "b.a.example.com"));
        assert!(!listed(&w, "example.com"));
        assert!(!listed(&w, "badexample.com"));
    }
}
