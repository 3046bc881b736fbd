//! Supervision as PID 1 (and by the outer helper): signals are blocked and collected with
//! sigwait; SIGCHLD reaps every child (orphans of the namespace included), the others are
//! forwarded to the main child.

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Signals passed on to the command (Ctrl+C, cancel, hang-up, …).
pub const FORWARDED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// How the main child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Block the forwarded signals and SIGCHLD; returns the set to wait on.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(set)
}

/// Unblock everything (in a child about to exec).
pub fn unblock_all() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Reap whatever has exited; returns the main child's end if it was among them.
fn reap(main: Pid) -> Option<Ended> {
    let mut ended = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => ended = Some(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => {
                ended = Some(Ended::Signaled(sig as i32))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(_) => {}
        }
    }
}

/// Wait for `main` to end, forwarding signals to it and reaping all children meanwhile.
pub fn supervise(set: &SigSet, main: Pid) -> Ended {
    loop {
        if let Some(e) = reap(main) {
            return e;
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = kill(main, sig);
            }
            Err(_) => {}
        }
    }
}

/// As PID 1 of the namespace: kill every other process in it and reap them all.
pub fn kill_all_and_reap() {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    loop {
        match waitpid(None, None) {
            Err(Errno::ECHILD) => return,
            Err(Errno::EINTR) | Ok(_) => {}
            Err(_) => return,
        }
    }
}
