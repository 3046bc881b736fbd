//! `ctr-img build -o docker-daemon:…` and `-o isulad:…`.
//!
//! docker-daemon is tested against Debian's real `dockerd` (package docker.io), started here
//! with its own data root, exec root and socket, and judged with `/usr/bin/docker`; engine
//! error replies come from a scripted fake engine on a unix socket, because a real engine
//! cannot be made to refuse a well-formed archive on demand.
//!
//! isulad is tested with a stand-in `isula` executable on PATH that records its arguments and
//! judges the archive with `skopeo`: iSulad itself is not packaged on Debian.

use crate::build::{built_id, context};
use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const DOCKERFILE: &str = "FROM busybox\nLABEL stage=out\nCOPY a.txt /a.txt\n";

fn base_env() -> Env {
    let env = Env::new();
    write(&env.path("base.tar"), &small_rootfs("outputs"));
    env.import(&env.path("base.tar"), "busybox");
    env
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// `ctr-img build -o OUTPUT CTX` with extra environment.
fn build_with(env: &Env, output: &str, vars: &[(&str, String)]) -> Output {
    let ctx = context(env, "ctx", DOCKERFILE, &[("a.txt", "payload\n")]);
    let mut c = env.cmd();
    c.args(["ctr-img", "build", "-o", output, s(&ctx)]);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().expect("spawn isula-build")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every `isula-build-tmp-*.tar` under the data root's tmp dir.
fn isulad_tmp_files(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if e
                .file_name()
                .to_string_lossy()
                .starts_with("isula-build-tmp-")
            {
                out.push(p);
            }
        }
    }
    walk(&env.dataroot().join("tmp"), &mut out);
    out
}

fn one_error_line(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "should fail: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(!err.contains("panicked"), "{err}");
    err.trim_end().to_string()
}

#[test]
fn docker_daemon_output_loads_the_image_into_real_dockerd_with_our_id() {
    let env = base_env();
    let Some(dk) = Dockerd::start(
        &env,
        "docker_daemon_output_loads_the_image_into_real_dockerd_with_our_id",
    ) else {
        return;
    };
    let out = build_with(
        &env,
        "docker-daemon:outapp:v1",
        &[("DOCKER_HOST", dk.host())],
    );
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    let id = built_id(&stdout(&out));
    assert!(
        stdout(&out).contains("Load success with image: outapp:v1"),
        "{}",
        stdout(&out)
    );
    let did = dk.ok(&["image", "inspect", "--format", "{{.Id}}", "outapp:v1"]);
    assert_eq!(did.trim(), format!("sha256:{id}"));
    let listed = dk.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    assert!(
        listed
            .lines()
            .any(|l| l.trim() == format!("outapp:v1 sha256:{id}")),
        "docker images:\n{listed}"
    );
    // The engine has the content too: the label of the build.
    let label = dk.ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"stage\"}}",
        "outapp:v1",
    ]);
    assert_eq!(label.trim(), "out");

    // A name with a registry host and port (a new build: a new created time, a new ID).
    let out = build_with(
        &env,
        "docker-daemon:localhost:5000/ns/outapp:v2",
        &[("DOCKER_HOST", dk.host())],
    );
    assert!(out.status.success(), "second build: {}", stderr(&out));
    let id = built_id(&stdout(&out));
    let did = dk.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "localhost:5000/ns/outapp:v2",
    ]);
    assert_eq!(did.trim(), format!("sha256:{id}"));
    assert!(check_store(&env.dataroot()).is_empty());
}

#[test]
fn docker_daemon_output_fails_clearly_without_an_engine() {
    let env = base_env();
    let before = snapshot(&env.dataroot());
    let sock = env.path("no-engine.sock");
    let out = build_with(
        &env,
        "docker-daemon:outapp:v1",
        &[("DOCKER_HOST", format!("unix://{}", sock.display()))],
    );
    let err = one_error_line(&out);
    assert!(
        err.contains(&format!(
            "cannot connect to the Docker daemon at unix://{}: ",
            sock.display()
        )) && err.contains("No such file or directory"),
        "{err}"
    );
    // Checked before building: nothing was built.
    assert_eq!(snapshot(&env.dataroot()), before);

    let out = build_with(
        &env,
        "docker-daemon:outapp:v1",
        &[("DOCKER_HOST", "tcp://127.0.0.1:2375".to_string())],
    );
    let err = one_error_line(&out);
    assert!(err.contains("only unix:// sockets"), "{err}");

    let out = build_with(&env, "docker-daemon:outapp", &[]);
    let err = one_error_line(&out);
    assert!(
        err.contains("docker-daemon: reference outapp has neither a tag nor a digest"),
        "{err}"
    );
    assert_eq!(snapshot(&env.dataroot()), before);
}

