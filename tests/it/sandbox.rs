//! The RUN sandbox against a real busybox rootfs imported into a store, driven through the
//! binary's hidden hook (`isula-build __isula-build-sandbox-run SPEC.json`), which calls
//! `isula_build::sandbox::run` in a separate process (so it can be killed).
//!
//! Needs root and busybox-static; each test skips with a message otherwise.

use crate::common::{bin, busybox_tar, Env};
use isula_build::sandbox::{RunSpec, RUN_HOOK_ARG};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Bb {
    env: Env,
    lower: PathBuf,
}

fn busybox() -> Option<Bb> {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: the sandbox tests need root");
        return None;
    }
    let env = Env::new();
    let Some(tar) = busybox_tar(env.dir.path()) else {
        eprintln!("skipped: busybox-static is not installed");
        return None;
    };
    env.import(&tar, "busybox:latest");
    let ix = env.index();
    let chain = ix["images"][0]["layers"][0]
        .as_str()
        .expect("layer chain")
        .trim_start_matches("sha256:")
        .to_string();
    let lower = env.unpacked_layer(&chain);
    assert!(lower.join("bin/busybox").is_file(), "layer diff dir");
    Some(Bb { env, lower })
}

impl Bb {
    /// A fresh step: empty upper/work dirs and a bundle dir, running `sh -c script`.
    fn spec(&self, name: &str, script: &str) -> RunSpec {
        let base = self.env.path(name);
        for d in ["upper", "work"] {
            std::fs::create_dir_all(base.join(d)).expect("mkdir");
        }
        RunSpec {
            lower_dirs: vec![self.lower.clone()],
            upper_dir: base.join("upper"),
            work_dir: base.join("work"),
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![],
            cwd: String::new(),
            user: String::new(),
            hostname: "isula-test".into(),
            cap_add: vec![],
            runtime: None,
            bundle_dir: base.join("bundle"),
        }
    }

    fn command(&self, spec: &RunSpec) -> Command {
        let file = spec.bundle_dir.with_extension("json");
        std::fs::write(&file, serde_json::to_vec(spec).expect("json")).expect("write spec");
        let mut c = Command::new(bin());
        c.arg(RUN_HOOK_ARG).arg(file);
        c
    }

    fn run(&self, spec: &RunSpec) -> Output {
        self.command(spec).output().expect("run hook")
    }

