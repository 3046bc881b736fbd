//! Who invoked us, and acting as them.
//!
//! `isula-build` may be installed setuid-root, executable only by an admin-chosen group
//! (`configuration.toml` `group`, see `packaging/` and `docs/SETUID.md`). Then the process starts
//! with the caller's real uid and an effective uid of 0. [`init`] detects that before anything
//! else runs and:
//!
//! * replaces the environment with a short allow-list and a fixed `PATH`, and sets umask 022;
//! * makes the effective and saved gid 0 (store files are root:root), keeping the real ids so
//!   the caller can still signal their own build (`kill`, CI job timeouts);
//! * records the caller's uid and gid.
//!
//! [`authorize`] then refuses callers outside the group and options that would let them
//! move the data root or the configuration.
//!
//! Every file the caller names (Dockerfile, context, archives to read or write, `--iidfile`) is
//! opened inside [`as_caller`], which switches the *calling thread's* filesystem uid and gid to
//! the caller's (`setfsuid(2)`/`setfsgid(2)`). The kernel then checks permissions as the
//! caller and drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER and CAP_CHOWN from the
//! thread's effective set for as long as the switch lasts; files created meanwhile belong to
//! the caller. Outside [`as_caller`] the thread is root again, for store and sandbox work.
//! When not installed setuid (or run by root) there is no caller and [`as_caller`] is a plain
//! call.

use nix::unistd::{Gid, Uid};
use std::sync::OnceLock;

/// The `PATH` given to a setuid invocation: never the caller's.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Environment variables a non-root caller may pass in, besides `LC_*` and the proxy variables
/// (given to RUN with `--proxy`, the default, as upstream). Everything else is removed before
/// any code reads the environment.
const ENV_ALLOW: &[&str] = &[
    "TERM",
    "LANG",
    "LANGUAGE",
    "COLUMNS",
    "NO_COLOR",
    "SOURCE_DATE_EPOCH",
    crate::config::EXPERIMENTAL_ENV,
];

/// The user who started a setuid invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: Uid,
    pub gid: Gid,
}

static CALLER: OnceLock<Caller> = OnceLock::new();

/// Why a caller is refused.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("permission denied: user {uid} is not a member of group {group:?}, which may use isula-build")]
    NotInGroup { uid: u32, group: String },
    #[error("permission denied: group {0:?} (configuration.toml `group`) does not exist")]
    NoSuchGroup(String),
    #[error("permission denied: {0} may only be given by root")]
    RootOnly(String),
    #[error("setting up the caller's credentials failed: {0}")]
    Setup(String),
}

/// The caller of a setuid invocation; `None` when run by root or without setuid.
pub fn caller() -> Option<&'static Caller> {
    CALLER.get()
}

/// Whether this process was started setuid by a non-root user (real uid not 0, effective 0).
/// True from the start, whether or not [`init`] ran.
pub fn is_setuid_invocation() -> bool {
    !nix::unistd::getuid().is_root() && nix::unistd::geteuid().is_root()
}

fn env_allowed(key: &str) -> bool {
    ENV_ALLOW.contains(&key) || crate::config::PROXY_VARS.contains(&key) || key.starts_with("LC_")
}

/// Detect a setuid invocation and harden the process for it (see the module docs). Must run
/// first in `main`, while the process is single-threaded.
pub fn init() -> Result<Option<&'static Caller>, PrivilegeError> {
    if !is_setuid_invocation() {
        return Ok(None);
    }
    let ruid = nix::unistd::getuid();
    let rgid = nix::unistd::getgid();
    // The environment: only the allow-list survives; PATH is ours. (Single-threaded here,
    // so changing the environment races with nothing.)
    let keys: Vec<std::ffi::OsString> = std::env::vars_os().map(|(k, _)| k).collect();
    for k in keys {
        if !k.to_str().is_some_and(env_allowed) {
            std::env::remove_var(&k);
        }
    }
    std::env::set_var("PATH", SAFE_PATH);
    std::env::set_var("HOME", "/root");
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::unistd::setresgid(rgid, Gid::from_raw(0), Gid::from_raw(0))
        .map_err(|e| PrivilegeError::Setup(format!("setresgid: {e}")))?;
    let caller = Caller {
        uid: ruid,
        gid: rgid,
    };
    Ok(Some(CALLER.get_or_init(|| caller)))
}

