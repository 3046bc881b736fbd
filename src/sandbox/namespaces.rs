//! The namespaces of a RUN step: mount, PID, UTS and IPC. Network stays the host's (upstream's
//! only mode); user namespaces are not used (the helper runs as real root).

use nix::sched::{unshare, CloneFlags};

/// What the helper unshares before forking the namespace's PID 1.
pub const FLAGS: CloneFlags = CloneFlags::CLONE_NEWNS
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC);

/// Enter new namespaces; the PID namespace applies to the next child.
pub fn enter() -> nix::Result<()> {
    unshare(FLAGS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_user_namespaces_are_not_unshared() {
        assert!(!FLAGS.contains(CloneFlags::CLONE_NEWNET));
        assert!(!FLAGS.contains(CloneFlags::CLONE_NEWUSER));
        assert!(FLAGS.contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
    }
}
