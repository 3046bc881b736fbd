//! Scoped interception of Ctrl+C (SIGINT), SIGTERM and SIGHUP, for work that must clean up
//! after itself before the process dies (a temporary archive handed to another program).
//!
//! [`Interrupts::catch`] blocks those signals in the calling thread and opens a `signalfd`
//! for them, so they stay pending instead of killing the process; the work polls
//! [`Interrupts::pending`] at safe points, cleans up, and the caller re-raises the signal
//! with [`reraise`] so the process still dies of it. Dropping the guard restores the old
//! mask: a signal that arrived but was never polled is then delivered as usual.
//!
//! Child processes do not inherit the block: the standard library resets the signal mask
//! of every child it spawns. Threads spawned while the guard lives do inherit it.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Signals that end a run when a user or service manager asks.
const SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// While alive: the signals above are held pending and readable from a signalfd.
pub struct Interrupts {
    fd: SignalFd,
    old: SigSet,
}

impl Interrupts {
    /// Start holding SIGINT, SIGTERM and SIGHUP in this thread.
    pub fn catch() -> std::io::Result<Interrupts> {
        let mut set = SigSet::empty();
        for s in SIGNALS {
            set.add(s);
        }
        let old = set.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        match SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Ok(Interrupts { fd, old }),
            Err(e) => {
                let _ = old.thread_set_mask();
                Err(e.into())
            }
        }
    }

    /// A signal that arrived since the last call (consumed: re-raise it when done).
    pub fn pending(&self) -> Option<Signal> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
            _ => None,
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        let _ = self.old.thread_set_mask();
    }
}

/// Deliver `sig` to this process again (after cleanup), so it ends as the signal asks.
pub fn reraise(sig: Signal) {
    let _ = nix::sys::signal::raise(sig);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_signals_are_pending_not_fatal() {
        // SIGHUP to this thread only: with the guard it must wait in the signalfd.
        let guard = Interrupts::catch().unwrap();
        assert_eq!(guard.pending(), None);
        // raise() signals the calling thread only.
        nix::sys::signal::raise(Signal::SIGHUP).unwrap();
        assert_eq!(guard.pending(), Some(Signal::SIGHUP));
        assert_eq!(guard.pending(), None);
        drop(guard);
        let mask = SigSet::thread_get_mask().unwrap();
        assert!(!mask.contains(Signal::SIGHUP));
    }
}
