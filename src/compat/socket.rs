//! The server's place on the node: the one-server lock in the run root, the unix socket
//! (mode 0660, owner root, group the configured one) and the group lookup.

use crate::compat::error::CompatError;
use crate::lock::{self, LockGuard, Mode};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Upstream's socket mode.
pub const SOCKET_MODE: u32 = 0o660;

/// Take the server lock of `runroot` (created 0700 if missing), or say another server runs.
pub fn lock_runroot(runroot: &Path) -> Result<LockGuard, CompatError> {
    create_private_dir(runroot)?;
    let path = lock::server_lock_path(runroot);
    match lock::try_lock(&path, Mode::Exclusive)? {
        Some(g) => Ok(g),
        None => Err(CompatError::AlreadyRunning { path }),
    }
}

/// Create `dir` (and parents) with mode 0700 when missing; refuse a non-directory.
pub fn create_private_dir(dir: &Path) -> Result<(), CompatError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(CompatError::Invalid(format!(
            "{:?} is not a directory",
            dir.display().to_string()
        ))),
        Err(_) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CompatError::io("create directory", dir, e)),
    }
}

/// The gid of `group`, or a clear error when it does not exist (upstream refuses to start
/// too).
pub fn group_gid(group: &str) -> Result<u32, CompatError> {
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(CompatError::NoSuchGroup(group.to_string())),
        Err(e) => Err(CompatError::Socket(format!("look up group {group:?}: {e}"))),
    }
}

/// Removes the socket path when dropped.
#[derive(Debug)]
pub struct SocketPath {
    pub path: PathBuf,
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listen on `path`: a stale socket there (nothing answers on it) is replaced; a live one,
/// or anything that is not a socket, is refused. The socket is created with no
/// access for others (umask) and then given mode 0660 and group `gid`. Call while the
/// process is single-threaded (the umask is process-wide).
pub fn listen(path: &Path, gid: u32) -> Result<(UnixListener, SocketPath), CompatError> {
    use std::os::unix::fs::FileTypeExt;
    let sock_err = |m: String| CompatError::Socket(m);
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            // A server with another run root may be serving there: never take its socket.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(sock_err(format!(
                    "another server is listening on {}",
                    path.display()
                )));
            }
            std::fs::remove_file(path)
                .map_err(|e| sock_err(format!("remove stale socket {}: {e}", path.display())))?
        }
        Ok(_) => {
            return Err(sock_err(format!(
                "{} exists and is not a socket",
                path.display()
            )))
        }
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            std::fs::create_dir_all(parent)
                .map_err(|e| sock_err(format!("create {}: {e}", parent.display())))?;
        }
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| sock_err(format!("listen on {}: {e}", path.display())))?;
    let socket = SocketPath {
        path: path.to_path_buf(),
    };
    std::os::unix::fs::chown(path, Some(0), Some(gid))
        .map_err(|e| sock_err(format!("chown {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| sock_err(format!("chmod {}: {e}", path.display())))?;
    Ok((listener, socket))
}