/// A scripted engine: answers `/_ping`, reads a chunked `POST /images/load` body to its end,
/// records it (de-chunked) and replies with `reply`.
fn fake_engine(sock: &Path, reply: &'static str) -> std::thread::JoinHandle<(String, Vec<u8>)> {
    let listener = std::os::unix::net::UnixListener::bind(sock).expect("bind fake engine");
    std::thread::spawn(move || {
        let mut load_head = String::new();
        let mut body = Vec::new();
        'conns: for conn in listener.incoming() {
            let conn = conn.expect("accept");
            let mut r = BufReader::new(conn.try_clone().expect("clone"));
            let mut w = conn;
            loop {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).expect("read head") == 0 {
                        continue 'conns;
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                if head.starts_with("GET /_ping") {
                    w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                        .expect("reply");
                    continue;
                }
                assert!(head.starts_with("POST /images/load"), "{head}");
                // De-chunk the body.
                loop {
                    let mut size = String::new();
                    r.read_line(&mut size).expect("chunk size");
                    let n = usize::from_str_radix(size.trim(), 16).expect("hex size");
                    let mut chunk = vec![0u8; n + 2];
                    r.read_exact(&mut chunk).expect("chunk");
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                load_head = head;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                w.write_all(resp.as_bytes()).expect("reply");
                break 'conns;
            }
        }
        (load_head, body)
    })
}

#[test]
fn docker_daemon_engine_errors_become_one_clear_line() {
    let env = base_env();
    let sock = env.path("fake.sock");
    let engine = fake_engine(
        &sock,
        "{\"stream\":\"Loading layer\\n\"}\n{\"errorDetail\":{\"message\":\"write /var/lib/docker/tmp/x: no space left on device\"},\"error\":\"write /var/lib/docker/tmp/x: no space left on device\"}\n",
    );
    let out = build_with(
        &env,
        "docker-daemon:outapp:v1",
        &[("DOCKER_HOST", format!("unix://{}", sock.display()))],
    );
    let err = one_error_line(&out);
    assert_eq!(
        err,
        "export to docker-daemon failed: Docker daemon: write /var/lib/docker/tmp/x: no space left on device"
    );
    let (head, body) = engine.join().expect("fake engine");
    let head = head.to_ascii_lowercase();
    // Streamed: chunked, no length known in advance.
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert!(head.contains("content-type: application/x-tar"), "{head}");
    // What was streamed is a complete docker-archive naming the image.
    let mut names = Vec::new();
    let mut manifest = Vec::new();
    let mut ar = tar::Archive::new(&body[..]);
    for e in ar.entries().expect("tar") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        if name == "manifest.json" {
            e.read_to_end(&mut manifest).expect("manifest");
        }
        names.push(name);
    }
    let m: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest.json");
    assert_eq!(m[0]["RepoTags"][0], "outapp:v1", "{names:?}");
}

/// A stand-in `isula` in a fresh bin dir: records its arguments in `rec/args`, the archive's
/// mode in `rec/mode`, judges the archive with skopeo (config digest into `rec/config`), then
/// runs `tail` (shell code) for its exit.
fn stand_in(env: &Env, tail: &str) -> (PathBuf, PathBuf) {
    let bin = env.path("standin-bin");
    let rec = env.path("rec");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(&rec).expect("rec");
    let script = format!(
        r#"#!/bin/sh
# Stand-in for iSulad's `isula` client (iSulad is not packaged on Debian).
rec='{rec}'
printf '%s\n' "$@" > "$rec/args"
stat -c %a "$3" > "$rec/mode"
skopeo inspect --raw --config "docker-archive:$3" > "$rec/config" 2> "$rec/skopeo.err" || exit 3
tar -xOf "$3" manifest.json > "$rec/manifest.json" || exit 4
{tail}
"#,
        rec = rec.display()
    );
    let isula = bin.join("isula");
    std::fs::write(&isula, script).expect("write stand-in");
    std::fs::set_permissions(&isula, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (bin, rec)
}

fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn isulad_output_hands_a_docker_archive_to_isula_load_and_removes_it() {
    if !have_tool("skopeo") {
        eprintln!("SKIP isulad_output_hands_a_docker_archive_to_isula_load_and_removes_it: skopeo not installed");
        return;
    }
    let env = base_env();
    let (bin, rec) = stand_in(&env, "echo 'Load image success'; exit 0");
    let out = build_with(&env, "isulad:isuladapp:v1", &[("PATH", path_with(&bin))]);
    assert!(out.status.success(), "build: {}", stderr(&out));
    let id = built_id(&stdout(&out));
    assert!(stdout(&out).contains("Load success with image: isuladapp:v1"));
    let args = std::fs::read_to_string(rec.join("args")).expect("stand-in ran");
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args.len(), 3, "{args:?}");
    assert_eq!(&args[..2], ["load", "-i"]);
    // <dataroot>/tmp/<work dir>/isula-build-tmp-<random>.tar
    let tar = Path::new(args[2]);
    let tmp = env.dataroot().join("tmp");
    assert_eq!(tar.parent().and_then(Path::parent), Some(tmp.as_path()));
    let fname = tar.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        fname.starts_with("isula-build-tmp-") && fname.ends_with(".tar"),
        "{fname}"
    );
    assert_eq!(
        std::fs::read_to_string(rec.join("mode")).unwrap().trim(),
        "644"
    );
    // skopeo read the archive; its config is our image.
    let config = std::fs::read(rec.join("config")).unwrap();
    assert_eq!(sha256_hex(&config), id);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rec.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m[0]["RepoTags"][0], "isuladapp:v1");
    // Removed on success, with its work dir.
    assert!(!tar.exists());
    assert!(!tar.parent().unwrap().exists());
    assert!(isulad_tmp_files(&env).is_empty());
}

