//! The RUN sandbox: executes one Dockerfile `RUN` step in a sandbox the binary sets up itself
//! (DESIGN.md "Sandbox for RUN"), or delegates it to an OCI runtime through a bundle.
//!
//! [`run`] re-executes `/proc/self/exe` with a hidden argument ([`HELPER_ARG`]); `main` hands
//! such invocations to [`helper_main`] before anything else runs. The spec travels as JSON on
//! the helper's stdin, the outcome comes back as JSON on a status pipe. See [`helper`] for the
//! process tree and [`rootfs`] for the filesystem.
//!
//! Module layout follows youki: [`namespaces`], [`rootfs`] (`mount`, `device`), [`process`]
//! (`channel`, `init`, `exec`), [`seccomp`], [`capabilities`], [`user`], [`oci`]; the unsafe
//! calls live in [`syscall`] and in [`run`]'s `pre_exec`.

#![allow(unsafe_code)]

pub mod capabilities;
pub mod helper;
pub mod namespaces;
pub mod oci;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod syscall;
pub mod user;

use process::channel::{self, Status};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// argv[1] of the helper process.
pub const HELPER_ARG: &str = "__isula-build-sandbox-helper";
/// argv[1] of the hidden test/benchmark hook: `isula-build __isula-build-sandbox-run SPEC.json`
/// runs one step and exits with its code (root only).
pub const RUN_HOOK_ARG: &str = "__isula-build-sandbox-run";

/// One RUN step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Overlay lower dirs, top-most first (layer diff dirs; empty for FROM scratch).
    pub lower_dirs: Vec<PathBuf>,
    /// Empty dir receiving the step's changes (overlay upper; committed as the layer).
    pub upper_dir: PathBuf,
    /// Empty overlay workdir on the same filesystem as `upper_dir`.
    pub work_dir: PathBuf,
    /// argv (the driver wraps shell form as SHELL + [cmd]).
    pub args: Vec<String>,
    /// KEY=VALUE, final; PATH (Docker's default) and HOME (from passwd) added when missing.
    pub env: Vec<String>,
    /// WORKDIR, created in the rootfs if missing ("" = "/").
    pub cwd: String,
    /// USER: "", "name", "uid", "uid:gid", "name:group".
    pub user: String,
    /// Hostname in the step's UTS namespace ("" keeps the host's, as upstream).
    pub hostname: String,
    /// `--cap-add` names ("CAP_SYS_ADMIN" or "SYS_ADMIN"); see [`validate_caps`].
    pub cap_add: Vec<String>,
    /// None = built-in sandbox; Some("runc" | "crun" | path) = OCI runtime delegation.
    pub runtime: Option<String>,
    /// Scratch dir for the rootfs mount point / OCI bundle (the caller removes it).
    pub bundle_dir: PathBuf,
}

/// Why a step could not run (a non-zero exit of the command is not an error).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Upstream's wording for an unknown `--cap-add` name.
    #[error("cap {0} is invalid")]
    InvalidCap(String),
    #[error("invalid RUN spec: {0}")]
    InvalidSpec(String),
    #[error("prepare RUN bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("start RUN sandbox: {0}")]
    Spawn(#[source] std::io::Error),
    /// The helper reported a setup failure (mounts, user, exec, runtime …).
    #[error("RUN sandbox: {0}")]
    Setup(String),
    #[error("RUN sandbox helper ended without a result ({0})")]
    HelperDied(String),
}