/// Refuse a setuid caller who gave options only root may give (`flags`: their names).
/// No-op without a caller.
pub fn refuse_root_only(flags: &[&str]) -> Result<(), PrivilegeError> {
    match (caller(), flags.first()) {
        (Some(_), Some(flag)) => Err(PrivilegeError::RootOnly((*flag).to_string())),
        _ => Ok(()),
    }
}

/// Refuse a setuid caller who is not in `group`. No-op without a caller.
pub fn authorize(group: &str) -> Result<(), PrivilegeError> {
    let Some(c) = caller() else { return Ok(()) };
    let g = nix::unistd::Group::from_name(group)
        .map_err(|e| PrivilegeError::Setup(format!("look up group {group:?}: {e}")))?
        .ok_or_else(|| PrivilegeError::NoSuchGroup(group.to_string()))?;
    // The supplementary groups are still the caller's: a setuid exec does not change them.
    let groups =
        nix::unistd::getgroups().map_err(|e| PrivilegeError::Setup(format!("getgroups: {e}")))?;
    if c.gid == g.gid || groups.contains(&g.gid) {
        Ok(())
    } else {
        Err(PrivilegeError::NotInGroup {
            uid: c.uid.as_raw(),
            group: group.to_string(),
        })
    }
}

/// Restores the thread's filesystem ids when dropped.
struct FsIds {
    uid: Uid,
    gid: Gid,
}

impl FsIds {
    fn switch(uid: Uid, gid: Gid) -> FsIds {
        // setfsgid first: it needs CAP_SETGID, which a non-zero fsuid does not remove, but
        // keeping the order symmetric with the restore is clearer.
        let old_gid = Gid::from_raw(nix::unistd::setfsgid(gid).as_raw());
        let old_uid = Uid::from_raw(nix::unistd::setfsuid(uid).as_raw());
        // setfsuid reports no error; read the value back (an invalid id changes nothing and
        // returns the current one).
        let now_uid = nix::unistd::setfsuid(Uid::from_raw(u32::MAX));
        let now_gid = nix::unistd::setfsgid(Gid::from_raw(u32::MAX));
        if now_uid != uid || now_gid != gid {
            // Going on would touch the caller's files with root's rights: stop now. The store
            // is crash-safe, so exiting here leaves it consistent.
            eprintln!("isula-build: cannot switch to the caller's filesystem credentials");
            std::process::exit(125);
        }
        FsIds {
            uid: old_uid,
            gid: old_gid,
        }
    }
}

impl Drop for FsIds {
    fn drop(&mut self) {
        nix::unistd::setfsuid(self.uid);
        nix::unistd::setfsgid(self.gid);
        let now = nix::unistd::setfsuid(Uid::from_raw(u32::MAX));
        if now != self.uid {
            eprintln!("isula-build: cannot restore filesystem credentials");
            std::process::exit(125);
        }
    }
}

/// Run `f` on this thread with the caller's filesystem credentials (see the module docs).
/// Threads spawned inside `f` start with them too. A plain call when there is no caller.
pub fn as_caller<T>(f: impl FnOnce() -> T) -> T {
    match caller() {
        None => f(),
        Some(c) => {
            let _ids = FsIds::switch(c.uid, c.gid);
            f()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_allow_list() {
        for k in [
            "TERM",
            "LANG",
            "LC_ALL",
            "LC_CTYPE",
            "https_proxy",
            "NO_PROXY",
        ] {
            assert!(env_allowed(k), "{k}");
        }
        for k in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "RUST_LOG",
            "PATH",
            "HOME",
            "TMPDIR",
            "DOCKER_HOST",
            "NOTIFY_SOCKET",
            "XDG_RUNTIME_DIR",
        ] {
            assert!(!env_allowed(k), "{k}");
        }
    }

    #[test]
    fn as_caller_without_caller_is_a_plain_call() {
        if caller().is_none() {
            assert_eq!(as_caller(|| 41 + 1), 42);
        }
    }

    #[test]
    fn fs_ids_switch_and_restore() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP fs_ids_switch_and_restore: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "x").unwrap();
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        // Run on a fresh thread: fs ids are per thread.
        let s = secret.clone();
        let d = dir.path().to_path_buf();
        std::thread::spawn(move || {
            {
                let _ids = FsIds::switch(Uid::from_raw(65534), Gid::from_raw(65534));
                assert!(std::fs::read(&s).is_err(), "read root-only file as nobody");
                // CAP_FOWNER is gone too.
                std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                    .expect_err("chmod of root's dir as nobody");
            }
            assert_eq!(
                std::fs::read(&s).unwrap(),
                b"x",
                "root again after the guard"
            );
        })
        .join()
        .unwrap();
    }
}