#[test]
fn isulad_output_failure_is_one_line_and_leaves_no_archive() {
    let env = base_env();
    let (bin, rec) = stand_in(
        &env,
        "echo 'isula: image load refused' >&2; echo second line >&2; exit 1",
    );
    // Without skopeo the stand-in fails earlier (exit 3): still a failure of isula load.
    let out = build_with(&env, "isulad:isuladapp:v1", &[("PATH", path_with(&bin))]);
    let err = one_error_line(&out);
    assert!(rec.join("args").exists(), "stand-in did not run: {err}");
    if have_tool("skopeo") {
        assert_eq!(
            err,
            "export to isulad failed: load image to isulad failed, stderr: isula: image load refused second line, err: exit status: 1"
        );
    } else {
        assert!(
            err.starts_with("export to isulad failed: load image to isulad failed"),
            "{err}"
        );
    }
    assert!(isulad_tmp_files(&env).is_empty());
    assert!(check_store(&env.dataroot()).is_empty());

    // No isula anywhere: refused before the build.
    let empty = env.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let before = snapshot(&env.dataroot());
    let out = build_with(
        &env,
        "isulad:isuladapp:v2",
        &[("PATH", empty.display().to_string())],
    );
    let err = one_error_line(&out);
    assert!(err.contains("isula command not found in PATH"), "{err}");
    assert_eq!(snapshot(&env.dataroot()), before);

    // Tag required, upstream's message.
    let out = build_with(&env, "isulad:isuladapp", &[("PATH", path_with(&bin))]);
    let err = one_error_line(&out);
    assert_eq!(err, "invalid isulad output format: isulad:isuladapp");
}

/// Start a build whose `isula load` hangs; returns it once the stand-in runs, with the
/// stand-in's pid.
fn start_hanging_isulad_build(env: &Env, bin: &Path, rec: &Path) -> (std::process::Child, i32) {
    let ctx = context(env, "ctx", DOCKERFILE, &[("a.txt", "payload\n")]);
    let pid_file = rec.join("pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut child = env
        .cmd()
        .args(["ctr-img", "build", "-o", "isulad:isuladapp:v1", s(&ctx)])
        .env("PATH", path_with(bin))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        if Instant::now() > deadline || child.try_wait().expect("wait").is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("stand-in never started: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let standin: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .expect("pid");
    (child, standin)
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

#[test]
fn ctrl_c_during_isula_load_removes_the_archive_and_kills_isula() {
    if !have_tool("skopeo") {
        eprintln!("SKIP ctrl_c_during_isula_load_removes_the_archive_and_kills_isula: skopeo not installed");
        return;
    }
    use nix::sys::signal::Signal;
    let env = base_env();
    // The stand-in records its pid and hangs in place (exec keeps the pid).
    let (bin, rec) = stand_in(&env, "echo $$ > \"$rec/pid\"; exec sleep 120");
    let (mut child, standin) = start_hanging_isulad_build(&env, &bin, &rec);
    assert_eq!(isulad_tmp_files(&env).len(), 1, "archive exists meanwhile");
    // Ctrl+C, delivered to isula-build alone (a terminal would signal the whole group).
    signal(child.id() as i32, Signal::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            signal(standin, Signal::SIGKILL);
            panic!("isula-build did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.signal(), Some(libc_sigint()), "{status:?}");
    assert!(isulad_tmp_files(&env).is_empty(), "archive left behind");
    // The stand-in is gone (killed and reaped by isula-build).
    assert!(
        !Path::new(&format!("/proc/{standin}")).exists(),
        "isula stand-in {standin} still running"
    );

    // kill -9 cannot be caught: the archive stays until the next command sweeps the dead
    // process's work dir.
    let (mut child, standin) = start_hanging_isulad_build(&env, &bin, &rec);
    let _ = child.kill();
    let _ = child.wait();
    signal(standin, Signal::SIGKILL);
    assert_eq!(isulad_tmp_files(&env).len(), 1);
    env.ok(&["ctr-img", "images"]);
    assert!(
        isulad_tmp_files(&env).is_empty(),
        "sweeper left the archive"
    );
}

fn libc_sigint() -> i32 {
    nix::sys::signal::Signal::SIGINT as i32
}

#[test]
fn command_names_the_new_transports_in_help() {
    let out = Command::new(bin())
        .args(["ctr-img", "build", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("docker-daemon:NAME:TAG"), "{help}");
    assert!(help.contains("isulad:NAME:TAG"), "{help}");
}
