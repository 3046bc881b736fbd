//! Where a pull fetches an image from. A `[[registry]]` table of `registries.toml` whose
//! `prefix` matches the name may move its namespace elsewhere (`location`) and give it
//! mirrors; the table with the longest matching prefix is used. The mirrors that apply
//! to the reference (tag or digest, see `pull-from-mirror` and `mirror-by-digest-only`)
//! are tried in order, then the location. Pushes never use these rules.
//!
//! Matching follows containers-registries.conf(5): the name `registry/repository:tag` (or
//! `@digest`) must start with the prefix, followed by its end or a separator. A `:` after a
//! prefix that is only a host is a port, not a tag, so `example.com` does not match
//! `example.com:5000/app`.

use crate::config::{MirrorUse, PullRule, Registries};
use crate::registry::name::{in_subdomain, listed, ManifestRef, RemoteName};
use crate::registry::RegistryError;

/// A place to pull an image from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The image's name at that place.
    pub name: RemoteName,
    /// True for a mirror, false for the primary location.
    pub mirror: bool,
}

/// Length of the part of `full` (`registry/repository:tag`) that `prefix` matches.
fn matched_len(prefix: &str, registry: &str, full: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix("*.") {
        return in_subdomain(registry, domain).then_some(registry.len());
    }
    let rest = full.strip_prefix(prefix)?;
    let host_only = !prefix.contains('/');
    match rest.chars().next() {
        None | Some('/' | '@') => Some(prefix.len()),
        Some(':') if !host_only => Some(prefix.len()),
        _ => None,
    }
}

/// The rule for `name`: the one with the longest matching prefix.
fn rule_for<'r>(name: &RemoteName, rules: &'r [PullRule]) -> Option<(&'r PullRule, usize)> {
    let full = name.to_string();
    rules
        .iter()
        .filter_map(|r| matched_len(&r.prefix, &name.registry, &full).map(|n| (r, n)))
        .max_by_key(|(r, _)| r.prefix.len())
}

fn rewrite(name: &RemoteName, matched: usize, location: &str) -> Result<RemoteName, RegistryError> {
    let full = name.to_string();
    let moved = format!("{location}{}", &full[matched..]);
    RemoteName::parse_qualified(&moved).map_err(|e| {
        RegistryError::invalid(
            format!("registries.toml: {full} rewritten to {moved}"),
            e.to_string(),
        )
    })
}

