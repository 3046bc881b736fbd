//! Capabilities of a RUN step: Docker's default set plus `--cap-add`.
//!
//! Root gets the set in its bounding, permitted and effective sets (inheritable and ambient stay
//! empty, as Docker does since CVE-2022-24769); a non-root user keeps only the bounding set, so
//! after `execve` its effective set is empty, exactly as under Docker/runc.

use caps::{CapSet, Capability, CapsHashSet};
use std::str::FromStr;

/// Docker's default capability set (moby `oci/caps/defaults.go`), in canonical names.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Normalize one `--cap-add` name: `SYS_ADMIN`, `CAP_SYS_ADMIN` (any case) → `CAP_SYS_ADMIN`;
/// `ALL` → every capability this crate knows. `None` for an unknown name.
pub fn normalize(name: &str) -> Option<Vec<String>> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" || up == "CAP_ALL" {
        let mut all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        all.sort();
        return Some(all);
    }
    let canon = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    Capability::from_str(&canon)
        .ok()
        .map(|c| vec![c.to_string()])
}

/// The set a step runs with: the defaults plus the (already validated) additions.
pub fn effective_set(cap_add: &[String]) -> Vec<String> {
    let mut set: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    for c in cap_add {
        for n in normalize(c).unwrap_or_default() {
            if !set.contains(&n) {
                set.push(n);
            }
        }
    }
    set.sort();
    set
}

/// The `/proc/<pid>/status` `CapEff` bitmask of a set of names.
pub fn bitmask(names: &[String]) -> u64 {
    names
        .iter()
        .filter_map(|n| Capability::from_str(n).ok())
        .fold(0u64, |m, c| m | c.bitmask())
}

fn to_set(names: &[String]) -> CapsHashSet {
    names
        .iter()
        .filter_map(|n| Capability::from_str(n).ok())
        .collect()
}

/// Drop every capability outside `names` from the bounding set. Needs CAP_SETPCAP; done before
/// the uid change.
pub fn restrict_bounding(names: &[String]) -> Result<(), caps::errors::CapsError> {
    let keep = to_set(names);
    for c in caps::runtime::thread_all_supported() {
        if !keep.contains(&c) {
            caps::drop(None, CapSet::Bounding, c)?;
        }
    }
    Ok(())
}

/// Set permitted/effective to `names` (root) or to nothing (other users), and clear the
/// inheritable and ambient sets. Called after the uid change (with PR_SET_KEEPCAPS set).
pub fn finalize(names: &[String], is_root: bool) -> Result<(), caps::errors::CapsError> {
    let set = if is_root {
        to_set(names)
    } else {
        CapsHashSet::new()
    };
    caps::clear(None, CapSet::Inheritable)?;
    if caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient)?;
    }
    // Effective must be a subset of permitted: shrink effective first, then permitted.
    caps::set(None, CapSet::Effective, &set)?;
    caps::set(None, CapSet::Permitted, &set)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask() {
        let set = effective_set(&[]);
        assert_eq!(set.len(), 14);
        // What `docker run busybox grep CapEff /proc/self/status` prints.
        assert_eq!(bitmask(&set), 0x00000000a80425fb);
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("SYS_ADMIN"), Some(vec!["CAP_SYS_ADMIN".into()]));
        assert_eq!(
            normalize("cap_net_admin"),
            Some(vec!["CAP_NET_ADMIN".into()])
        );
        assert_eq!(normalize("CAP_NOPE"), None);
        assert_eq!(normalize(""), None);
        assert!(normalize("ALL").expect("all").len() >= 38);
    }

    #[test]
    fn cap_add_extends_without_duplicates() {
        let set = effective_set(&["SYS_ADMIN".into(), "CAP_CHOWN".into()]);
        assert_eq!(set.len(), 15);
        assert_eq!(bitmask(&set), 0x00000000a82425fb);
    }
}