    /// Run and require exit 0; returns stdout.
    fn ok(&self, spec: &RunSpec) -> String {
        let out = self.run(spec);
        assert!(
            out.status.success(),
            "step failed: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// A lower layer on top of busybox with users, groups and memberships.
fn users_layer(bb: &Bb) -> PathBuf {
    let d = bb.env.path("users-layer");
    std::fs::create_dir_all(d.join("etc")).expect("mkdir");
    std::fs::write(
        d.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
         alice:x:1000:1000::/home/alice:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(
        d.join("etc/group"),
        "root:x:0:\nwheel:x:10:alice\naudio:x:29:alice\nalice:x:1000:\nnobody:x:65534:\n",
    )
    .expect("group");
    d
}

#[test]
fn sandbox_identity_env_cwd_hostname() {
    let Some(bb) = busybox() else { return };
    let mut spec = bb.spec(
        "ident",
        "id -u; id -g; pwd; echo \"$FOO\"; echo \"$PATH\"; echo \"$HOME\"; hostname; echo $$",
    );
    spec.env = vec!["FOO=bar baz".into()];
    spec.cwd = "/work/dir".into();
    let out = bb.ok(&spec);
    assert_eq!(
        lines(&out),
        [
            "0",
            "0",
            "/work/dir",
            "bar baz",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "/root",
            "isula-test",
            // The command is PID 2: the helper is PID 1 of the namespace.
            "2",
        ]
    );
    // WORKDIR creation is part of the step's changes.
    assert!(spec.upper_dir.join("work/dir").is_dir());
    // An image PATH wins over the default.
    let mut spec = bb.spec("ident2", "echo $PATH");
    spec.env = vec!["PATH=/bin".into()];
    assert_eq!(bb.ok(&spec).trim(), "/bin");
}

#[test]
fn sandbox_user_forms() {
    let Some(bb) = busybox() else { return };
    let layer = users_layer(&bb);
    let cases = [
        ("", "0 0 0"),
        ("nobody", "65534 65534 65534"),
        ("alice", "1000 1000 1000 10 29"),
        ("1000", "1000 1000 1000 10 29"),
        ("4242", "4242 0 0"),
        ("1234:5678", "1234 5678 5678"),
        ("alice:wheel", "1000 10 10"),
        ("nobody:root", "65534 0 0"),
    ];
    for (i, (user, want)) in cases.iter().enumerate() {
        let mut spec = bb.spec(&format!("user{i}"), "echo $(id -u) $(id -g) $(id -G)");
        spec.lower_dirs.insert(0, layer.clone());
        spec.user = user.to_string();
        assert_eq!(bb.ok(&spec).trim(), *want, "USER {user:?}");
    }
    let mut spec = bb.spec("user-bad", "true");
    spec.user = "mallory".into();
    let out = bb.run(&spec);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unable to find user mallory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in {out}"))
        .trim()
        .to_string()
}

#[test]
fn sandbox_capabilities_default_and_cap_add() {
    let Some(bb) = busybox() else { return };
    let script = "cat /proc/self/status";
    let out = bb.ok(&bb.spec("caps", script));
    // Docker's default set, as `docker run busybox` shows it.
    assert_eq!(status_field(&out, "CapEff"), "00000000a80425fb");
    assert_eq!(status_field(&out, "CapPrm"), "00000000a80425fb");
    assert_eq!(status_field(&out, "CapBnd"), "00000000a80425fb");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    assert_eq!(status_field(&out, "Seccomp"), "2");

    let mut spec = bb.spec("caps-add", script);
    spec.cap_add = vec!["SYS_ADMIN".into(), "CAP_NET_ADMIN".into()];
    let out = bb.ok(&spec);
    assert_eq!(status_field(&out, "CapEff"), "00000000a82435fb");

    let mut spec = bb.spec("caps-nobody", script);
    spec.user = "nobody".into();
    let out = bb.ok(&spec);
    assert_eq!(status_field(&out, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&out, "CapBnd"), "00000000a80425fb");

    let mut spec = bb.spec("caps-bad", "true");
    spec.cap_add = vec!["CAP_NOT_A_CAP".into()];
    let out = bb.run(&spec);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cap CAP_NOT_A_CAP is invalid"));
    // Rejected before anything ran: no bundle was even created.
    assert!(!spec.bundle_dir.exists());
}

#[test]
fn sandbox_seccomp_blocks_namespace_and_mount_calls() {
    let Some(bb) = busybox() else { return };
    let out = bb.ok(&bb.spec(
        "seccomp",
        "unshare -m true 2>/dev/null && echo unshare-ok || echo unshare-denied; \
         mount -t tmpfs t /mnt 2>/dev/null && echo mount-ok || echo mount-denied",
    ));
    assert_eq!(lines(&out), ["unshare-denied", "mount-denied"]);
}

/// Masked files that exist on this kernel, among a few of the masked list.
const MASKED_FILES: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/latency_stats",
];

#[test]
fn sandbox_masked_and_readonly_paths() {
    let Some(bb) = busybox() else { return };
    let out = bb.ok(&bb.spec(
        "masked",
        &format!(
            "for p in {}; do [ -e $p ] && echo \"$p $(wc -c < $p)\"; done; \
             ls -A /sys/firmware | wc -l; \
             echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo sys-writable || echo sys-ro; \
             echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-ro; \
             touch /sys/x 2>/dev/null && echo sysfs-writable || echo sysfs-ro; \
             ls /dev | sort | tr '\\n' ' '",
            MASKED_FILES.join(" ")
        ),
    ));
    let l = lines(&out);
    let present: Vec<&str> = MASKED_FILES
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    assert!(!present.is_empty());
    for (i, p) in present.iter().enumerate() {
        assert_eq!(l[i], format!("{p} 0"), "{p} masked");
    }
    // At least one of them has content on the host: the mask hides something real.
    assert!(present
        .iter()
        .any(|p| std::fs::read(p).map(|b| !b.is_empty()).unwrap_or(false)));
    let l = &l[present.len()..];
    assert_eq!(l[0].trim(), "0", "/sys/firmware masked");
    assert_eq!(&l[1..4], ["sys-ro", "sysrq-ro", "sysfs-ro"]);
    assert_eq!(
        l[4].trim(),
        "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"
    );
}

#[test]
fn sandbox_writes_outside_rootfs_impossible() {
    let Some(bb) = busybox() else { return };
    let secret = bb.env.path("host-secret");
    std::fs::write(&secret, "secret").expect("secret");
    let host_root_entries: Vec<_> = std::fs::read_dir("/")
        .expect("ls /")
        .map(|e| e.expect("entry").file_name())
        .collect();
    // The host's root filesystem device: readable through a node if devices were allowed.
    let dev = std::fs::metadata("/").expect("stat /").dev();
    let (maj, min) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let spec = bb.spec(
        "escape",
        &format!(
            "cat {s} 2>/dev/null || echo no-secret; \
             cd /; cd ..; cd ..; echo escaped > escape-try; \
             echo via-proc > /proc/1/root/escape-proc; \
             echo via-cwd > /proc/self/cwd/../../escape-cwd; \
             mknod /tmp/disk b {maj} {min} && (head -c 1 /tmp/disk >/dev/null 2>&1 && echo disk-read || echo disk-denied); \
             ls /proc | grep -c '^[0-9]'",
            s = secret.display()
        ),
    );
    let out = bb.ok(&spec);
    let l = lines(&out);
    assert_eq!(l[0], "no-secret");
    assert_eq!(l[1], "disk-denied", "device nodes cannot be opened");
    // Only the helper, sh and its children are visible: the host's processes are not.
    let n: usize = l[2].trim().parse().expect("count");
    assert!(n <= 4, "{n} processes visible");
    // Everything written landed in the step's upper dir, nowhere on the host.
    for f in ["escape-try", "escape-cwd"] {
        assert!(spec.upper_dir.join(f).is_file(), "{f} in upper");
    }
    for f in ["escape-try", "escape-proc", "escape-cwd"] {
        assert!(!Path::new("/").join(f).exists(), "{f} on the host");
    }
    let after: Vec<_> = std::fs::read_dir("/")
        .expect("ls /")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(host_root_entries.len(), after.len());
}

#[test]
fn sandbox_changes_land_in_upper_with_whiteouts() {
    let Some(bb) = busybox() else { return };
    let spec = bb.spec(
        "upper",
        "rm /bin/ls && echo hi > /newfile && mkdir -p /d/e && rm -r /tmp && mkdir /tmp && \
         ls /etc/hosts /etc/resolv.conf >/dev/null",
    );
    bb.ok(&spec);
    let up = &spec.upper_dir;
    assert_eq!(
        std::fs::read_to_string(up.join("newfile")).expect("newfile"),
        "hi\n"
    );
    assert!(up.join("d/e").is_dir());
    let wh = std::fs::symlink_metadata(up.join("bin/ls")).expect("whiteout");
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "0/0 whiteout"
    );
    let opaque = xattr::get(up.join("tmp"), "trusted.overlay.opaque").expect("xattr");
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]), "opaque dir");
    // The mount points the sandbox had to create are not part of the step's changes.
    assert!(!up.join("etc/hosts").exists() && !up.join("etc/resolv.conf").exists());
    let mut top: Vec<String> = std::fs::read_dir(up)
        .expect("ls upper")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert!(
        top.iter()
            .all(|n| ["bin", "d", "etc", "newfile", "tmp"].contains(&n.as_str())),
        "{top:?}"
    );
    // The lower layer is untouched.
    assert!(bb.lower.join("bin/ls").exists());
}

