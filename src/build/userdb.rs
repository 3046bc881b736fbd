//! Resolving `USER`/`--chown` specs against a rootfs's `/etc/passwd` and `/etc/group`
//! (read inside the rootfs, never following links out of it).

use pathrs::flags::OpenFlags;
use pathrs::Root;
use std::io::Read;
use std::path::Path;

/// A resolved user: uid, primary gid, supplementary gids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("invalid user spec {0:?}")]
    Invalid(String),
}

fn read_in_root(rootfs: &Path, file: &str) -> String {
    let Ok(root) = Root::open(rootfs) else {
        return String::new();
    };
    let Ok(h) = root.resolve(file) else {
        return String::new();
    };
    let Ok(f) = h.reopen(OpenFlags::O_RDONLY) else {
        return String::new();
    };
    let mut s = String::new();
    // Bounded: a hostile image cannot make us read gigabytes.
    let _ = f.take(4 << 20).read_to_string(&mut s);
    s
}

fn field(line: &str, i: usize) -> Option<&str> {
    line.split(':').nth(i)
}

/// Resolve `user[:group]` (names or numbers) in the rootfs. Unknown numeric ids are fine
/// (as in Docker); unknown names are errors.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<Ids, UserError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(Ids {
            uid: 0,
            gid: 0,
            groups: vec![],
        });
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() {
        return Err(UserError::Invalid(spec.to_string()));
    }
    let passwd = read_in_root(rootfs, "/etc/passwd");
    let entry = passwd.lines().find(|l| {
        field(l, 0) == Some(user) || (user.parse::<u32>().is_ok() && field(l, 2) == Some(user))
    });
    let (uid, name, mut gid) = match (user.parse::<u32>(), entry) {
        (Ok(n), Some(l)) => (
            n,
            field(l, 0).map(str::to_string),
            field(l, 3).and_then(|g| g.parse().ok()).unwrap_or(n),
        ),
        (Ok(n), None) => (n, None, n),
        (Err(_), Some(l)) => {
            let uid = field(l, 2)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| UserError::NoUser(user.into()))?;
            let gid = field(l, 3).and_then(|v| v.parse().ok()).unwrap_or(uid);
            (uid, Some(user.to_string()), gid)
        }
        (Err(_), None) => return Err(UserError::NoUser(user.to_string())),
    };
    let group_file = read_in_root(rootfs, "/etc/group");
    if let Some(g) = group {
        if g.is_empty() {
            return Err(UserError::Invalid(spec.to_string()));
        }
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_file
                .lines()
                .find(|l| field(l, 0) == Some(g))
                .and_then(|l| field(l, 2))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        };
    }
    let mut groups = Vec::new();
    if group.is_none() {
        if let Some(name) = &name {
            for l in group_file.lines() {
                let members = field(l, 3).unwrap_or("");
                if members.split(',').any(|m| m.trim() == name) {
                    if let Some(g) = field(l, 2).and_then(|v| v.parse::<u32>().ok()) {
                        if g != gid && !groups.contains(&g) {
                            groups.push(g);
                        }
                    }
                }
            }
        }
    }
    Ok(Ids { uid, gid, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nappgrp:x:1001:\nextra:x:2000:app,other\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn names_numbers_and_groups() {
        let r = rootfs();
        assert_eq!(
            resolve(r.path(), "app").unwrap(),
            Ids {
                uid: 1000,
                gid: 1001,
                groups: vec![2000]
            }
        );
        assert_eq!(
            resolve(r.path(), "app:extra").unwrap(),
            Ids {
                uid: 1000,
                gid: 2000,
                groups: vec![]
            }
        );
        assert_eq!(resolve(r.path(), "1000").unwrap().gid, 1001);
        assert_eq!(
            resolve(r.path(), "4242:7").unwrap(),
            Ids {
                uid: 4242,
                gid: 7,
                groups: vec![]
            }
        );
        assert_eq!(resolve(r.path(), "").unwrap().uid, 0);
        assert!(matches!(
            resolve(r.path(), "nobody"),
            Err(UserError::NoUser(_))
        ));
        assert!(matches!(
            resolve(r.path(), "app:nogroup"),
            Err(UserError::NoGroup(_))
        ));
    }

    #[test]
    fn passwd_symlinked_out_of_the_rootfs_is_not_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("etc/passwd")).unwrap();
        // The host's /etc/passwd has "root"; inside this rootfs there is no passwd at all.
        assert!(matches!(
            resolve(d.path(), "root"),
            Err(UserError::NoUser(_))
        ));
    }
}
