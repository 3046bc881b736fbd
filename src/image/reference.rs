//! Docker image references: `[domain[:port]/]path[:tag][@digest]`, validated with the grammar
//! of the distribution project (which upstream isula-build uses), without normalisation:
//! `busybox` stays `busybox` (not `docker.io/library/busybox`), as upstream stores names.

use crate::digest::Digest;
use std::fmt;

/// Longest repository name (domain and path) allowed.
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag allowed.
pub const MAX_TAG_LEN: usize = 128;
/// Tag used when a reference has none.
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {0:?}")]
    Format(String),
    #[error("invalid reference format: repository name must be lowercase: {0:?}")]
    Uppercase(String),
    #[error("repository name must not be more than 255 characters: {0:?}")]
    NameTooLong(String),
    #[error("invalid tag {0:?}: a tag is at most 128 characters of [A-Za-z0-9_.-] and does not start with '.' or '-'")]
    Tag(String),
    #[error("invalid digest in reference {0:?}")]
    Digest(String),
    #[error("repository name must have at least one component")]
    Empty,
}

/// A parsed, validated reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    domain: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// path-component := alpha-numeric [separator alpha-numeric]*
/// separator := [_.] | __ | [-]*
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // A separator run, which must be followed by an alphanumeric.
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
}

/// host[:port] where host is a domain name, an IPv4 address or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host.split('.').all(valid_domain_component)
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

impl Reference {
    /// Parse and validate a reference (no normalisation, no default tag).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let digest: Digest = d.parse().map_err(|_| ReferenceError::Digest(s.into()))?;
                (r, Some(digest))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(c) if last_slash.is_none_or(|sl| c > sl) => (&rest[..c], Some(&rest[c + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(if t.len() > MAX_TAG_LEN || !t.is_empty() {
                    ReferenceError::Tag(t.to_string())
                } else {
                    ReferenceError::Format(s.to_string())
                });
            }
        }
        let components: Vec<&str> = name.split('/').collect();
        let (domain, path_parts) = if components.len() > 1 && valid_domain(components[0]) {
            (Some(components[0]), &components[1..])
        } else {
            (None, &components[..])
        };
        if !path_parts.iter().all(|c| valid_path_component(c)) {
            let lower_ok = path_parts
                .iter()
                .all(|c| valid_path_component(&c.to_ascii_lowercase()));
            if lower_ok && name.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(ReferenceError::Uppercase(s.to_string()));
            }
            return Err(ReferenceError::Format(s.to_string()));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong(s.to_string()));
        }
        Ok(Reference {
            domain: domain.map(str::to_string),
            path: path_parts.join("/"),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Parse, then add `:latest` when there is neither tag nor digest
    /// (upstream's rule for names given to import, tag and build).
    pub fn parse_with_default_tag(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parse a reference that must name a tag (a digest is refused): the form an image
    /// record stores as a name.
    pub fn parse_tagged_name(s: &str) -> Result<Reference, ReferenceError> {
        let r = Reference::parse_with_default_tag(s)?;
        if r.digest.is_some() {
            return Err(ReferenceError::Format(format!(
                "{s} (a digest cannot be used as an image name)"
            )));
        }
        Ok(r)
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path` (the repository), without tag or digest.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(d) => format!("{d}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Split a stored `repository:tag` name into its two halves (upstream's images table rule:
/// the tag is what follows the last colon after the last slash).
pub fn split_repo_tag(name: &str) -> (&str, Option<&str>) {
    let last_slash = name.rfind('/');
    match name.rfind(':') {
        Some(c) if last_slash.is_none_or(|sl| c > sl) => (&name[..c], Some(&name[c + 1..])),
        _ => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_forms() {
        for ok in [
            "busybox",
            "busybox:latest",
            "openeuler:20.03-lts-sp3",
            "library/busybox:1.35",
            "localhost:5000/a/b:c",
            "registry.example.com/ns/app_x__y.z-w:v1.0",
            "[::1]:5000/busybox:t",
            "192.168.1.1/a",
            "a---b",
            "busybox@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "Example.com/busybox:TAG_1",
        ] {
            assert!(Reference::parse(ok).is_ok(), "{ok} should parse");
        }
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "",
            "../../x:tag",
            "/abs",
            "a//b",
            "a/",
            "-a",
            "a_",
            "a...b",
            "a:",
            "a:-tag",
            "a b",
            "a@sha256:abc",
            "a:tag:more",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn uppercase_repository_has_its_own_error() {
        assert_eq!(
            Reference::parse("UPPER:tag"),
            Err(ReferenceError::Uppercase("UPPER:tag".into()))
        );
        assert!(matches!(
            Reference::parse("ns/Busybox"),
            Err(ReferenceError::Uppercase(_))
        ));
    }

    #[test]
    fn length_limits() {
        let long_name = "a".repeat(256);
        assert!(matches!(
            Reference::parse(&long_name),
            Err(ReferenceError::NameTooLong(_))
        ));
        assert!(Reference::parse(&"a".repeat(255)).is_ok());
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(matches!(
            Reference::parse(&long_tag),
            Err(ReferenceError::Tag(_))
        ));
        assert!(Reference::parse(&format!("a:{}", "t".repeat(128))).is_ok());
    }

    #[test]
    fn default_tag_and_display() {
        let r = Reference::parse_with_default_tag("busybox").unwrap();
        assert_eq!(r.to_string(), "busybox:latest");
        let r = Reference::parse_with_default_tag("localhost:5000/busybox").unwrap();
        assert_eq!(r.to_string(), "localhost:5000/busybox:latest");
        assert_eq!(r.domain(), Some("localhost:5000"));
        assert_eq!(r.repository(), "localhost:5000/busybox");
        assert!(Reference::parse_tagged_name(
            "a@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        .is_err());
    }

    #[test]
    fn split_repo_tag_uses_last_colon_after_slash() {
        assert_eq!(
            split_repo_tag("localhost:5000/a:v1"),
            ("localhost:5000/a", Some("v1"))
        );
        assert_eq!(
            split_repo_tag("localhost:5000/a"),
            ("localhost:5000/a", None)
        );
        assert_eq!(split_repo_tag("a"), ("a", None));
    }
}
