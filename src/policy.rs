//! The image trust policy: `policy.json` in the config directory, in the format of
//! containers-policy.json(5), as upstream reads it. It decides whether an image may come
//! into the store: pulls (and `FROM` pulls) under the `docker` transport, `load` under
//! `docker-archive` / `oci-archive`, `import` under `tarball`.
//!
//! The requirements for an image are those of the most specific scope its transport's
//! table has for it (for `docker`: `host/repo:tag` or `@digest`, then `host/repo`, each
//! parent namespace, `host`, `*.domain` wildcards, then `""`), else `default`. All must be
//! met. `insecureAcceptAnything` is met; `reject` is not. Signature requirements
//! (`signedBy`, `sigstoreSigned`, `signedBaseLayer`) are not verified by this build, so an
//! image they apply to is refused, never let through unchecked.
//!
//! Without a `policy.json` every image is accepted (the packaged file says so explicitly).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Transport names, as policy.json's `transports` keys.
pub const DOCKER: &str = "docker";
pub const DOCKER_ARCHIVE: &str = "docker-archive";
pub const OCI_ARCHIVE: &str = "oci-archive";
pub const TARBALL: &str = "tarball";

/// One requirement of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Requirement {
    AcceptAnything,
    Reject,
    /// A signature check of this kind (`signedBy`, …), which is not supported.
    Signature(String),
}

/// A parsed `policy.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    default: Vec<Requirement>,
    /// transport → scope → requirements.
    transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

impl Default for Policy {
    /// No policy file: everything is accepted.
    fn default() -> Self {
        Policy {
            default: vec![Requirement::AcceptAnything],
            transports: BTreeMap::new(),
        }
    }
}

/// Why an image may not come in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Source image rejected: Running image {image} is rejected by policy.")]
    Rejected { image: String },
    #[error("Source image rejected: policy.json requires a {kind} signature for {image}, and this build does not verify signatures")]
    SignatureRequired { image: String, kind: String },
}

#[derive(Deserialize)]
struct RawRequirement {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawPolicy {
    default: Option<Vec<RawRequirement>>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<RawRequirement>>>,
}

fn requirements(raw: Vec<RawRequirement>, where_: &str) -> Result<Vec<Requirement>, String> {
    if raw.is_empty() {
        return Err(format!("{where_}: the list of requirements is empty"));
    }
    raw.into_iter()
        .map(|r| match r.kind.as_str() {
            "insecureAcceptAnything" => Ok(Requirement::AcceptAnything),
            "reject" => Ok(Requirement::Reject),
            "signedBy" | "sigstoreSigned" | "signedBaseLayer" => Ok(Requirement::Signature(r.kind)),
            other => Err(format!("{where_}: unknown requirement type {other:?}")),
        })
        .collect()
}

impl Policy {
    /// Parse the text of a `policy.json`; the error is one line without the path.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("line {}: {e}", e.line()))?;
        match v.get("default") {
            Some(serde_json::Value::Array(_)) => {}
            Some(_) => {
                return Err("key \"default\": expected an array of policy requirements".into())
            }
            None => return Err("key \"default\" is missing".into()),
        }
        let raw: RawPolicy = serde_json::from_value(v).map_err(|e| e.to_string())?;
        let default = requirements(raw.default.unwrap_or_default(), "\"default\"")?;
        let mut transports = BTreeMap::new();
        for (t, scopes) in raw.transports {
            let mut parsed = BTreeMap::new();
            for (scope, reqs) in scopes {
                let r = requirements(reqs, &format!("transports.{t}.{scope:?}"))?;
                parsed.insert(scope, r);
            }
            transports.insert(t, parsed);
        }
        Ok(Policy {
            default,
            transports,
        })
    }