/// Where to pull `name` from, in the order to try. Without a matching rule that is the
/// name itself. A blocked registry is refused here, before any mirror is tried.
pub fn pull_sources(name: &RemoteName, regs: &Registries) -> Result<Vec<Source>, RegistryError> {
    if listed(&regs.blocked, &name.registry) {
        return Err(RegistryError::Blocked(name.registry.clone()));
    }
    let Some((rule, matched)) = rule_for(name, &regs.pull_rules) else {
        return Ok(vec![Source {
            name: name.clone(),
            mirror: false,
        }]);
    };
    let by_digest = matches!(name.reference, ManifestRef::Digest(_));
    let mut out = Vec::with_capacity(rule.mirrors.len() + 1);
    for m in &rule.mirrors {
        let applies = match m.used_for {
            MirrorUse::All => true,
            MirrorUse::DigestOnly => by_digest,
            MirrorUse::TagOnly => !by_digest,
        };
        if applies {
            out.push(Source {
                name: rewrite(name, matched, &m.location)?,
                mirror: true,
            });
        }
    }
    let primary = if rule.location == rule.prefix || rule.prefix.starts_with("*.") {
        name.clone()
    } else {
        rewrite(name, matched, &rule.location)?
    };
    out.push(Source {
        name: primary,
        mirror: false,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mirror;

    fn rule(prefix: &str, location: &str, mirrors: &[(&str, MirrorUse)]) -> PullRule {
        PullRule {
            prefix: prefix.into(),
            location: location.into(),
            mirrors: mirrors
                .iter()
                .map(|(l, u)| Mirror {
                    location: l.to_string(),
                    insecure: false,
                    used_for: *u,
                })
                .collect(),
        }
    }

    fn sources(name: &str, regs: &Registries) -> Vec<String> {
        let n = RemoteName::parse_qualified(name).unwrap();
        pull_sources(&n, regs)
            .unwrap()
            .iter()
            .map(|s| format!("{}{}", if s.mirror { "m " } else { "" }, s.name))
            .collect()
    }

    #[test]
    fn the_manual_example_tries_mirrors_then_the_location() {
        let regs = Registries {
            pull_rules: vec![rule(
                "example.com/foo",
                "internal-registry-for-example.net/bar",
                &[
                    ("example-mirror-0.local/mirror-for-foo", MirrorUse::All),
                    ("example-mirror-1.local/mirrors/foo", MirrorUse::All),
                ],
            )],
            ..Default::default()
        };
        assert_eq!(
            sources("example.com/foo/image:latest", &regs),
            [
                "m example-mirror-0.local/mirror-for-foo/image:latest",
                "m example-mirror-1.local/mirrors/foo/image:latest",
                "internal-registry-for-example.net/bar/image:latest",
            ]
        );
        // Not under the prefix: untouched.
        assert_eq!(
            sources("example.com/foobar/image:1", &regs),
            ["example.com/foobar/image:1"]
        );
        assert_eq!(
            sources("example.com/foo:2", &regs).last().unwrap(),
            "internal-registry-for-example.net/bar:2"
        );
    }

    #[test]
    fn longest_prefix_wins_and_a_host_prefix_does_not_match_another_port() {
        let regs = Registries {
            pull_rules: vec![
                rule("docker.io", "docker.io", &[("m1:5000", MirrorUse::All)]),
                rule(
                    "docker.io/library/alpine",
                    "docker.io/library/alpine",
                    &[("m2:5000/alp", MirrorUse::All)],
                ),
                rule(
                    "reg.example.com",
                    "reg.example.com",
                    &[("m3", MirrorUse::All)],
                ),
            ],
            ..Default::default()
        };
        assert_eq!(
            sources("docker.io/library/alpine:3", &regs),
            ["m m2:5000/alp:3", "docker.io/library/alpine:3"]
        );
        assert_eq!(
            sources("docker.io/library/busybox:1", &regs),
            ["m m1:5000/library/busybox:1", "docker.io/library/busybox:1"]
        );
        assert_eq!(
            sources("reg.example.com:5000/app:1", &regs),
            ["reg.example.com:5000/app:1"]
        );
    }

    #[test]
    fn mirrors_apply_to_tags_or_digests_as_configured() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let regs = Registries {
            pull_rules: vec![rule(
                "r.io",
                "r.io",
                &[
                    ("digests.local", MirrorUse::DigestOnly),
                    ("tags.local", MirrorUse::TagOnly),
                ],
            )],
            ..Default::default()
        };
        assert_eq!(sources("r.io/a:1", &regs), ["m tags.local/a:1", "r.io/a:1"]);
        assert_eq!(
            sources(&format!("r.io/a@{d}"), &regs),
            [format!("m digests.local/a@{d}"), format!("r.io/a@{d}")]
        );
    }

    #[test]
    fn wildcards_match_subdomains_only_and_blocked_registries_are_refused() {
        let regs = Registries {
            pull_rules: vec![rule(
                "*.example.com",
                "*.example.com",
                &[("m.local", MirrorUse::All)],
            )],
            blocked: vec!["bad.io".into()],
            ..Default::default()
        };
        assert_eq!(
            sources("a.example.com/x:1", &regs),
            ["m m.local/x:1", "a.example.com/x:1"]
        );
        assert_eq!(sources("example.com/x:1", &regs), ["example.com/x:1"]);
        let n = RemoteName::parse_qualified("bad.io/x:1").unwrap();
        assert!(matches!(
            pull_sources(&n, &regs),
            Err(RegistryError::Blocked(_))
        ));
    }
}
