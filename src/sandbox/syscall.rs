//! The few calls without a safe wrapper: fork, signal dispositions, close_range. Every unsafe
//! block of the sandbox outside `pre_exec` lives here.

#![allow(unsafe_code)]

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{fork, ForkResult};

/// Fork the current process. Only called from the helper, which is single-threaded (a fresh
/// re-exec of `/proc/self/exe` that never starts a thread), so the child may allocate.
pub fn fork_single_threaded() -> nix::Result<ForkResult> {
    // SAFETY: the helper process has exactly one thread (it is dispatched at the top of `main`
    // before anything can spawn a thread), so no lock can be held by another thread at the
    // time of the fork and the child may use the allocator and std freely.
    unsafe { fork() }
}

/// Exit at once, without running atexit handlers or flushing std buffers (a forked child must
/// not run its parent's cleanup).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) takes a plain integer and never returns.
    unsafe { libc::_exit(code) }
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// Install a no-op handler for `signals` (which are also blocked and collected with sigwait):
/// a PID 1 only receives signals it has a handler for.
pub fn install_noop_handlers(signals: &[Signal]) -> nix::Result<()> {
    let act = SigAction::new(
        SigHandler::Handler(noop_handler),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in signals {
        // SAFETY: the handler is an empty `extern "C"` function: async-signal-safe.
        unsafe { sigaction(*s, &act) }?;
    }
    Ok(())
}

/// Restore the default disposition of every catchable signal (the Rust runtime ignores
/// SIGPIPE; ignored dispositions survive execve) — in the child, before exec.
pub fn reset_signal_dispositions() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator() {
        if s == Signal::SIGKILL || s == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours; failures (none expected for these
        // signals) leave the old disposition, which is harmless.
        let _ = unsafe { sigaction(s, &dfl) };
    }
}

/// Mark every descriptor from `first` on close-on-exec (close_range(2), Linux 5.11+), with a
/// /proc/self/fd walk as fallback for older kernels.
pub fn cloexec_from(first: i32) -> std::io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let mut fds = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = e?.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            if fd >= first {
                fds.push(fd);
            }
        }
    }
    for fd in fds {
        // The read_dir descriptor is gone by now; EBADF for it is fine.
        let _ = nix::fcntl::fcntl(
            // SAFETY: `fd` is only used for F_SETFD; a stale number yields EBADF, no UB.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    Ok(())
}
