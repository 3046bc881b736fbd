//! `USER` resolution against the image's `/etc/passwd` and `/etc/group`, as Docker does it.
//!
//! Pure functions of the file contents (no I/O): the sandbox reads the two files inside the
//! rootfs (symlinks resolved inside it) and hands their text here.
//!
//! Rules (Docker's, via runc's `GetExecUser`):
//! - `""` is root: uid 0, gid 0 (or root's passwd gid), home from passwd or `/`.
//! - `name` must exist in passwd; a number is used as is, looked up in passwd only for the
//!   primary group and home.
//! - `user:group`: a group name must exist in the group file; a number is used as is.
//! - Supplementary groups come from the group file's member lists, unless a group was given
//!   explicitly ("the user will have only the specified group membership").

use thiserror::Error;

/// The identity the RUN command executes as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (sorted, deduplicated, primary gid excluded).
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Why a `USER` spec does not resolve.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    #[error("invalid user spec {0:?}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A numeric id as Docker accepts it: decimal, within the signed 32-bit range runc allows.
fn numeric_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&n| n <= i32::MAX as u32)
}

/// Resolve a `USER` spec; `passwd`/`group` are the files' contents, `None` when absent.
pub fn resolve(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, UserError> {
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.contains(':') || group_part.is_some_and(|g| g.contains(':')) {
        return Err(UserError::Invalid(spec.to_string()));
    }

    // The passwd entry, if any, and the uid.
    let (entry, uid) = if user_part.is_empty() {
        (users.iter().find(|u| u.uid == 0), 0)
    } else if let Some(n) = numeric_id(user_part) {
        (users.iter().find(|u| u.uid == n), n)
    } else {
        match users.iter().find(|u| u.name == user_part) {
            Some(e) => (Some(e), e.uid),
            None => return Err(UserError::NoSuchUser(user_part.to_string())),
        }
    };
    let home = entry
        .map(|e| e.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string());

    match group_part {
        Some(g) if !g.is_empty() => {
            let gid = match numeric_id(g) {
                Some(n) => n,
                None => match groups.iter().find(|e| e.name == g) {
                    Some(e) => e.gid,
                    None => return Err(UserError::NoSuchGroup(g.to_string())),
                },
            };
            Ok(ExecUser {
                uid,
                gid,
                additional_gids: Vec::new(),
                home,
            })
        }
        Some(_) => Err(UserError::Invalid(spec.to_string())),
        None => {
            let gid = entry.map(|e| e.gid).unwrap_or(0);
            let mut additional: Vec<u32> = match entry {
                Some(e) => groups
                    .iter()
                    .filter(|g| g.members.contains(&e.name))
                    .map(|g| g.gid)
                    .filter(|&g| g != gid)
                    .collect(),
                None => Vec::new(),
            };
            additional.sort_unstable();
            additional.dedup();
            Ok(ExecUser {
                uid,
                gid,
                additional_gids: additional,
                home,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        alice:x:1000:1000::/home/alice:/bin/sh\n\
        broken line\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:alice,bob\naudio:x:29:alice\nalice:x:1000:\nnogroup:x:65534:\n";

    fn r(spec: &str) -> Result<ExecUser, UserError> {
        resolve(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_is_root() {
        let u = r("").expect("root");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert!(u.additional_gids.is_empty());
        let u = resolve("", None, None).expect("root without files");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
    }

    #[test]
    fn name_gets_primary_and_supplementary_groups() {
        let u = r("alice").expect("alice");
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![10, 29]);
        assert_eq!(u.home, "/home/alice");
    }

    #[test]
    fn numeric_uid_known_and_unknown() {
        let u = r("1000").expect("1000");
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![10, 29]);
        let u = r("4242").expect("unknown uid is fine");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(u.additional_gids.is_empty());
    }

    #[test]
    fn explicit_group_drops_supplementary() {
        let u = r("alice:wheel").expect("alice:wheel");
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert!(u.additional_gids.is_empty());
        let u = r("4242:77").expect("numbers");
        assert_eq!((u.uid, u.gid), (4242, 77));
        let u = r("nobody:nogroup").expect("nobody");
        assert_eq!((u.uid, u.gid), (65534, 65534));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(r("mallory"), Err(UserError::NoSuchUser("mallory".into())));
        assert_eq!(
            r("alice:staff"),
            Err(UserError::NoSuchGroup("staff".into()))
        );
        assert!(matches!(r("alice:"), Err(UserError::Invalid(_))));
        assert!(matches!(r("a:b:c"), Err(UserError::Invalid(_))));
        // Out of runc's range: treated as a name, which does not exist.
        assert!(matches!(r("4294967295"), Err(UserError::NoSuchUser(_))));
    }
}
