//! The helper process (re-exec of `/proc/self/exe`), in two parts:
//!
//! - the outer helper reads the spec from stdin, unshares the namespaces, forks the init and
//!   supervises it (forwarding signals), with PR_SET_PDEATHSIG tying it to the caller;
//! - the init (PID 1 of the new PID namespace, PDEATHSIG tied to the outer helper) mounts the
//!   rootfs, pivots into it and runs the command as its child (or hands a bundle to an OCI
//!   runtime), reaps and forwards signals, and on the command's end kills whatever is left in
//!   the namespace, removes the mount points it created and reports how the command ended.
//!
//! When any of these processes dies, everything below it dies (PDEATHSIG, then the PID
//! namespace), and with the last process of the mount namespace every mount goes.

use super::process::channel::{self, Status};
use super::process::exec::{self, Prepared};
use super::process::init::{self, Ended};
use super::rootfs::{self, Created};
use super::{capabilities, namespaces, oci, seccomp, syscall, user, RunSpec};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::ForkResult;
use pathrs::flags::OpenFlags;
use pathrs::Root;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

/// The default PATH when the image sets none (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn fail(status: &mut File, message: String) -> ! {
    channel::send(status, &Status::Error { message });
    super::syscall::exit_now(1)
}

/// The outer helper. `status_fd` is the inherited write end of the status pipe.
pub fn outer_main(status_fd: i32) -> ! {
    if nix::fcntl::fcntl(
        // The caller passed this descriptor on purpose (its close-on-exec flag cleared).
        super::borrow_fd(status_fd),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .is_err()
    {
        super::syscall::exit_now(125);
    }
    let Some(mut status) = super::owned_fd(status_fd).map(File::from) else {
        super::syscall::exit_now(125)
    };
    if !nix::unistd::getuid().is_root() {
        fail(
            &mut status,
            "the RUN sandbox helper must be started by root".into(),
        );
    }
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().lock().take(64 << 20).read_to_end(&mut raw) {
        fail(&mut status, format!("read spec: {e}"));
    }
    let spec: RunSpec = match serde_json::from_slice(&raw) {
        Ok(s) => s,
        Err(e) => fail(&mut status, format!("parse spec: {e}")),
    };
    // The command's stdin is /dev/null (as upstream: RUN has no input).
    match nix::fcntl::open("/dev/null", OFlag::O_RDONLY, nix::sys::stat::Mode::empty()) {
        Ok(fd) => {
            let mut stdin = super::owned_fd(0).unwrap_or_else(|| super::syscall::exit_now(125));
            let _ = nix::unistd::dup2(&fd, &mut stdin);
            std::mem::forget(stdin);
        }
        Err(e) => fail(&mut status, format!("open /dev/null: {e}")),
    }
    let set = match init::block_signals() {
        Ok(s) => s,
        Err(e) => fail(&mut status, format!("block signals: {e}")),
    };
    if let Err(e) = namespaces::enter() {
        fail(&mut status, format!("unshare namespaces: {e}"));
    }
    // A pipe whose write end only we hold: the init sees HUP on it if we are gone before its
    // PDEATHSIG is armed.
    let (alive_r, alive_w) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => fail(&mut status, format!("pipe: {e}")),
    };
    match syscall::fork_single_threaded() {
        Ok(ForkResult::Child) => {
            drop(alive_w);
            init_main(spec, status, alive_r, &set)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(alive_r);
            let ended = init::supervise(&set, child);
            drop(alive_w);
            match ended {
                Ended::Exited(0) => super::syscall::exit_now(0),
                Ended::Exited(c) => fail(&mut status, format!("sandbox init failed (exit {c})")),
                Ended::Signaled(s) => {
                    fail(&mut status, format!("sandbox init killed by signal {s}"))
                }
            }
        }
        Err(e) => fail(&mut status, format!("fork: {e}")),
    }
}

