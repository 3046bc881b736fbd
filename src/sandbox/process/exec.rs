//! The child that becomes the RUN command: new session, Docker's credentials, capabilities and
//! seccomp filter, every descriptor beyond stdio closed, then execve.
//!
//! Order (as runc without no_new_privs): bounding set, seccomp (loading it without
//! no_new_privs needs CAP_SYS_ADMIN, so before the uid change; the profile allows the calls
//! that follow), groups/gid/uid with PR_SET_KEEPCAPS, the final capability sets, close-on-exec
//! on fds >= 3, exec.

use crate::sandbox::capabilities;
use crate::sandbox::process::init;
use crate::sandbox::syscall;
use crate::sandbox::user::ExecUser;
use libseccomp::ScmpFilterContext;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Everything the child needs, computed by the init before the fork.
pub struct Prepared {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ExecUser,
    pub caps: Vec<String>,
    pub filter: ScmpFilterContext,
}

/// `$PATH` of the command's environment.
fn path_var(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("")
}

/// execvp's lookup, in the command's own PATH.
fn lookup(prog: &str, env: &[String]) -> Result<PathBuf, String> {
    if prog.is_empty() {
        return Err("empty command".into());
    }
    if prog.contains('/') {
        return Ok(PathBuf::from(prog));
    }
    for dir in path_var(env).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(prog);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(format!(
        "exec: {prog:?}: executable file not found in $PATH"
    ))
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, String> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("NUL byte in {s:?}")))
        .collect()
}

fn setup_and_exec(p: &Prepared) -> String {
    syscall::reset_signal_dispositions();
    init::unblock_all();
    if let Err(e) = nix::unistd::setsid() {
        return format!("setsid: {e}");
    }
    umask(Mode::from_bits_truncate(0o022));
    let chdir_as_root = nix::unistd::chdir(p.cwd.as_str()).is_ok();
    if let Err(e) = capabilities::restrict_bounding(&p.caps) {
        return format!("drop capabilities from the bounding set: {e}");
    }
    if let Err(e) = p.filter.load() {
        return format!("load seccomp filter: {e}");
    }
    if let Err(e) = nix::sys::prctl::set_keepcaps(true) {
        return format!("keep capabilities: {e}");
    }
    let groups: Vec<Gid> = p
        .user
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    if let Err(e) = setgroups(&groups) {
        return format!("setgroups: {e}");
    }
    let gid = Gid::from_raw(p.user.gid);
    if let Err(e) = setresgid(gid, gid, gid) {
        return format!("setgid {}: {e}", p.user.gid);
    }
    let uid = Uid::from_raw(p.user.uid);
    if let Err(e) = setresuid(uid, uid, uid) {
        return format!("setuid {}: {e}", p.user.uid);
    }
    if let Err(e) = capabilities::finalize(&p.caps, p.user.uid == 0) {
        return format!("set capabilities: {e}");
    }
    let _ = nix::sys::prctl::set_keepcaps(false);
    if !chdir_as_root {
        if let Err(e) = nix::unistd::chdir(p.cwd.as_str()) {
            return format!("chdir to {}: {e}", p.cwd);
        }
    }
    let prog = match lookup(&p.args[0], &p.env) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let (argv, envp) = match (cstrings(&p.args), cstrings(&p.env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let Ok(cprog) = CString::new(prog.as_os_str().as_bytes()) else {
        return "NUL byte in program path".into();
    };
    if let Err(e) = syscall::cloexec_from(3) {
        return format!("close descriptors: {e}");
    }
    match nix::unistd::execve(&cprog, &argv, &envp) {
        Ok(never) => match never {},
        Err(e) => format!("exec {:?}: {}", p.args[0], e.desc()),
    }
}

/// The child side: never returns. On failure the reason goes to `err_pipe` (close-on-exec:
/// the caller reads EOF when exec succeeded) and the child exits 127.
pub fn child(p: &Prepared, err_pipe: OwnedFd) -> ! {
    let msg = setup_and_exec(p);
    let mut f = std::fs::File::from(err_pipe);
    let _ = f.write_all(msg.as_bytes());
    crate::sandbox::syscall::exit_now(127)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_the_command_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        let sh = lookup("sh", &env).expect("sh on PATH");
        assert!(sh.ends_with("sh"));
        assert_eq!(lookup("/x/y", &env).expect("slash"), PathBuf::from("/x/y"));
        let e = lookup("no-such-tool-xyz", &env).expect_err("missing");
        assert!(e.contains("executable file not found in $PATH"), "{e}");
        assert!(lookup("sh", &["PATH=/nonexistent".into()]).is_err());
    }
}
