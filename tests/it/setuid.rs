//! The setuid install mode (`docs/SETUID.md`): real users, a real setuid-root copy of the
//! binary, the admin's configuration bind-mounted over `/etc/isula-build` in a private mount
//! namespace (so the host's own configuration is never touched).
//!
//! Each test creates a group and two users with `groupadd`/`useradd` (one in the group, one
//! outside it) and removes them afterwards, even when the test fails.

use crate::common::{busybox_tar, small_rootfs, write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

struct SetuidEnv {
    dir: tempfile::TempDir,
    group: String,
    member: String,
    outsider: String,
    member_uid: u32,
}

fn sh(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl SetuidEnv {
    /// None (after printing SKIP) when not root or when users cannot be created.
    fn new() -> Option<SetuidEnv> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP setuid tests: need root");
            return None;
        }
        let n = format!(
            "{}{}",
            std::process::id() % 100000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let group = format!("ibtg{n}");
        let member = format!("ibtm{n}");
        let outsider = format!("ibto{n}");
        if !sh("groupadd", &[&group]) {
            eprintln!("SKIP setuid tests: groupadd failed");
            return None;
        }
        let mut env = SetuidEnv {
            dir: tempfile::Builder::new()
                .prefix("isula-setuid-")
                .tempdir()
                .expect("tempdir"),
            group: group.clone(),
            member: member.clone(),
            outsider: outsider.clone(),
            member_uid: 0,
        };
        assert!(
            sh("useradd", &["-M", "-N", "-G", &group, &member]),
            "useradd member"
        );
        assert!(sh("useradd", &["-M", "-N", &outsider]), "useradd outsider");
        env.member_uid = nix::unistd::User::from_name(&member)
            .expect("getpwnam")
            .expect("member exists")
            .uid
            .as_raw();
        let d = env.dir.path();
        chmod(d, 0o755);
        // The binary, and the admin's configuration naming the group.
        std::fs::create_dir(d.join("bin")).expect("bin dir");
        chmod(&d.join("bin"), 0o755);
        let bin = d.join("bin/isula-build");
        std::fs::copy(crate::common::bin(), &bin).expect("copy binary");
        std::fs::create_dir(d.join("conf")).expect("conf dir");
        write(
            &d.join("conf/configuration.toml"),
            format!(
                "group = \"{group}\"\ndata_root = \"{}\"\nrun_root = \"{}\"\n",
                d.join("data").display(),
                d.join("run").display()
            )
            .as_bytes(),
        );
        std::fs::create_dir_all("/etc/isula-build").expect("mount point /etc/isula-build");
        // packaging/enable-setuid.sh reads the group from the configuration and sets
        // root:group 4750.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/enable-setuid.sh");
        let st = Command::new("unshare")
            .args(["-m", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount --bind \"$1\" /etc/isula-build && exec sh \"$2\" \"$3\"")
            .arg("sh")
            .arg(d.join("conf"))
            .arg(&script)
            .arg(&bin)
            .status()
            .expect("run enable-setuid.sh");
        assert!(st.success(), "enable-setuid.sh failed");
        let md = std::fs::metadata(&bin).expect("stat binary");
        let gid = nix::unistd::Group::from_name(&group)
            .expect("getgrnam")
            .expect("group exists")
            .gid;
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (0, gid.as_raw(), 0o4750)
        );
        // A world-writable scratch dir for the member's own files, and a root-only one.
        std::fs::create_dir(d.join("home")).expect("home");
        nix::unistd::chown(
            &d.join("home"),
            Some(nix::unistd::Uid::from_raw(env.member_uid)),
            None,
        )
        .expect("chown home");
        std::fs::create_dir(d.join("rootonly")).expect("rootonly");
        chmod(&d.join("rootonly"), 0o700);
        write(&d.join("rootonly/secret"), b"root's secret\n");
        Some(env)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Run the setuid binary as `user` with the test configuration in place.
    fn run_as(&self, user: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_program_as(&self.path("bin/isula-build"), user, args, env)
    }

    /// Run `program` (the binary or a link to it) as `user`, configuration in place.
    fn run_program_as(
        &self,
        program: &Path,
        user: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let script = r#"set -e
mount --bind "$1" /etc/isula-build
u=$(id -u "$2"); g=$(id -g "$2"); b=$3; shift 3
exec setpriv --reuid="$u" --regid="$g" --init-groups -- "$b" "$@""#;
        let mut c = Command::new("unshare");
        c.args([
            "-m",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(self.path("conf"))
        .arg(user)
        .arg(program)
        .args(args)
        .current_dir(self.path("home"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("spawn unshare")
    }

    fn member_ok(&self, args: &[&str]) -> String {
        let out = self.run_as(&self.member, args, &[]);
        assert!(
            out.status.success(),
            "member: isula-build {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run as the member, require exit 1 and a one-line error; returns it.
    fn member_fails(&self, args: &[&str]) -> String {
        let out = self.run_as(&self.member, args, &[]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "member: isula-build {args:?} should fail: {err}{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err:?}");
        err
    }

    /// The store's images as root sees them (no setuid involved).
    fn images_json(&self) -> String {
        std::fs::read_to_string(self.path("data/images.json")).unwrap_or_default()
    }
}

impl Drop for SetuidEnv {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.member).status();
        let _ = Command::new("userdel").arg(&self.outsider).status();
        let _ = Command::new("groupdel").arg(&self.group).status();
        // Images in the data root: mounts are per process and gone; plain removal is enough.
    }
}

/// Import a small rootfs (owned by the member, in their dir) as `name`.
fn member_import(e: &SetuidEnv, name: &str) {
    let tar = e.path("home/rootfs.tar");
    write(&tar, &small_rootfs(name));
    nix::unistd::chown(&tar, Some(nix::unistd::Uid::from_raw(e.member_uid)), None).expect("chown");
    let out = e.member_ok(&["ctr-img", "import", tar.to_str().expect("utf8"), name]);
    assert!(out.contains("sha256:") || !out.is_empty(), "{out}");
}

#[test]
fn outsider_is_refused_and_member_is_served() {
    let Some(e) = SetuidEnv::new() else { return };
    let out = e.run_as(&e.outsider, &["ctr-img", "images"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    // The file mode (4750 root:group) already stops the outsider at exec; the binary's own
    // check is what holds if an admin makes the mode too wide.
    assert!(!out.status.success(), "outsider ran isula-build");
    assert!(
        err.contains("Permission denied") || err.contains("not a member of group"),
        "{err}"
    );
    chmod(&e.path("bin/isula-build"), 0o4755);
    let out = e.run_as(&e.outsider, &["ctr-img", "images"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a member of group"), "{err}");
    assert!(
        !e.path("data").exists(),
        "a refused caller created the data root"
    );
    chmod(&e.path("bin/isula-build"), 0o4750);

    let listed = e.member_ok(&["ctr-img", "images"]);
    assert!(listed.contains("REPOSITORY"), "{listed}");
    assert!(e.path("data").exists(), "the admin's data root is used");
}

#[test]
fn member_cannot_move_the_store_or_configuration_or_add_capabilities() {
    let Some(e) = SetuidEnv::new() else { return };
    let elsewhere = e.path("home/mystore");
    let el = elsewhere.to_str().expect("utf8");
    for (args, flag) in [
        (vec!["--dataroot", el, "ctr-img", "images"], "--dataroot"),
        (vec!["--runroot", el, "ctr-img", "images"], "--runroot"),
        (vec!["--config", el, "ctr-img", "images"], "--config"),
        (
            vec!["--storage-opt", "x=y", "ctr-img", "images"],
            "--storage-opt",
        ),
        (
            vec!["--storage-driver", "overlay", "ctr-img", "images"],
            "--storage-driver",
        ),
    ] {
        let err = e.member_fails(&args);
        assert!(
            err.contains(flag) && err.contains("only be given by root"),
            "{err}"
        );
    }
    assert!(!elsewhere.exists());
    let ctx = e.path("home/ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    write(
        &ctx.join("Dockerfile"),
        b"FROM scratch\nCOPY Dockerfile /\n",
    );
    let err = e.member_fails(&[
        "ctr-img",
        "build",
        "--cap-add",
        "CAP_SYS_ADMIN",
        ctx.to_str().expect("utf8"),
    ]);
    assert!(err.contains("--cap-add"), "{err}");
    assert_eq!(e.images_json(), "", "nothing was built");
}

#[test]
fn member_builds_saves_and_loads_and_owns_what_is_written_for_them() {
    let Some(e) = SetuidEnv::new() else { return };
    member_import(&e, "base:1");
    let ctx = e.path("home/ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    write(&ctx.join("hello.txt"), b"hello\n");
    write(
        &ctx.join("Dockerfile"),
        b"FROM base:1\nCOPY hello.txt /hello.txt\n",
    );
    let iid = e.path("home/iid");
    let out = e.member_ok(&[
        "ctr-img",
        "build",
        "-t",
        "app:1",
        "--iidfile",
        iid.to_str().expect("utf8"),
        ctx.to_str().expect("utf8"),
    ]);
    assert!(out.contains("Build success with image id:"), "{out}");
    let md = std::fs::metadata(&iid).expect("iidfile written");
    assert_eq!(md.uid(), e.member_uid, "the iidfile belongs to the caller");

    let saved = e.path("home/app.tar");
    e.member_ok(&[
        "ctr-img",
        "save",
        "app:1",
        "-o",
        saved.to_str().expect("utf8"),
    ]);
    assert_eq!(
        std::fs::metadata(&saved).expect("saved").uid(),
        e.member_uid,
        "the archive belongs to the caller"
    );
    // No temporary file left next to it.
    let leftovers: Vec<_> = std::fs::read_dir(e.path("home"))
        .expect("read home")
        .filter_map(|d| d.ok())
        .filter(|d| d.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    e.member_ok(&["ctr-img", "rm", "app:1"]);
    let out = e.member_ok(&["ctr-img", "load", "-i", saved.to_str().expect("utf8")]);
    assert!(out.contains("app:1") || out.contains("Loaded"), "{out}");
    let listed = e.member_ok(&["ctr-img", "images"]);
    assert!(listed.contains("app"), "{listed}");
    // Store files are root's, not the caller's.
    for entry in walk(&e.path("data")) {
        let md = std::fs::symlink_metadata(&entry).expect("stat");
        assert_eq!(
            (md.uid(), md.gid()),
            (0, 0),
            "store file {} not root:root",
            entry.display()
        );
        assert_eq!(md.mode() & 0o002, 0, "world-writable {}", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            let p = ent.path();
            // Layer contents keep the image's owners; only the store's own files are checked.
            if p.components().any(|c| c.as_os_str() == "diff") {
                continue;
            }
            if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn member_cannot_read_root_only_files_through_any_path_option() {
    let Some(e) = SetuidEnv::new() else { return };
    member_import(&e, "base:1");
    let before = e.images_json();
    let secret = e.path("rootonly/secret");
    let secret_s = secret.to_str().expect("utf8");

    // Through the context: a root-only file inside a context the member can list.
    let ctx = e.path("home/ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    std::fs::copy(&secret, ctx.join("secret")).expect("copy secret");
    chmod(&ctx.join("secret"), 0o600);
    write(
        &ctx.join("Dockerfile"),
        b"FROM base:1\nCOPY secret /secret\n",
    );
    let err = e.member_fails(&[
        "ctr-img",
        "build",
        "-t",
        "leak:1",
        ctx.to_str().expect("utf8"),
    ]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");

    // Through the context: the whole filesystem as the context.
    let df = e.path("home/Dockerfile.root");
    write(
        &df,
        format!(
            "FROM base:1\nCOPY {} /secret\n",
            secret_s.trim_start_matches('/')
        )
        .as_bytes(),
    );
    let err = e.member_fails(&[
        "ctr-img",
        "build",
        "-t",
        "leak:2",
        "-f",
        df.to_str().expect("utf8"),
        "/",
    ]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");

    // Through ADD of a root-only archive in the context.
    let tar = ctx.join("root.tar");
    write(&tar, &small_rootfs("root-only archive"));
    chmod(&tar, 0o600);
    write(&ctx.join("Dockerfile"), b"FROM base:1\nADD root.tar /x/\n");
    let err = e.member_fails(&[
        "ctr-img",
        "build",
        "-t",
        "leak:3",
        ctx.to_str().expect("utf8"),
    ]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");

    // Through -f.
    let err = e.member_fails(&[
        "ctr-img",
        "build",
        "-f",
        secret_s,
        ctx.to_str().expect("utf8"),
    ]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    assert!(!err.contains("root's secret"), "{err}");

    // Through load -i and import.
    let root_tar = e.path("rootonly/image.tar");
    write(&root_tar, &small_rootfs("root-only import"));
    let err = e.member_fails(&[
        "ctr-img",
        "import",
        root_tar.to_str().expect("utf8"),
        "leak:4",
    ]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    let err = e.member_fails(&["ctr-img", "load", "-i", root_tar.to_str().expect("utf8")]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    // A root-only file in a directory the member can read: still refused.
    let visible = e.path("home/visible-but-root.tar");
    std::fs::copy(&root_tar, &visible).expect("copy");
    chmod(&visible, 0o600);
    let err = e.member_fails(&[
        "ctr-img",
        "import",
        visible.to_str().expect("utf8"),
        "leak:5",
    ]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");

    assert_eq!(e.images_json(), before, "the store is unchanged");
}

#[test]
fn member_cannot_write_where_they_may_not() {
    let Some(e) = SetuidEnv::new() else { return };
    member_import(&e, "base:1");
    let ctx = e.path("home/ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    write(&ctx.join("Dockerfile"), b"FROM base:1\nCOPY Dockerfile /\n");
    let target = e.path("rootonly/out.tar");
    let t = target.to_str().expect("utf8");
    let err = e.member_fails(&["ctr-img", "save", "base:1", "-o", t]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    let out_arg = format!("docker-archive:{t}:x:1");
    let err = e.member_fails(&[
        "ctr-img",
        "build",
        "-o",
        &out_arg,
        ctx.to_str().expect("utf8"),
    ]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    let iid = e.path("rootonly/iid");
    let err = e.member_fails(&[
        "ctr-img",
        "build",
        "--iidfile",
        iid.to_str().expect("utf8"),
        ctx.to_str().expect("utf8"),
    ]);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    // A root-owned, world-readable directory: creating files there is the member's right
    // only if the mode says so.
    let sep = e.path("rootonly-sep");
    std::fs::create_dir(&sep).expect("dir");
    chmod(&sep, 0o755);
    let err = e.member_fails(&[
        "ctr-img",
        "save",
        "-b",
        "base:1",
        "-d",
        sep.join("out").to_str().expect("utf8"),
        "base:1",
    ]);
    assert!(
        err.to_lowercase().contains("permission denied") || err.contains("base"),
        "{err}"
    );
    let names: Vec<_> = std::fs::read_dir(e.path("rootonly"))
        .expect("read")
        .filter_map(|d| d.ok())
        .map(|d| d.file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("secret")],
        "nothing written as root"
    );
    assert!(!sep.join("out").exists());
}

#[test]
fn the_callers_environment_does_not_reach_the_privileged_part() {
    let Some(e) = SetuidEnv::new() else { return };
    member_import(&e, "base:1");
    // `--build-arg NAME` takes NAME's value from the process environment: what the
    // privileged process sees. Only the allow-list (TERM here) may survive. (LD_PRELOAD is
    // removed by the dynamic loader for any setuid program; RUST_LOG, DOCKER_HOST and
    // SSL_CERT_FILE are ours to remove.)
    let ctx = e.path("home/ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    write(
        &ctx.join("Dockerfile"),
        b"FROM base:1\nARG RUST_LOG\nARG DOCKER_HOST\nARG SSL_CERT_FILE\nARG TERM\n\
LABEL log=\"${RUST_LOG}\" docker=\"${DOCKER_HOST}\" certs=\"${SSL_CERT_FILE}\" term=\"${TERM}\"\n",
    );
    let iid = e.path("home/iid");
    let out = e.run_as(
        &e.member,
        &[
            "ctr-img",
            "build",
            "--build-arg",
            "RUST_LOG",
            "--build-arg",
            "DOCKER_HOST",
            "--build-arg",
            "SSL_CERT_FILE",
            "--build-arg",
            "TERM",
            "--iidfile",
            iid.to_str().expect("utf8"),
            ctx.to_str().expect("utf8"),
        ],
        &[
            ("RUST_LOG", "trace"),
            ("DOCKER_HOST", "unix:///tmp/evil.sock"),
            ("SSL_CERT_FILE", "/tmp/evil-ca.pem"),
            ("TERM", "xterm-allowed"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build failed: {err}");
    let id = std::fs::read_to_string(&iid).expect("iid");
    let hex = id.trim().trim_start_matches("sha256:");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(e.path(&format!("data/blobs/sha256/{hex}"))).expect("config blob"),
    )
    .expect("config json");
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["log"], "", "{labels}");
    assert_eq!(labels["docker"], "", "{labels}");
    assert_eq!(labels["certs"], "", "{labels}");
    assert_eq!(labels["term"], "xterm-allowed", "{labels}");
}

#[test]
fn member_runs_steps_in_the_sandbox_but_not_the_hidden_entry_points() {
    let Some(e) = SetuidEnv::new() else { return };
    // The hidden entry points refuse a caller whose real uid is not 0.
    let spec = e.path("home/spec.json");
    write(&spec, b"{}");
    let out = e.run_as(
        &e.member,
        &["__isula-build-sandbox-run", spec.to_str().expect("utf8")],
        &[],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("root only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = e.run_as(&e.member, &["__isula-build-sandbox-helper", "2"], &[]);
    assert_eq!(out.status.code(), Some(125));

    // A build's RUN goes through the helper the build forks (with every id 0).
    let Some(bb) = busybox_tar(e.dir.path()) else {
        eprintln!("SKIP member RUN step: busybox-static not installed");
        return;
    };
    let bb_member = e.path("home/busybox.tar");
    std::fs::copy(&bb, &bb_member).expect("copy busybox");
    nix::unistd::chown(
        &bb_member,
        Some(nix::unistd::Uid::from_raw(e.member_uid)),
        None,
    )
    .expect("chown");
    e.member_ok(&[
        "ctr-img",
        "import",
        bb_member.to_str().expect("utf8"),
        "busybox:latest",
    ]);
    let ctx = e.path("home/ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    write(
        &ctx.join("Dockerfile"),
        b"FROM busybox\nRUN echo \"run-as-$(id -u)-groups-$(id -G | wc -w)\"\n",
    );
    let out = e.member_ok(&[
        "ctr-img",
        "build",
        "-t",
        "ran:1",
        ctx.to_str().expect("utf8"),
    ]);
    assert!(out.contains("run-as-0-groups-1"), "{out}");
}

#[test]
fn member_cannot_point_the_docker_daemon_or_isulad_outputs_elsewhere() {
    let Some(e) = SetuidEnv::new() else { return };
    member_import(&e, "base:1");
    let ctx = e.path("home/ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    write(&ctx.join("Dockerfile"), b"FROM base:1\nLABEL a=b\n");
    // A stand-in `isula` on the member's PATH: root must never run it.
    let bin = e.path("home/bin");
    std::fs::create_dir(&bin).expect("bin");
    let marker = e.path("home/ran-as-root");
    write(
        &bin.join("isula"),
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()).as_bytes(),
    );
    chmod(&bin.join("isula"), 0o755);
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let ctx_s = ctx.to_str().expect("utf8");
    let out = e.run_as(
        &e.member,
        &["ctr-img", "build", "-o", "isulad:app:1", ctx_s],
        &[("PATH", &path)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    if Path::new("/usr/bin/isula").exists() || Path::new("/bin/isula").exists() {
        eprintln!("SKIP (partly) member_cannot_point_...: a real isula is installed");
    } else {
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("isula command not found in PATH"), "{err}");
    }
    assert!(!marker.exists(), "the member's isula ran as root");
    // DOCKER_HOST is the member's to set only for their own docker client: the privileged
    // process uses the default socket.
    let fake = e.path("home/fake.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&fake).expect("bind");
    let host = format!("unix://{}", fake.display());
    let out = e.run_as(
        &e.member,
        &["ctr-img", "build", "-o", "docker-daemon:app:1", ctx_s],
        &[("DOCKER_HOST", &host)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(fake.to_str().expect("utf8")), "{err}");
    if !Path::new("/var/run/docker.sock").exists() {
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("cannot connect to the Docker daemon at unix:///var/run/docker.sock"),
            "{err}"
        );
    }
}

#[test]
fn member_cannot_start_the_compat_server_or_its_workers() {
    let Some(e) = SetuidEnv::new() else { return };
    // A link named isula-builder to the setuid binary would start the root gRPC server with
    // the member's flags (socket, group, data root).
    let link = e.path("bin/isula-builder");
    std::os::unix::fs::symlink(e.path("bin/isula-build"), &link).expect("symlink");
    let sock = e.path("home/evil.sock");
    let out = e.run_program_as(
        &link,
        &e.member,
        &["--socket", sock.to_str().expect("utf8"), "--group", "root"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("root only"), "{err}");
    assert!(!sock.exists(), "a socket was created");
    let out = e.run_as(&e.member, &["__isula-builder-build-worker"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !e.path("data").exists(),
        "a refused caller created the data root"
    );
}
