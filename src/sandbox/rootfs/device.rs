//! The minimal `/dev`: the device nodes and links every container gets (OCI runtime spec
//! "Default Devices", Docker's set).
//!
//! There is no device cgroup, so `/dev` is a `nodev` tmpfs (like the rootfs) and the nodes are
//! the host's, bind-mounted one by one (as rootless runc does): a node the command creates with
//! CAP_MKNOD (say, the host's disk) cannot be opened anywhere in the sandbox.

use super::{err, perr, Result};
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::symlinkat;
use pathrs::flags::OpenFlags;
use pathrs::Root;
use std::os::fd::AsRawFd;

/// The character devices bound from the host's `/dev`.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// (name, target)
pub const LINKS: &[(&str, &str)] = &[
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
];

/// Create the nodes and links in the rootfs's `/dev` (a tmpfs we just mounted), before
/// pivot_root (the sources are the host's nodes).
pub fn populate(root: &Root) -> Result<()> {
    let dev = root
        .resolve("/dev")
        .map_err(|e| perr("resolve /dev", e))?
        .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
        .map_err(|e| perr("open /dev", e))?;
    for name in DEVICES {
        let target = openat(
            &dev,
            *name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o666),
        )
        .map_err(|e| err(format!("create /dev/{name}"), e))?;
        let host = format!("/dev/{name}");
        mount(
            Some(host.as_str()),
            format!("/proc/self/fd/{}", target.as_raw_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err(format!("bind {host}"), e))?;
    }
    for (name, target) in LINKS {
        symlinkat(*target, &dev, *name).map_err(|e| err(format!("symlink /dev/{name}"), e))?;
    }
    Ok(())
}
