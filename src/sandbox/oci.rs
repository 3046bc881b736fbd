//! Delegation of a RUN step to an OCI runtime (`runtime = "runc"` / `"crun"` / a path).
//!
//! The helper's init mounts the overlay in its private mount namespace (so the mount dies with
//! it), makes sure every mount point exists (recording what it creates), writes `config.json`
//! generated from the same mount plan, capability set and seccomp profile as the built-in
//! sandbox, then runs `<runtime> run` as its child inside its PID namespace: when the caller
//! dies, the runtime and the container die with the namespace.

use super::capabilities;
use super::helper::{self, setup_rootfs};
use super::process::init::{self, Ended};
use super::rootfs::{self, mount};
use super::seccomp::profile::{self, Action, ArgCmp};
use super::user::ExecUser;
use super::RunSpec;
use oci_spec::runtime as oci;
use std::path::Path;
use std::process::{Command, Stdio};

/// The OCI seccomp section for a capability set.
pub fn seccomp_section(caps: &[String]) -> Result<oci::LinuxSeccomp, String> {
    let arches: Vec<oci::Arch> = match std::env::consts::ARCH {
        "x86_64" => vec![
            oci::Arch::ScmpArchX86_64,
            oci::Arch::ScmpArchX86,
            oci::Arch::ScmpArchX32,
        ],
        "aarch64" => vec![oci::Arch::ScmpArchAarch64, oci::Arch::ScmpArchArm],
        "s390x" => vec![oci::Arch::ScmpArchS390x, oci::Arch::ScmpArchS390],
        "riscv64" => vec![oci::Arch::ScmpArchRiscv64],
        "loongarch64" => vec![oci::Arch::ScmpArchLoongarch64],
        "powerpc64" => vec![oci::Arch::ScmpArchPpc64le],
        _ => vec![],
    };
    let mut syscalls = Vec::new();
    for r in profile::rules_for(caps, profile::docker_arch()) {
        let args: Vec<oci::LinuxSeccompArg> = r
            .args
            .iter()
            .map(|a| {
                let (index, value, two, op) = match *a {
                    ArgCmp::Ne(i, v) => (i, v, None, oci::LinuxSeccompOperator::ScmpCmpNe),
                    ArgCmp::Eq(i, v) => (i, v, None, oci::LinuxSeccompOperator::ScmpCmpEq),
                    // OCI: (arg & value) == valueTwo
                    ArgCmp::MaskedEq(i, m, v) => {
                        (i, m, Some(v), oci::LinuxSeccompOperator::ScmpCmpMaskedEq)
                    }
                };
                let mut b = oci::LinuxSeccompArgBuilder::default()
                    .index(index as usize)
                    .value(value)
                    .op(op);
                if let Some(t) = two {
                    b = b.value_two(t);
                }
                b.build().map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let mut b = oci::LinuxSyscallBuilder::default()
            .names(r.names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        b = match r.action {
            Action::Allow => b.action(oci::LinuxSeccompAction::ScmpActAllow),
            Action::Errno(e) => b.action(oci::LinuxSeccompAction::ScmpActErrno).errno_ret(e),
        };
        if !args.is_empty() {
            b = b.args(args);
        }
        syscalls.push(b.build().map_err(|e| e.to_string())?);
    }
    oci::LinuxSeccompBuilder::default()
        .default_action(oci::LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(profile::DEFAULT_ERRNO)
        .architectures(arches)
        .syscalls(syscalls)
        .build()
        .map_err(|e| e.to_string())
}

fn cap_set(names: &[String]) -> oci::Capabilities {
    names
        .iter()
        .filter_map(|n| serde_json::from_value(serde_json::Value::String(n.clone())).ok())
        .collect()
}

/// The parent of the runtime's cgroups (`/isula-build/<id>` under each hierarchy).
pub const CGROUP_PARENT: &str = "isula-build";

/// Remove cgroups left by steps whose caller was killed before `<runtime> delete` ran: empty
/// ones (rmdir fails on a cgroup with processes) older than a minute (a step starting right
/// now may not have moved its process in yet).
pub fn sweep_stale_cgroups() {
    let Ok(hier) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut parents = vec![Path::new("/sys/fs/cgroup").join(CGROUP_PARENT)];
    parents.extend(hier.flatten().map(|e| e.path().join(CGROUP_PARENT)));
    for parent in parents {
        let Ok(rd) = std::fs::read_dir(&parent) else {
            continue;
        };
        for e in rd.flatten() {
            let old = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 60);
            if old && e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// The bundle's `config.json` for a step (rootfs at `<bundle>/rootfs`, cgroup
/// `/isula-build/<id>`).
pub fn config(
    spec: &RunSpec,
    user: &ExecUser,
    env: Vec<String>,
    bundle: &Path,
    id: &str,
) -> Result<oci::Spec, String> {
    let e = |x: oci_spec::OciSpecError| x.to_string();
    let caps = capabilities::effective_set(&spec.cap_add);
    let set = cap_set(&caps);
    let is_root = user.uid == 0;
    let capabilities = oci::LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(if is_root {
            set.clone()
        } else {
            Default::default()
        })
        .permitted(if is_root {
            set.clone()
        } else {
            Default::default()
        })
        .inheritable(oci::Capabilities::default())
        .ambient(oci::Capabilities::default())
        .build()
        .map_err(e)?;
    let process = oci::ProcessBuilder::default()
        .terminal(false)
        .user(
            oci::UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()
                .map_err(e)?,
        )
        .args(spec.args.clone())
        .env(env)
        .cwd(if spec.cwd.is_empty() { "/" } else { &spec.cwd })
        .capabilities(capabilities)
        .no_new_privileges(false)
        .build()
        .map_err(e)?;
    let plan = mount::plan(bundle.join("hosts"), bundle.join("resolv.conf"));
    let mut mounts = Vec::new();
    for m in &plan {
        mounts.push(
            oci::MountBuilder::default()
                .destination(m.destination)
                .typ(m.fstype)
                .source(&m.source)
                .options(
                    m.options
                        .iter()
                        // The runtime creates device nodes on /dev and guards them with the
                        // device cgroup; our own sandbox binds them onto a nodev tmpfs.
                        .filter(|o| !(m.destination == "/dev" && **o == "nodev"))
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>(),
                )
                .build()
                .map_err(e)?,
        );
    }
    let ns = |t| {
        oci::LinuxNamespaceBuilder::default()
            .typ(t)
            .build()
            .map_err(e)
    };
    let linux = oci::LinuxBuilder::default()
        .namespaces(vec![
            ns(oci::LinuxNamespaceType::Pid)?,
            ns(oci::LinuxNamespaceType::Ipc)?,
            ns(oci::LinuxNamespaceType::Uts)?,
            ns(oci::LinuxNamespaceType::Mount)?,
        ])
        .masked_paths(
            mount::MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            mount::READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .seccomp(seccomp_section(&caps)?)
        .cgroups_path(Path::new("/").join(CGROUP_PARENT).join(id))
        .build()
        .map_err(e)?;
    let mut b = oci::SpecBuilder::default()
        .version("1.0.2")
        .root(
            oci::RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()
                .map_err(e)?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux);
    if !spec.hostname.is_empty() {
        b = b.hostname(spec.hostname.clone());
    }
    b.build().map_err(e)
}

/// The last error line a runtime logged (runc/crun `--log-format json`).
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(String::from))
        .next_back()
}

/// In the helper's init: run the step through `runtime`.
pub fn run_with_runtime(
    spec: &RunSpec,
    runtime: &str,
    set: &nix::sys::signal::SigSet,
) -> Result<Ended, String> {
    let bundle = &spec.bundle_dir;
    let (_rootfs, root, created) = setup_rootfs(spec, false)?;
    // Our PID namespace needs its own /proc for the runtime's view of pids to be consistent.
    nix::mount::mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("mount /proc for the runtime: {e}"))?;
    let result = (|| {
        let user = helper::prepare_common(&root, spec)?;
        let env = helper::final_env(&spec.env, &user.home);
        let id = format!("isula-build-{}", crate::storage::fsutil::random_hex(12));
        let cfg = config(spec, &user, env, bundle, &id)?;
        cfg.save(bundle.join("config.json"))
            .map_err(|e| format!("write config.json: {e}"))?;
        sweep_stale_cgroups();
        let state = bundle.join("runtime-state");
        let log = bundle.join("runtime.log");
        let child = Command::new(runtime)
            .arg("--root")
            .arg(&state)
            .arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json")
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("start runtime {runtime}: {e}"))?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let ended = init::supervise(set, pid);
        // supervise reaped it; dropping the handle does not wait again.
        drop(child);
        let _ = Command::new(runtime)
            .arg("--root")
            .arg(&state)
            .args(["delete", "--force", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match ended {
            Ended::Exited(code) if code != 0 => match runtime_error(&log) {
                Some(msg) => Err(format!("{runtime}: {msg}")),
                None => Ok(ended),
            },
            _ => Ok(ended),
        }
    })();
    init::kill_all_and_reap();
    rootfs::remove_created(Some(&root), &created);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_config_matches_the_builtin_sandbox() {
        let spec = RunSpec {
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            cwd: "/work".into(),
            hostname: "builder".into(),
            cap_add: vec!["CAP_SYS_ADMIN".into()],
            ..Default::default()
        };
        let user = ExecUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        };
        let cfg = config(
            &spec,
            &user,
            vec!["PATH=/bin".into()],
            Path::new("/b"),
            "x1",
        )
        .expect("cfg");
        let v = serde_json::to_value(&cfg).expect("json");
        assert_eq!(v["root"]["path"], "rootfs");
        assert_eq!(v["linux"]["cgroupsPath"], "/isula-build/x1");
        assert_eq!(v["hostname"], "builder");
        assert_eq!(v["process"]["cwd"], "/work");
        assert_eq!(v["process"]["noNewPrivileges"], false);
        let eff = v["process"]["capabilities"]["effective"]
            .as_array()
            .expect("effective");
        assert_eq!(eff.len(), 15);
        assert!(eff.iter().any(|c| c == "CAP_SYS_ADMIN"));
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .iter()
            .map(|n| n["type"].as_str().expect("type"))
            .collect();
        assert!(!ns.contains(&"network"));
        assert!(v["linux"]["maskedPaths"]
            .as_array()
            .expect("masked")
            .iter()
            .any(|p| p == "/proc/kcore"));
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .map(|m| m["destination"].as_str().expect("dest"))
            .collect();
        assert!(dests.contains(&"/etc/resolv.conf") && dests.contains(&"/dev/pts"));
        // A non-root user: no effective capabilities.
        let nobody = ExecUser { uid: 65534, ..user };
        let v = serde_json::to_value(
            config(&spec, &nobody, vec![], Path::new("/b"), "x2").expect("cfg"),
        )
        .expect("json");
        assert!(v["process"]["capabilities"]["effective"]
            .as_array()
            .is_none_or(|a| a.is_empty()));
        assert_eq!(v["process"]["user"]["uid"], 65534);
    }
}