/// Validate `--cap-add` names; returns them normalized (`CAP_…`, deduplicated, `ALL`
/// expanded). Call before the build starts.
pub fn validate_caps(names: &[String]) -> Result<Vec<String>, SandboxError> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let caps = capabilities::normalize(n).ok_or_else(|| SandboxError::InvalidCap(n.clone()))?;
        for c in caps {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

fn check_spec(spec: &RunSpec) -> Result<(), SandboxError> {
    let bad = |m: String| Err(SandboxError::InvalidSpec(m));
    if spec.args.is_empty() || spec.args[0].is_empty() {
        return bad("empty command".into());
    }
    for (what, p) in [
        ("upper_dir", &spec.upper_dir),
        ("work_dir", &spec.work_dir),
        ("bundle_dir", &spec.bundle_dir),
    ] {
        if !p.is_absolute() {
            return bad(format!("{what} {} is not absolute", p.display()));
        }
    }
    if let Some(l) = spec.lower_dirs.iter().find(|l| !l.is_absolute()) {
        return bad(format!("lower dir {} is not absolute", l.display()));
    }
    if !spec.cwd.is_empty() && !spec.cwd.starts_with('/') {
        return bad(format!("working directory {:?} is not absolute", spec.cwd));
    }
    if spec.lower_dirs.len() > 500 {
        return bad(format!(
            "{} layers: overlay stacks at most 500",
            spec.lower_dirs.len()
        ));
    }
    Ok(())
}

/// Copy the host's `/etc/hosts` and `/etc/resolv.conf` into the bundle (bound read-only into
/// the rootfs, as upstream does); an absent host file gives an empty one.
fn stage_host_files(bundle: &std::path::Path) -> Result<(), SandboxError> {
    for (src, name) in [("/etc/hosts", "hosts"), ("/etc/resolv.conf", "resolv.conf")] {
        let dest = bundle.join(name);
        let mut data = Vec::new();
        if let Ok(f) = std::fs::File::open(src) {
            let _ = f.take(1 << 20).read_to_end(&mut data);
        }
        std::fs::write(&dest, &data).map_err(|source| SandboxError::Bundle {
            path: dest.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Run one step; returns the command's exit code (128 + N when killed by signal N).
///
/// Blocks until the step ends. Its stdout/stderr go to ours; its stdin is /dev/null. When this
/// returns, or when the calling process dies, no process of the step and no mount remain.
pub fn run(spec: &RunSpec) -> Result<i32, SandboxError> {
    let mut spec = spec.clone();
    spec.cap_add = validate_caps(&spec.cap_add)?;
    check_spec(&spec)?;
    std::fs::create_dir_all(&spec.bundle_dir).map_err(|source| SandboxError::Bundle {
        path: spec.bundle_dir.clone(),
        source,
    })?;
    stage_host_files(&spec.bundle_dir)?;
    let json = serde_json::to_vec(&spec).map_err(|e| SandboxError::Spawn(e.into()))?;

    let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SandboxError::Spawn(e.into()))?;
    let status_fd = status_w.as_raw_fd();
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("isula-build")
        .arg(HELPER_ARG)
        .arg(status_fd.to_string())
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (fcntl, setgroups, setresgid, setresuid, prctl, getppid)
    // on plain integers and a null pointer; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(status_fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A setuid invocation (real uid = the caller, see crate::privilege): the helper
            // is ours, not the caller's, so it runs with every id 0 and no supplementary
            // group of the caller. This comes before PDEATHSIG: changing credentials
            // clears it.
            if libc::getuid() != 0
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(0, 0, 0) != 0
                    || libc::setresuid(0, 0, 0) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The caller died before PDEATHSIG was armed: do not start.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
    drop(status_w);
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that died early shows up below, through its status.
        let _ = stdin.write_all(&json);
    }
    let mut out = Vec::new();
    let _ = std::fs::File::from(status_r).read_to_end(&mut out);
    let wait = child.wait().map_err(SandboxError::Spawn)?;
    match channel::first(&out) {
        Some(Status::Exit { code }) => Ok(code),
        Some(Status::Signal { signal }) => Ok(128 + signal),
        Some(Status::Error { message }) => Err(SandboxError::Setup(message)),
        None => Err(SandboxError::HelperDied(wait.to_string())),
    }
}

/// Whether argv asks for a hidden entry point ([`HELPER_ARG`] or [`RUN_HOOK_ARG`]).
pub fn is_hidden_invocation() -> bool {
    matches!(
        std::env::args_os()
            .nth(1)
            .as_deref()
            .and_then(|a| a.to_str()),
        Some(HELPER_ARG) | Some(RUN_HOOK_ARG)
    )
}

/// The hidden entry points; called by `main` before anything else when
/// [`is_hidden_invocation`] is true. Both refuse unless the real uid is root, so a setuid
/// installation cannot be driven through them by an ordinary user.
pub fn helper_main() -> ! {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(HELPER_ARG) => match args.get(2).and_then(|a| helper::fd_from_arg(a)) {
            Some(fd) => helper::outer_main(fd),
            None => syscall::exit_now(125),
        },
        Some(RUN_HOOK_ARG) => {
            if !nix::unistd::getuid().is_root() {
                eprintln!("{RUN_HOOK_ARG} is for root only");
                std::process::exit(125);
            }
            let Some(path) = args.get(2) else {
                eprintln!("usage: isula-build {RUN_HOOK_ARG} SPEC.json");
                std::process::exit(125);
            };
            let spec: RunSpec = match std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("read {path}: {e}");
                    std::process::exit(125);
                }
            };
            match run(&spec) {
                Ok(code) => std::process::exit(code),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(125);
                }
            }
        }
        _ => syscall::exit_now(125),
    }
}

/// Borrow an inherited descriptor by number (for fcntl checks).
pub(crate) fn borrow_fd(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: only used on descriptors this process inherited and keeps open for its whole
    // life (the status pipe, stdin); a closed number makes the syscall fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Take ownership of an inherited descriptor, if it is open.
pub(crate) fn owned_fd(fd: i32) -> Option<OwnedFd> {
    nix::fcntl::fcntl(borrow_fd(fd), nix::fcntl::FcntlArg::F_GETFD).ok()?;
    // SAFETY: the descriptor is open (F_GETFD succeeded) and nothing else in this
    // single-threaded helper owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_validated_and_normalized() {
        let v = validate_caps(&[
            "SYS_ADMIN".into(),
            "CAP_SYS_ADMIN".into(),
            "net_admin".into(),
        ])
        .expect("valid");
        assert_eq!(v, vec!["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]);
        let e = validate_caps(&["CAP_BOGUS".into()]).expect_err("invalid");
        assert_eq!(e.to_string(), "cap CAP_BOGUS is invalid");
    }

    #[test]
    fn spec_checked_before_anything_runs() {
        let ok = RunSpec {
            args: vec!["true".into()],
            upper_dir: "/u".into(),
            work_dir: "/w".into(),
            bundle_dir: "/b".into(),
            ..Default::default()
        };
        assert!(check_spec(&ok).is_ok());
        let mut s = ok.clone();
        s.args.clear();
        assert!(check_spec(&s).is_err());
        let mut s = ok.clone();
        s.upper_dir = "rel".into();
        assert!(check_spec(&s).is_err());
        let mut s = ok;
        s.cwd = "rel/dir".into();
        assert!(check_spec(&s).is_err());
        let bad = RunSpec {
            cap_add: vec!["NOPE".into()],
            ..Default::default()
        };
        assert!(matches!(run(&bad), Err(SandboxError::InvalidCap(_))));
    }

    #[test]
    fn default_env() {
        let env = helper::final_env(&["A=1".into()], "/root");
        assert_eq!(
            env,
            vec![
                "A=1".to_string(),
                format!("PATH={}", helper::DEFAULT_PATH),
                "HOME=/root".into()
            ]
        );
        let env = helper::final_env(&["PATH=/x".into(), "HOME=/h".into()], "/root");
        assert_eq!(env, vec!["PATH=/x", "HOME=/h"]);
    }
}