/// Read a small file inside the rootfs (symlinks resolved inside it); `None` when absent.
fn read_in_root(root: &Root, path: &str) -> Option<String> {
    let f = root.resolve(path).ok()?.reopen(OpenFlags::O_RDONLY).ok()?;
    let mut s = String::new();
    f.take(16 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

/// The environment of the command: the spec's, plus PATH and HOME when missing.
pub fn final_env(env: &[String], home: &str) -> Vec<String> {
    let mut out: Vec<String> = env.to_vec();
    let has = |k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has("PATH") {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has("HOME") {
        out.push(format!("HOME={home}"));
    }
    out
}

/// Work common to both modes inside the rootfs: the working directory and the user.
pub(crate) fn prepare_common(root: &Root, spec: &RunSpec) -> Result<user::ExecUser, String> {
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    root.mkdir_all(cwd, &std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("create working directory {cwd}: {e}"))?;
    let passwd = read_in_root(root, "/etc/passwd");
    let group = read_in_root(root, "/etc/group");
    user::resolve(&spec.user, passwd.as_deref(), group.as_deref()).map_err(|e| e.to_string())
}

fn init_main(spec: RunSpec, mut status: File, alive: OwnedFd, set: &nix::sys::signal::SigSet) -> ! {
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        super::syscall::exit_now(1);
    }
    // The outer helper may have died before PDEATHSIG was armed: then its pipe end is closed.
    let mut fds = [nix::poll::PollFd::new(
        alive.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0 {
        super::syscall::exit_now(1);
    }
    if let Err(e) = syscall::install_noop_handlers(init::FORWARDED) {
        fail(&mut status, format!("signal handlers: {e}"));
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let outcome = match &spec.runtime {
        None => builtin(&spec, set),
        Some(rt) => oci::run_with_runtime(&spec, rt, set),
    };
    match outcome {
        Ok(Ended::Exited(code)) => channel::send(&mut status, &Status::Exit { code }),
        Ok(Ended::Signaled(signal)) => channel::send(&mut status, &Status::Signal { signal }),
        Err(message) => channel::send(&mut status, &Status::Error { message }),
    }
    super::syscall::exit_now(0)
}

/// Mount the overlay and the plan; shared by both modes. Returns the rootfs path, a Root on it
/// and the mount points created in the image.
pub fn setup_rootfs(
    spec: &RunSpec,
    with_mounts: bool,
) -> Result<(std::path::PathBuf, Root, Vec<Created>), String> {
    rootfs::make_private().map_err(|e| e.to_string())?;
    let rootfs = rootfs::mount_overlay(
        &spec.bundle_dir,
        &spec.lower_dirs,
        &spec.upper_dir,
        &spec.work_dir,
    )
    .map_err(|e| e.to_string())?;
    let root = Root::open(&rootfs).map_err(|e| format!("open rootfs: {e}"))?;
    let plan = rootfs::mount::plan(
        spec.bundle_dir.join("hosts"),
        spec.bundle_dir.join("resolv.conf"),
    );
    let mut created = Vec::new();
    if with_mounts {
        rootfs::mount_all(&root, &plan, &mut created).map_err(|e| e.to_string())?;
    } else {
        // An OCI runtime mounts; we only make sure no mount point has to be created by it
        // (it would stay in the layer).
        for (i, m) in plan.iter().enumerate() {
            if !rootfs::mount::under_earlier(&plan, i) {
                rootfs::ensure(&root, m.destination, m.kind, &mut created)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok((rootfs, root, created))
}

fn builtin(spec: &RunSpec, set: &nix::sys::signal::SigSet) -> Result<Ended, String> {
    let (rootfs, _, created) = setup_rootfs(spec, true)?;
    rootfs::pivot(&rootfs).map_err(|e| e.to_string())?;
    let root = Root::open("/").map_err(|e| format!("open new root: {e}"))?;
    let result = run_in_root(spec, &root, set);
    init::kill_all_and_reap();
    rootfs::remove_created(None, &created);
    result
}

fn run_in_root(
    spec: &RunSpec,
    root: &Root,
    set: &nix::sys::signal::SigSet,
) -> Result<Ended, String> {
    rootfs::protect_proc().map_err(|e| e.to_string())?;
    if !spec.hostname.is_empty() {
        nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
    }
    let user = prepare_common(root, spec)?;
    let caps = capabilities::effective_set(&spec.cap_add);
    let filter = seccomp::build(&caps).map_err(|e| format!("seccomp filter: {e}"))?;
    let prepared = Prepared {
        args: spec.args.clone(),
        env: final_env(&spec.env, &user.home),
        cwd: if spec.cwd.is_empty() {
            "/".into()
        } else {
            spec.cwd.clone()
        },
        user,
        caps,
        filter,
    };
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let child = match syscall::fork_single_threaded() {
        Ok(ForkResult::Child) => {
            drop(err_r);
            exec::child(&prepared, err_w)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(format!("fork: {e}")),
    };
    drop(err_w);
    let mut msg = String::new();
    let _ = File::from(err_r).read_to_string(&mut msg);
    if !msg.is_empty() {
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(msg);
    }
    Ok(init::supervise(set, child))
}

/// The status descriptor number from argv (never stdio).
pub fn fd_from_arg(s: &str) -> Option<i32> {
    s.parse::<i32>().ok().filter(|&fd| fd > 2)
}