#[test]
fn sandbox_closes_descriptors_and_reports_exit_codes() {
    let Some(bb) = busybox() else { return };
    // List the descriptors of a child the command started: exactly what a process in the
    // step inherits. (Listing the shell's own fds races with its pipeline set-up, and a
    // final `ls` is exec'd in place of the shell and would list its own dir fd.)
    let out = bb.ok(&bb.spec("fds", "sleep 30 & ls /proc/$!/fd; kill $!"));
    let mut fds: Vec<u32> = out
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    fds.sort();
    assert_eq!(fds, vec![0, 1, 2], "{out}");
    let out = bb.run(&bb.spec("exit42", "echo out; echo err >&2; exit 42"));
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = bb.run(&bb.spec("sig", "kill -9 $$"));
    assert_eq!(out.status.code(), Some(137));
    let mut spec = bb.spec("noexec", "");
    spec.args = vec!["no-such-program".into()];
    let out = bb.run(&spec);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    // Background processes are killed when the command ends.
    let out = bb.ok(&bb.spec("bg", "sleep 1000 & echo started"));
    assert_eq!(out.trim(), "started");
    assert!(processes_with("sleep 1000").is_empty());
}

/// Host pids whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// How many `sleep` processes run with exactly this command line.
fn sleepers(cmdline: &str) -> usize {
    processes_with(cmdline)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmdline)
                .unwrap_or(false)
        })
        .count()
}