    /// May an image come in by `transport`? `scopes` are its policy scopes, most specific
    /// first (see [`docker_scopes`], [`path_scopes`]); `image` names it in errors.
    pub fn check(
        &self,
        transport: &str,
        scopes: &[String],
        image: &str,
    ) -> Result<(), PolicyError> {
        let table = self.transports.get(transport);
        let reqs = table
            .and_then(|t| scopes.iter().find_map(|s| t.get(s)).or_else(|| t.get("")))
            .unwrap_or(&self.default);
        for r in reqs {
            match r {
                Requirement::AcceptAnything => {}
                Requirement::Reject => {
                    return Err(PolicyError::Rejected {
                        image: image.to_string(),
                    })
                }
                Requirement::Signature(kind) => {
                    return Err(PolicyError::SignatureRequired {
                        image: image.to_string(),
                        kind: kind.clone(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Policy scopes of a registry image, most specific first: `host/repo:tag` (or
/// `host/repo@digest`), `host/repo`, each parent namespace, `host`, then `*.domain` for each
/// parent domain of a host without a port.
pub fn docker_scopes(registry: &str, repository: &str, reference: &str) -> Vec<String> {
    let repo = format!("{registry}/{repository}");
    // A tag never holds a ':'; a digest always does.
    let sep = if reference.contains(':') { '@' } else { ':' };
    let mut out = vec![format!("{repo}{sep}{reference}")];
    let mut ns = repo.as_str();
    loop {
        out.push(ns.to_string());
        match ns.rsplit_once('/') {
            Some((parent, _)) => ns = parent,
            None => break,
        }
    }
    if !registry.contains(':') {
        let mut rest = registry;
        while let Some((_, parent)) = rest.split_once('.') {
            out.push(format!("*.{parent}"));
            rest = parent;
        }
    }
    out
}

/// Policy scopes of a file (archives): the path, then each parent directory.
pub fn path_scopes(path: &Path) -> Vec<String> {
    path.ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_scope_decides() {
        let p = Policy::parse(
            r#"{"default": [{"type": "reject"}],
                "transports": {"docker": {
                    "r.io": [{"type": "insecureAcceptAnything"}],
                    "r.io/secret": [{"type": "reject"}],
                    "r.io/secret/ok:1": [{"type": "insecureAcceptAnything"}],
                    "*.corp.example": [{"type": "insecureAcceptAnything"}],
                    "s.io": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k"}]
                }}}"#,
        )
        .unwrap();
        let ok =
            |reg: &str, repo: &str, r: &str| p.check(DOCKER, &docker_scopes(reg, repo, r), "img");
        assert!(ok("r.io", "app", "1").is_ok());
        assert!(matches!(
            ok("r.io", "secret/x", "1"),
            Err(PolicyError::Rejected { .. })
        ));
        assert!(ok("r.io", "secret/ok", "1").is_ok());
        assert!(ok("r.io", "secret/ok", "2").is_err());
        assert!(ok("a.corp.example", "x", "1").is_ok());
        assert!(ok("corp.example", "x", "1").is_err(), "default");
        assert!(matches!(
            ok("s.io", "x", "1"),
            Err(PolicyError::SignatureRequired { .. })
        ));
        // Other transports fall to the default.
        let scopes = path_scopes(Path::new("/tmp/a.tar"));
        assert!(p
            .check(DOCKER_ARCHIVE, &scopes, "docker-archive:/tmp/a.tar")
            .is_err());
    }

    #[test]
    fn a_transport_default_and_path_scopes() {
        let p = Policy::parse(
            r#"{"default": [{"type": "insecureAcceptAnything"}],
                "transports": {"docker-archive": {
                    "": [{"type": "reject"}],
                    "/srv/trusted": [{"type": "insecureAcceptAnything"}]
                }}}"#,
        )
        .unwrap();
        let check = |path: &str| {
            p.check(
                DOCKER_ARCHIVE,
                &path_scopes(Path::new(path)),
                &format!("docker-archive:{path}"),
            )
        };
        assert!(check("/srv/trusted/a/b.tar").is_ok());
        let e = check("/tmp/b.tar").unwrap_err().to_string();
        assert_eq!(
            e,
            "Source image rejected: Running image docker-archive:/tmp/b.tar is rejected by policy."
        );
        assert!(p
            .check(DOCKER, &docker_scopes("r.io", "a", "1"), "x")
            .is_ok());
    }

    #[test]
    fn bad_files_are_named() {
        for (text, what) in [
            ("{}", "default"),
            (r#"{"default": []}"#, "empty"),
            (r#"{"default": [{"type": "maybe"}]}"#, "maybe"),
            (
                r#"{"default": [{"type": "reject"}], "transports": {"docker": {"x": []}}}"#,
                "transports.docker",
            ),
            ("{\"default\": 3}", "expected an array"),
            ("{\"default\": [", "line 1"),
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert!(e.contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn docker_scopes_go_from_the_image_to_the_domain() {
        assert_eq!(
            docker_scopes("a.b.io", "ns/app", "1"),
            [
                "a.b.io/ns/app:1",
                "a.b.io/ns/app",
                "a.b.io/ns",
                "a.b.io",
                "*.b.io",
                "*.io"
            ]
        );
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            docker_scopes("localhost:5000", "app", d)[..2],
            [
                format!("localhost:5000/app@{d}"),
                "localhost:5000/app".into()
            ]
        );
    }
}