/// Host pids whose mount table mentions `path` (a mount namespace still holding our mounts).
fn namespaces_mounting(path: &Path) -> Vec<i32> {
    let needle = path.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(m) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) {
            if m.contains(&needle) {
                out.push(pid);
            }
        }
    }
    out
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sandbox_kill_of_caller_leaves_no_process_and_no_mount() {
    let Some(bb) = busybox() else { return };
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let marker = "sleep 31415";
    let spec = bb.spec(
        "kill",
        &format!("touch /started; ({marker}; echo) & {marker}; touch /not-reached"),
    );
    let mut child = bb
        .command(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hook");
    wait_for("step started", || spec.upper_dir.join("started").exists());
    wait_for("sleepers running", || sleepers(marker) == 2);
    assert!(!namespaces_mounting(&spec.bundle_dir).is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let _ = child.wait();
    wait_for("processes gone", || processes_with(marker).is_empty());
    wait_for("mounts gone", || {
        namespaces_mounting(&spec.bundle_dir).is_empty()
    });
    assert!(processes_with(bb.env.dir.path().to_str().expect("utf8")).is_empty());
    assert!(!spec.upper_dir.join("not-reached").exists());
    let after = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!after.contains(&*bb.env.dir.path().to_string_lossy()));
    assert_eq!(
        host_mounts
            .lines()
            .filter(|l| l.contains(" overlay "))
            .count(),
        after.lines().filter(|l| l.contains(" overlay ")).count()
    );
    // The scratch dirs are ordinary directories again: removable.
    std::fs::remove_dir_all(spec.bundle_dir.parent().expect("parent")).expect("rm step dirs");
}

#[test]
fn sandbox_forwards_sigterm_to_the_command() {
    let Some(bb) = busybox() else { return };
    let spec = bb.spec(
        "term",
        "trap 'echo got-term > /trapped; exit 7' TERM; touch /ready; \
         while :; do sleep 0.05; done",
    );
    let mut child = bb
        .command(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hook");
    wait_for("ready", || spec.upper_dir.join("ready").exists());
    // The helper is the hook's child; SIGTERM to it must reach the command.
    let helper = processes_with("__isula-build-sandbox-helper")
        .into_iter()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().map(String::from))
                .and_then(|s| s.split_whitespace().nth(1).map(String::from))
                == Some(child.id().to_string())
        })
        .expect("helper process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("sigterm");
    let st = child.wait().expect("wait");
    assert_eq!(st.code(), Some(7));
    assert_eq!(
        std::fs::read_to_string(spec.upper_dir.join("trapped")).expect("trapped"),
        "got-term\n"
    );
}

#[test]
fn sandbox_from_scratch_mounts_an_empty_rootfs() {
    let Some(bb) = busybox() else { return };
    let mut spec = bb.spec("scratch", "");
    spec.lower_dirs.clear();
    spec.args = vec!["/bin/sh".into()];
    let out = bb.run(&spec);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exec \"/bin/sh\""), "{err}");
}

fn runtime_available(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn sandbox_delegates_to_runc() {
    let Some(bb) = busybox() else { return };
    if !runtime_available("runc") {
        eprintln!("skipped: runc is not installed (apt-get install runc)");
        return;
    }
    let layer = users_layer(&bb);
    let mut spec = bb.spec(
        "runc",
        "id -u; id -G; pwd; hostname; echo $FOO; cat /proc/keys /proc/timer_list 2>/dev/null | wc -c; \
         grep CapEff /proc/self/status",
    );
    spec.lower_dirs.insert(0, layer.clone());
    spec.runtime = Some("runc".into());
    spec.user = "alice".into();
    spec.cwd = "/w".into();
    spec.env = vec!["FOO=from-env".into()];
    let out = bb.ok(&spec);
    let l = lines(&out);
    assert_eq!(
        &l[..6],
        ["1000", "1000 10 29", "/w", "isula-test", "from-env", "0"]
    );
    assert_eq!(l[6].split_whitespace().nth(1), Some("0000000000000000"));
    assert!(spec.upper_dir.join("w").is_dir());

    let mut spec = bb.spec(
        "runc-root",
        "grep CapEff /proc/self/status; rm /bin/ls; echo hi > /new; exit 3",
    );
    spec.runtime = Some("runc".into());
    spec.cap_add = vec!["SYS_ADMIN".into()];
    let out = bb.run(&spec);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1),
        Some("00000000a82425fb")
    );
    let wh = std::fs::symlink_metadata(spec.upper_dir.join("bin/ls")).expect("whiteout");
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        std::fs::read_to_string(spec.upper_dir.join("new")).expect("new"),
        "hi\n"
    );
    assert!(!spec.upper_dir.join("etc/hosts").exists());
    assert!(!spec.upper_dir.join("etc/resolv.conf").exists());
}

#[test]
fn sandbox_runc_killed_caller_cleans_up() {
    let Some(bb) = busybox() else { return };
    if !runtime_available("runc") {
        eprintln!("skipped: runc is not installed");
        return;
    }
    let marker = "sleep 27182";
    let mut spec = bb.spec("runc-kill", &format!("touch /started; {marker}"));
    spec.runtime = Some("runc".into());
    let mut child = bb
        .command(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for("started", || spec.upper_dir.join("started").exists());
    let _ = child.kill();
    let _ = child.wait();
    wait_for("processes gone", || processes_with(marker).is_empty());
    wait_for("mounts gone", || {
        namespaces_mounting(&spec.bundle_dir).is_empty()
    });
}

#[test]
fn sandbox_crun_or_clear_skip() {
    let Some(bb) = busybox() else { return };
    if !runtime_available("crun") {
        eprintln!("skipped: crun is not installed");
        return;
    }
    let mut spec = bb.spec("crun", "id -u; exit 5");
    spec.runtime = Some("crun".into());
    let out = bb.run(&spec);
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(125) && err.contains("crun") {
        eprintln!(
            "skipped: crun cannot start containers on this host: {}",
            err.trim()
        );
        return;
    }
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}
