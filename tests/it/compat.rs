//! The `isula-builder` compatibility server: the real binary started through a symlink named
//! `isula-builder`, with a temporary data root, run root, config dir and socket, driven by a
//! tonic client generated from the same `proto/control.proto`. Every RPC is called here.

use crate::common::{busybox_tar, small_rootfs, write, Env};
use crate::registry::{have, insecure, Auth, Registry, PASS, USER};
use isula_build::compat::crypto;
use isula_build::compat::proto::control_client::ControlClient;
use isula_build::compat::proto::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Skip (with a clear line) when a tool is missing.
macro_rules! need {
    ($($tool:expr),+) => {
        $(
            if !have($tool) {
                eprintln!("SKIP {}: {} not installed", module_path!(), $tool);
                return;
            }
        )+
    };
}

/// A running `isula-builder` on a temporary everything.
struct Server {
    env: Env,
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `isula-builder` in `dir`: a symlink to the binary under test.
fn builder_link(dir: &Path) -> PathBuf {
    let link = dir.join("isula-builder");
    if !link.exists() {
        std::os::unix::fs::symlink(crate::common::bin(), &link).expect("symlink");
    }
    link
}

fn server_cmd(env: &Env, socket: &Path, extra: &[&str]) -> Command {
    let mut c = server_cmd_no_group(env, socket);
    c.arg("--group").arg("root").args(extra);
    c
}

fn server_cmd_no_group(env: &Env, socket: &Path) -> Command {
    let mut c = Command::new(builder_link(env.dir.path()));
    c.arg("--dataroot")
        .arg(env.dataroot())
        .arg("--runroot")
        .arg(env.runroot())
        .arg("--config")
        .arg(env.conf())
        .arg("--socket")
        .arg(socket)
        .env_remove("ISULABUILD_CLI_EXPERIMENTAL")
        .env_remove("NOTIFY_SOCKET");
    c
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Self::start_in(Env::new(), extra, |_| {})
    }

    fn start_in(env: Env, extra: &[&str], tweak: impl FnOnce(&mut Command)) -> Server {
        let socket = env.path("isula_build.sock");
        let log = env.path("server.log");
        let mut cmd = server_cmd(&env, &socket, extra);
        tweak(&mut cmd);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start isula-builder");
        let mut s = Server {
            env,
            child: Some(child),
            socket,
            log,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("isula-builder exited early ({st}): {}", self.log_text());
                }
            }
            if self.socket.exists() {
                let ok = runtime().block_on(async {
                    match connect(&self.socket).await {
                        Some(mut c) => c.health_check(()).await.is_ok(),
                        None => false,
                    }
                });
                if ok {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("isula-builder did not come up: {}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).expect("running")
    }

    /// SIGTERM and wait; returns the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("isula-builder ignored SIGTERM: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client(&self, rt: &tokio::runtime::Runtime) -> ControlClient<Channel> {
        rt.block_on(connect(&self.socket)).expect("connect")
    }

    /// The public key clients encrypt with.
    fn public_key(&self) -> rsa::RsaPublicKey {
        let text = std::fs::read_to_string(self.env.conf().join("isula-build.pub")).expect("pub");
        crypto::read_public(&text).expect("public key parses")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn connect(socket: &Path) -> Option<ControlClient<Channel>> {
    let path = socket.to_path_buf();
    let channel = tonic::transport::Endpoint::try_from("http://[::]:50051")
        .ok()?
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let p = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(p).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .ok()?;
    Some(ControlClient::new(channel))
}

/// Every message of a server stream, and the error that ended it (if any).
async fn drain<T>(
    mut s: tonic::Streaming<T>,
    text: impl Fn(&T) -> String,
) -> (Vec<String>, Option<tonic::Status>) {
    let mut out = Vec::new();
    loop {
        match s.message().await {
            Ok(Some(m)) => out.push(text(&m)),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Import `tar` as `name` through the Import RPC; returns the image ID.
fn import(
    rt: &tokio::runtime::Runtime,
    c: &mut ControlClient<Channel>,
    tar: &Path,
    name: &str,
) -> String {
    let (lines, err) = rt.block_on(async {
        let s = c
            .import(ImportRequest {
                import_id: "imp1".into(),
                source: tar.display().to_string(),
                reference: name.into(),
            })
            .await
            .expect("import")
            .into_inner();
        drain(s, |m: &ImportResponse| m.log.clone()).await
    });
    assert!(err.is_none(), "import failed: {err:?}");
    let last = lines.last().expect("import log");
    let id = last
        .strip_prefix("Import success with image id: \"")
        .and_then(|s| s.strip_suffix("\"\n"))
        .unwrap_or_else(|| panic!("unexpected import log {lines:?}"));
    assert_eq!(id.len(), 64);
    id.to_string()
}

fn list(
    rt: &tokio::runtime::Runtime,
    c: &mut ControlClient<Channel>,
    name: &str,
) -> Result<Vec<list_response::ImageInfo>, tonic::Status> {
    rt.block_on(c.list(ListRequest {
        image_name: name.into(),
    }))
    .map(|r| r.into_inner().images)
}

fn remove(
    rt: &tokio::runtime::Runtime,
    c: &mut ControlClient<Channel>,
    req: RemoveRequest,
) -> (Vec<String>, Option<tonic::Status>) {
    rt.block_on(async {
        let s = c.remove(req).await.expect("remove").into_inner();
        drain(s, |m: &RemoveResponse| m.layer_message.clone()).await
    })
}

/// Mount points (in any process's mount namespace) whose path mentions `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(t) = std::fs::read_to_string(e.path().join("mountinfo")) {
            for l in t.lines().filter(|l| l.contains(&needle)) {
                found.push(format!("pid {}: {l}", name.to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn server_socket_key_lock_notify_and_sigterm() {
    let env = Env::new();
    let notify_path = env.path("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let np = notify_path.clone();
    let mut server = Server::start_in(env, &[], move |c| {
        c.env("NOTIFY_SOCKET", &np);
    });
    // sd_notify(READY=1), sent once the socket is listening.
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 datagram");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(
        msg.contains(&format!("MAINPID={}", server.pid())),
        "{msg:?}"
    );

    // The socket: mode 0660, root:root (the --group given).
    let md = std::fs::symlink_metadata(&server.socket).expect("socket");
    assert!(md.file_type().is_socket());
    assert_eq!(md.permissions().mode() & 0o7777, 0o660);
    assert_eq!((md.uid(), md.gid()), (0, 0));
    // The public key: readable by root and the group only.
    let key = server.env.conf().join("isula-build.pub");
    let kmd = std::fs::metadata(&key).expect("public key");
    assert_eq!(kmd.permissions().mode() & 0o7777, 0o440);
    let pem = std::fs::read_to_string(&key).expect("read key");
    assert!(pem.starts_with("-----BEGIN RSA PUBLIC KEY-----\n"), "{pem}");
    assert_eq!(rsa::traits::PublicKeyParts::size(&server.public_key()), 256);

    // HealthCheck and Version.
    let rt = runtime();
    let mut c = server.client(&rt);
    let h = rt
        .block_on(c.health_check(()))
        .expect("health")
        .into_inner();
    assert_eq!(
        h.status,
        health_check_response::ServingStatus::Serving as i32
    );
    let v = rt.block_on(c.version(())).expect("version").into_inner();
    assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
    assert!(v.go_version.starts_with("rustc "), "{v:?}");
    assert!(v.os_arch.starts_with("linux/"), "{v:?}");
    assert!(
        !v.git_commit.is_empty() && !v.build_time.is_empty(),
        "{v:?}"
    );

    // One server per run root: a second one is refused with upstream's message, and the
    // first one's socket is left alone.
    let other_sock = server.env.path("second.sock");
    let out = server_cmd(&server.env, &other_sock, &[])
        .output()
        .expect("second server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("isula-builder.lock failed, check if there is another daemon running"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!other_sock.exists());
    assert!(rt.block_on(c.health_check(())).is_ok());
    // Another run root but the same socket: refused, the live socket is left alone.
    let other = Env::new();
    let out = server_cmd(&other, &server.socket, &[])
        .output()
        .expect("server on a taken socket");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("create new GRPC socket failed: another server is listening on"),
        "{err}"
    );
    assert!(rt.block_on(c.health_check(())).is_ok());
    // A stale socket file (nothing listening) is replaced.
    let stale = other.path("isula_build.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("stale socket"));
    let mut second = Server::start_in(other, &[], |_| {});
    assert_eq!(second.socket, stale);
    assert!(second.terminate().success());
    assert!(!stale.exists());

    // SIGTERM: clean exit, socket and public key removed.
    drop(c);
    let st = server.terminate();
    assert!(st.success(), "{st}: {}", server.log_text());
    assert!(!server.socket.exists(), "socket left behind");
    assert!(!key.exists(), "public key left behind");
    assert!(server
        .log_text()
        .contains("Signal terminated received and exit"));
}

#[test]
fn missing_group_and_bad_flags_are_clear_errors() {
    let env = Env::new();
    let sock = env.path("s.sock");
    let out = server_cmd_no_group(&env, &sock)
        .args(["--group", "no-such-group-isula-test"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("create new GRPC socket failed")
            && err.contains("\"no-such-group-isula-test\" does not exist"),
        "{err}"
    );
    assert!(!sock.exists());
    let out = server_cmd(&env, &sock, &["--storage-driver", "vfs"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only \"overlay\""));
    let out = server_cmd(&env, &sock, &["extra-arg"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(builder_link(env.dir.path()))
        .arg("--version")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("isula-builder version "));
}

#[test]
fn image_rpcs_import_list_tag_save_load_remove_info() {
    let server = Server::start(&[]);
    let rt = runtime();
    let mut c = server.client(&rt);
    let tar = server.env.path("rootfs.tar");
    write(&tar, &small_rootfs("compat"));
    let id = import(&rt, &mut c, &tar, "compat/base:1");

    // List: all, by repository, by name:tag, unknown repository.
    let rows = list(&rt, &mut c, "").expect("list");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.repository.as_str(), r.tag.as_str(), r.id.as_str()),
        ("compat/base", "1", id.as_str())
    );
    assert!(
        chrono::NaiveDateTime::parse_from_str(&r.created, "%Y-%m-%d %H:%M:%S").is_ok(),
        "{r:?}"
    );
    assert!(r.size.ends_with(" KB") || r.size.ends_with(" B"), "{r:?}");
    assert_eq!(list(&rt, &mut c, "compat/base").expect("repo").len(), 1);
    let e = list(&rt, &mut c, "nothing/here").expect_err("no such repo");
    assert_eq!(e.code(), tonic::Code::Unknown);
    assert!(!e.message().contains('\n'));

    // Tag, then List by the new name.
    rt.block_on(c.tag(TagRequest {
        image: "compat/base:1".into(),
        tag: "compat/other".into(),
    }))
    .expect("tag");
    let rows = list(&rt, &mut c, "compat/other:latest").expect("list tag");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, id);
    let e = rt
        .block_on(c.tag(TagRequest {
            image: "missing:1".into(),
            tag: "x:1".into(),
        }))
        .expect_err("tag of a missing image");
    assert!(e.message().contains("find local image"), "{}", e.message());

    // Save (docker-archive), and the refusal to overwrite.
    let archive = server.env.path("saved.tar");
    let save = |c: &mut ControlClient<Channel>, path: &Path, format: &str| {
        rt.block_on(async {
            let s = c
                .save(SaveRequest {
                    save_id: "s1".into(),
                    images: vec!["compat/base:1".into()],
                    path: path.display().to_string(),
                    format: format.into(),
                    sep: None,
                })
                .await
                .expect("save")
                .into_inner();
            drain(s, |m: &SaveResponse| m.log.clone()).await
        })
    };
    let (lines, err) = save(&mut c, &archive, "docker");
    assert!(err.is_none(), "{err:?}");
    assert!(lines.iter().all(|l| l.ends_with('\n')), "{lines:?}");
    assert!(archive.is_file());
    let (_, err) = save(&mut c, &archive, "docker");
    assert!(err.is_some(), "save over an existing file must fail");
    let oci = server.env.path("saved-oci.tar");
    let (_, err) = save(&mut c, &oci, "oci");
    assert!(err.is_none(), "{err:?}");
    let (_, err) = save(&mut c, &server.env.path("x.tar"), "zip");
    assert!(err
        .expect("bad format")
        .message()
        .contains("wrong image format provided"));

    // Remove: untag one name, then the image; unknown names fail the stream.
    let (lines, err) = remove(
        &rt,
        &mut c,
        RemoveRequest {
            image_id: vec!["compat/other:latest".into()],
            all: false,
            prune: false,
        },
    );
    assert!(err.is_none(), "{err:?}");
    assert_eq!(lines, vec!["Untagged: compat/other:latest"]);
    let (lines, err) = remove(
        &rt,
        &mut c,
        RemoveRequest {
            image_id: vec!["compat/base:1".into(), "nope:1".into()],
            all: false,
            prune: false,
        },
    );
    assert_eq!(
        err.expect("one failed").message(),
        "remove one or more images failed"
    );
    assert!(
        lines.contains(&format!("Deleted: sha256:{id}")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Find local image \"nope:1\" failed")),
        "{lines:?}"
    );
    assert!(list(&rt, &mut c, "").expect("list").is_empty());
    let (_, err) = remove(
        &rt,
        &mut c,
        RemoveRequest {
            image_id: vec!["x".into()],
            all: true,
            prune: false,
        },
    );
    assert_eq!(
        err.expect("refused").message(),
        "imageID/name is not allowed when using --all"
    );

    // Load the saved archive back: same image ID, its name restored.
    let load = |c: &mut ControlClient<Channel>, path: &Path| {
        rt.block_on(async {
            let s = c
                .load(LoadRequest {
                    path: path.display().to_string(),
                    load_id: "l1".into(),
                    sep: None,
                })
                .await
                .expect("load")
                .into_inner();
            drain(s, |m: &LoadResponse| m.log.clone()).await
        })
    };
    let (lines, err) = load(&mut c, &archive);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(lines.last(), Some(&format!("Loaded image as {id}\n")));
    let rows = list(&rt, &mut c, "compat/base:1").expect("loaded");
    assert_eq!(rows[0].id, id);
    let (_, err) = load(&mut c, &server.env.path("missing.tar"));
    assert!(err.is_some());

    // Remove --all.
    let (lines, err) = remove(
        &rt,
        &mut c,
        RemoveRequest {
            image_id: vec![],
            all: true,
            prune: false,
        },
    );
    assert!(err.is_none(), "{err:?}");
    assert!(
        lines.contains(&format!("Deleted: sha256:{id}")),
        "{lines:?}"
    );
    assert!(list(&rt, &mut c, "").expect("list").is_empty());

    // Info, plain and verbose.
    let i = rt
        .block_on(c.info(InfoRequest { verbose: false }))
        .expect("info")
        .into_inner();
    assert_eq!(i.data_root, server.env.dataroot().display().to_string());
    assert_eq!(i.run_root, server.env.runroot().display().to_string());
    assert_eq!(i.storage_info.expect("storage").storage_driver, "overlay");
    assert!(i.mem_info.expect("mem").mem_total > 0);
    assert_eq!(i.builder_num, 0);
    assert!(!i.experimental);
    assert!(i.mem_stat.is_none());
    let i = rt
        .block_on(c.info(InfoRequest { verbose: true }))
        .expect("info -V")
        .into_inner();
    assert!(i.mem_stat.expect("mem stat").mem_sys > 0);
    assert!(i.go_routines > 1);
    assert_eq!(
        crate::common::check_store(&server.env.dataroot()),
        Vec::<String>::new()
    );
}

const DOCKERFILE: &str = "FROM busybox\nARG http_proxy\nARG PLAIN\nCOPY hello.txt /hello.txt\nRUN echo \"run says $(cat /hello.txt) proxy=$http_proxy plain=$PLAIN\"\nCMD [\"/bin/sh\"]\n";

fn build_req(id: &str, context: &Path, dockerfile: &str) -> BuildRequest {
    BuildRequest {
        build_id: id.into(),
        build_type: "ctr-img".into(),
        context_dir: context.display().to_string(),
        file_content: dockerfile.into(),
        output: String::new(),
        build_args: vec![],
        proxy: false,
        iidfile: String::new(),
        build_static: None,
        additional_tag: String::new(),
        cap_add_list: vec![],
        entity_id: format!("entity-{id}"),
        encrypted: false,
        format: "docker".into(),
    }
}

/// Build and Status concurrently, as upstream's client does: (Build's result, Status lines).
fn build_with_status(
    rt: &tokio::runtime::Runtime,
    c: &ControlClient<Channel>,
    req: BuildRequest,
) -> (Result<String, tonic::Status>, Vec<String>) {
    let mut bc = c.clone();
    let mut sc = c.clone();
    let id = req.build_id.clone();
    rt.block_on(async move {
        let status = async {
            let s = sc
                .status(StatusRequest { build_id: id })
                .await
                .expect("status")
                .into_inner();
            drain(s, |m: &StatusResponse| m.content.clone()).await.0
        };
        let build = async { bc.build(req).await.map(|r| r.into_inner().image_id) };
        tokio::join!(build, status)
    })
}

#[test]
fn build_rpc_streams_status_and_decrypts_build_args() {
    let server = Server::start(&[]);
    let Some(bb) = busybox_tar(server.env.dir.path()) else {
        eprintln!("SKIP build over compat: busybox-static not installed");
        return;
    };
    let rt = runtime();
    let mut c = server.client(&rt);
    import(&rt, &mut c, &bb, "busybox:latest");
    let ctx = server.env.path("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    write(&ctx.join("hello.txt"), b"hi-from-context");

    // Encrypted build args, as upstream's client sends them when a proxy variable is set.
    let key = server.public_key();
    let mut req = build_req("b1", &ctx, DOCKERFILE);
    req.build_args = ["http_proxy=http://proxy.example:3128", "PLAIN=a=b"]
        .iter()
        .map(|a| crypto::encrypt_for(&key, a).expect("encrypt"))
        .collect();
    req.encrypted = true;
    req.additional_tag = "compat/built:1".into();
    let iid = server.env.path("iid");
    req.iidfile = iid.display().to_string();
    let (res, lines) = build_with_status(&rt, &c, req);
    let image_id =
        res.unwrap_or_else(|e| panic!("build failed: {e:?}\n{lines:?}\n{}", server.log_text()));
    assert_eq!(image_id.len(), 64);
    assert!(lines.iter().all(|l| l.ends_with('\n')), "{lines:?}");
    assert_eq!(
        lines.first().map(String::as_str),
        Some("STEP  1: FROM busybox\n"),
        "{lines:?}"
    );
    assert!(
        lines.contains(
            &"run says hi-from-context proxy=http://proxy.example:3128 plain=a=b\n".to_string()
        ),
        "{lines:?}"
    );
    assert_eq!(
        lines.last(),
        Some(&format!(
            "Write image ID [{image_id}] to file: {}\n",
            iid.display()
        ))
    );
    assert_eq!(std::fs::read_to_string(&iid).expect("iidfile"), image_id);
    let rows = list(&rt, &mut c, "compat/built:1").expect("built image listed");
    assert_eq!(rows[0].id, image_id);

    // Without an iidfile the last line is upstream's success line; -o docker-archive works.
    let mut req = build_req("b2", &ctx, "FROM busybox\nRUN echo second\n");
    let out = server.env.path("out.tar");
    req.output = format!("docker-archive:{}:compat/out:2", out.display());
    let (res, lines) = build_with_status(&rt, &c, req);
    let id2 = res.expect("second build");
    assert_eq!(
        lines.last(),
        Some(&format!("Build success with image id: {id2}\n"))
    );
    assert!(lines.contains(&"second\n".to_string()), "{lines:?}");
    assert!(out.is_file());

    // A failing RUN: the error is the build's own, one line; nothing is left running.
    let req = build_req("b3", &ctx, "FROM busybox\nRUN exit 3\n");
    let (res, lines) = build_with_status(&rt, &c, req);
    let e = res.expect_err("failing build");
    assert!(
        e.message().contains("returned a non-zero code: 3"),
        "{}",
        e.message()
    );
    assert!(!e.message().contains('\n'));
    assert!(
        lines.iter().any(|l| l.starts_with("STEP  2: RUN exit 3")),
        "{lines:?}"
    );

    // A refused Build ends the Status stream already waiting for it.
    let mut refused = build_req("b5", &ctx, "FROM busybox\n");
    refused.format = "zip".into();
    let (res, lines) = rt.block_on(async {
        let (mut sc, mut bc) = (c.clone(), c.clone());
        // Once Status has answered, the server is waiting for this build's log.
        let s = sc
            .status(StatusRequest {
                build_id: "b5".into(),
            })
            .await
            .expect("status")
            .into_inner();
        let res = bc.build(refused).await;
        let lines = tokio::time::timeout(
            Duration::from_secs(20),
            drain(s, |m: &StatusResponse| m.content.clone()),
        )
        .await
        .expect("Status stream ended")
        .0;
        (res, lines)
    });
    assert_eq!(
        res.expect_err("refused").message(),
        "wrong image format provided"
    );
    assert!(lines.is_empty(), "{lines:?}");

    // Bad requests: relative context, wrong format, undecryptable args, bad cap.
    let mut c2 = c.clone();
    let mut bad = build_req("b4", Path::new("relative"), "FROM busybox\n");
    let e = rt
        .block_on(c2.build(bad.clone()))
        .expect_err("relative context");
    assert!(e.message().contains("absolute"), "{}", e.message());
    bad.context_dir = ctx.display().to_string();
    bad.format = "tar".into();
    let e = rt.block_on(c2.build(bad.clone())).expect_err("format");
    assert_eq!(e.message(), "wrong image format provided");
    bad.format = "docker".into();
    bad.build_args = vec!["00ff".into()];
    bad.encrypted = true;
    let e = rt.block_on(c2.build(bad.clone())).expect_err("decrypt");
    assert!(
        e.message().starts_with("decryption failed"),
        "{}",
        e.message()
    );
    bad.build_args = vec![];
    bad.encrypted = false;
    bad.cap_add_list = vec!["CAP_NOT_REAL".into()];
    assert!(rt.block_on(c2.build(bad)).is_err());

    assert!(mounts_under(server.env.dir.path()).is_empty());
    assert_eq!(
        crate::common::check_store(&server.env.dataroot()),
        Vec::<String>::new()
    );
}

/// Whether the shell of the long RUN step of the SIGTERM test is running.
fn run_step_alive() -> bool {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .any(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        // The shell may exec its last command: look for that command.
                        .contains("sleep 613")
                })
        })
        .unwrap_or(false)
}

#[test]
fn sigterm_cancels_running_build_and_leaves_no_mounts() {
    let mut server = Server::start(&[]);
    let Some(bb) = busybox_tar(server.env.dir.path()) else {
        eprintln!("SKIP build cancel over compat: busybox-static not installed");
        return;
    };
    let rt = runtime();
    let mut c = server.client(&rt);
    import(&rt, &mut c, &bb, "busybox:latest");
    let ctx = server.env.path("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    let req = build_req(
        "long",
        &ctx,
        "FROM busybox\nRUN echo started && sleep 613\n",
    );
    let dir = server.env.dir.path().to_path_buf();
    let pid = server.pid();
    // Build in the background; once its RUN step has started, SIGTERM the server.
    let (res, lines, mounts_during) = rt.block_on(async {
        let mut bc = c.clone();
        let mut sc = c.clone();
        let build = tokio::spawn(async move { bc.build(req).await });
        let s = sc
            .status(StatusRequest {
                build_id: "long".into(),
            })
            .await
            .expect("status")
            .into_inner();
        let mut s = s;
        let mut lines = Vec::new();
        let mut mounts_during = Vec::new();
        while let Ok(Some(m)) = s.message().await {
            lines.push(m.content.clone());
            if m.content == "started\n" {
                let deadline = Instant::now() + Duration::from_secs(20);
                while !run_step_alive() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                assert!(run_step_alive(), "the RUN step runs");
                mounts_during = mounts_under(&dir);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let res = tokio::time::timeout(Duration::from_secs(30), build)
            .await
            .expect("Build returned after SIGTERM")
            .expect("join");
        (res, lines, mounts_during)
    });
    assert!(lines.contains(&"started\n".to_string()), "{lines:?}");
    assert!(
        !mounts_during.is_empty(),
        "the build had overlay mounts while running"
    );
    // The build fails (cancelled, or its connection closed by the stopping server).
    assert!(res.is_err(), "{res:?}");
    let st = server.terminate();
    assert!(st.success(), "{st}: {}", server.log_text());
    assert!(!server.socket.exists(), "socket left behind");
    assert_eq!(
        mounts_under(&dir),
        Vec::<String>::new(),
        "mounts left behind"
    );
    // No process of the build survives (the RUN step's shell included).
    assert!(!run_step_alive(), "the RUN step survived the server");
    assert_eq!(
        crate::common::check_store(&server.env.dataroot()),
        Vec::<String>::new()
    );
}

#[test]
fn registry_rpcs_login_push_pull_logout_and_manifests() {
    need!("docker-registry", "htpasswd");
    let reg = Registry::start(Auth::Htpasswd, false);
    let env = Env::new();
    insecure(&env, &[reg.host()]);
    let server = Server::start_in(env, &["--experimental"], |_| {});
    let rt = runtime();
    let mut c = server.client(&rt);
    let key = server.public_key();
    let login = |c: &mut ControlClient<Channel>, user: &str, pass: &str| {
        rt.block_on(c.login(LoginRequest {
            server: reg.host(),
            username: user.into(),
            password: if pass.is_empty() {
                String::new()
            } else {
                crypto::encrypt_for(&key, pass).expect("encrypt")
            },
        }))
        .map(|r| r.into_inner().content)
    };

    // Saved credentials are tried first; with none, the client is told to ask for them.
    let e = login(&mut c, "", "").expect_err("no saved credentials");
    assert!(
        e.message()
            .contains("Failed to authenticate existing credentials"),
        "{}",
        e.message()
    );
    let e = login(&mut c, USER, "wrong-password").expect_err("wrong password");
    assert!(e.message().contains("unauthorized"), "{}", e.message());
    assert!(!e.message().contains("wrong-password"));
    // A password in clear text (not encrypted with the server's key) is refused.
    let e = rt
        .block_on(c.login(LoginRequest {
            server: reg.host(),
            username: USER.into(),
            password: PASS.into(),
        }))
        .expect_err("clear text password");
    assert!(
        e.message().starts_with("decryption failed"),
        "{}",
        e.message()
    );
    assert_eq!(login(&mut c, USER, PASS).expect("login"), "Login Succeeded");
    let auth = std::fs::read_to_string(server.env.conf().join("auth.json")).expect("auth.json");
    assert!(auth.contains(&reg.host()));
    assert!(!auth.contains(PASS), "password stored in clear");
    assert_eq!(
        login(&mut c, "", "").expect("login with auth file"),
        "Login Succeed with AuthFile"
    );

    // Push an imported image, remove it, pull it back.
    let name = format!("{}:1", reg.image("compat/app"));
    let tar = server.env.path("app.tar");
    write(&tar, &small_rootfs("pushed"));
    let id = import(&rt, &mut c, &tar, &name);
    let push = |c: &mut ControlClient<Channel>, image: &str, format: &str| {
        rt.block_on(async {
            let s = c
                .push(PushRequest {
                    push_id: "p1".into(),
                    image_name: image.into(),
                    format: format.into(),
                })
                .await
                .expect("push")
                .into_inner();
            drain(s, |m: &PushResponse| m.response.clone()).await
        })
    };
    let (lines, err) = push(&mut c, &name, "docker");
    assert!(err.is_none(), "{err:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("Copying blob sha256:")),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Writing manifest to image destination\n")
    );
    let (_, err) = push(&mut c, &name, "zip");
    assert!(err.is_some());
    let (_, err) = remove(
        &rt,
        &mut c,
        RemoveRequest {
            image_id: vec![name.clone()],
            all: false,
            prune: false,
        },
    );
    assert!(err.is_none(), "{err:?}");
    let pull = |c: &mut ControlClient<Channel>, image: &str| {
        rt.block_on(async {
            let s = c
                .pull(PullRequest {
                    pull_id: "p2".into(),
                    image_name: image.into(),
                })
                .await
                .expect("pull")
                .into_inner();
            drain(s, |m: &PullResponse| m.response.clone()).await
        })
    };
    let (lines, err) = pull(&mut c, &name);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        lines.last(),
        Some(&format!("Image ID: {id}\n")),
        "{lines:?}"
    );
    assert_eq!(list(&rt, &mut c, &name).expect("pulled")[0].id, id);
    let (_, err) = pull(&mut c, &format!("{}:nope", reg.image("compat/none")));
    let e = err.expect("missing image");
    assert!(
        e.message().starts_with("copying source image"),
        "{}",
        e.message()
    );

    // Manifest lists (the server runs with --experimental).
    let second = format!("{}:2", reg.image("compat/app"));
    let tar2 = server.env.path("app2.tar");
    write(&tar2, &small_rootfs("second"));
    import(&rt, &mut c, &tar2, &second);
    let (_, err) = push(&mut c, &second, "docker");
    assert!(err.is_none(), "{err:?}");
    let list_id = rt
        .block_on(c.manifest_create(ManifestCreateRequest {
            manifest_list: "compatlist".into(),
            manifests: vec![name.clone(), second.clone()],
        }))
        .expect("manifest create")
        .into_inner()
        .image_id;
    assert_eq!(list_id.len(), 64);
    rt.block_on(c.manifest_annotate(ManifestAnnotateRequest {
        manifest_list: "compatlist".into(),
        manifest: second.clone(),
        arch: "arm64".into(),
        os: "linux".into(),
        os_features: vec![],
        variant: "v8".into(),
    }))
    .expect("annotate");
    let data = rt
        .block_on(c.manifest_inspect(ManifestInspectRequest {
            manifest_list: "compatlist".into(),
        }))
        .expect("inspect")
        .into_inner()
        .data;
    let v: serde_json::Value = serde_json::from_slice(&data).expect("inspect JSON");
    assert_eq!(
        v["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(v["manifests"][1]["platform"]["architecture"], "arm64");
    assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");
    let dest = format!("{}:multi", reg.image("compat/list"));
    let (lines, err) = rt.block_on(async {
        let s = c
            .manifest_push(ManifestPushRequest {
                manifest_list: "compatlist".into(),
                dest: dest.clone(),
            })
            .await
            .expect("manifest push")
            .into_inner();
        drain(s, |m: &ManifestPushResponse| m.result.clone()).await
    });
    assert!(err.is_none(), "{err:?}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("Writing manifest list sha256:")),
        "{lines:?}"
    );
    // What was pushed is a manifest list: pull one platform of it back by the list's tag.
    let (_, err) = pull(&mut c, &dest);
    assert!(err.is_none(), "{err:?}");

    // Logout: once, then "not logged in" (upstream's error).
    let out = rt
        .block_on(c.logout(LogoutRequest {
            server: reg.host(),
            all: false,
        }))
        .expect("logout")
        .into_inner();
    assert_eq!(
        out.result,
        format!("Removed authentication for {}", reg.host())
    );
    let e = rt
        .block_on(c.logout(LogoutRequest {
            server: reg.host(),
            all: false,
        }))
        .expect_err("second logout");
    assert_eq!(e.message(), "not logged in");
    let out = rt
        .block_on(c.logout(LogoutRequest {
            server: String::new(),
            all: true,
        }))
        .expect("logout all")
        .into_inner();
    assert_eq!(out.result, "Removed authentications");
    // Logged out, pushing is refused by the registry.
    let (_, err) = push(&mut c, &name, "docker");
    assert!(err.is_some());
}

#[test]
fn manifest_rpcs_need_experimental() {
    let server = Server::start(&[]);
    let rt = runtime();
    let mut c = server.client(&rt);
    let e = rt
        .block_on(c.manifest_create(ManifestCreateRequest {
            manifest_list: "l".into(),
            manifests: vec![],
        }))
        .expect_err("not experimental");
    assert_eq!(
        e.message(),
        "please enable experimental to use manifest feature"
    );
    let e = rt
        .block_on(c.manifest_inspect(ManifestInspectRequest {
            manifest_list: "l".into(),
        }))
        .expect_err("not experimental");
    assert_eq!(
        e.message(),
        "please enable experimental to use manifest feature"
    );
    let e = rt
        .block_on(c.manifest_annotate(ManifestAnnotateRequest {
            manifest_list: "l".into(),
            manifest: "m".into(),
            ..Default::default()
        }))
        .expect_err("not experimental");
    assert_eq!(
        e.message(),
        "please enable experimental to use manifest feature"
    );
    let (_, err) = rt.block_on(async {
        let s = c
            .manifest_push(ManifestPushRequest {
                manifest_list: "l".into(),
                dest: "localhost:5000/x:1".into(),
            })
            .await
            .expect("stream")
            .into_inner();
        drain(s, |m: &ManifestPushResponse| m.result.clone()).await
    });
    assert_eq!(
        err.expect("refused").message(),
        "please enable experimental to use manifest feature"
    );
}

#[test]
fn a_client_going_away_cancels_its_build() {
    let server = Server::start(&[]);
    let Some(bb) = busybox_tar(server.env.dir.path()) else {
        eprintln!("SKIP client cancel over compat: busybox-static not installed");
        return;
    };
    let rt = runtime();
    let mut c = server.client(&rt);
    import(&rt, &mut c, &bb, "busybox:latest");
    let ctx = server.env.path("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    let marker = format!("sleep 5{}", std::process::id() % 1000);
    let req = build_req(
        "gone",
        &ctx,
        &format!("FROM busybox\nRUN echo started && {marker}\n"),
    );
    let sleeping = |m: &str| {
        std::fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(m))
    };
    rt.block_on(async {
        let (mut bc, mut sc) = (c.clone(), c.clone());
        let build = tokio::spawn(async move { bc.build(req).await });
        let mut s = sc
            .status(StatusRequest {
                build_id: "gone".into(),
            })
            .await
            .expect("status")
            .into_inner();
        while let Ok(Some(m)) = s.message().await {
            if m.content == "started\n" {
                break;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !sleeping(&marker) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(sleeping(&marker), "the RUN step runs");
        // The client gives up: its Build call is dropped.
        build.abort();
        let _ = build.await;
        // The Status stream ends once the build is gone.
        let rest = tokio::time::timeout(
            Duration::from_secs(20),
            drain(s, |m: &StatusResponse| m.content.clone()),
        )
        .await
        .expect("Status ended after the client left");
        assert!(rest.1.is_none(), "{rest:?}");
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while sleeping(&marker) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !sleeping(&marker),
        "the build's RUN step survived its client"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !mounts_under(server.env.dir.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(mounts_under(server.env.dir.path()), Vec::<String>::new());
    // The server carries on, and the same build ID can be used again.
    let h = rt
        .block_on(c.health_check(()))
        .expect("health")
        .into_inner();
    assert_eq!(
        h.status,
        health_check_response::ServingStatus::Serving as i32
    );
    let (res, _) = build_with_status(&rt, &c, build_req("gone", &ctx, "FROM busybox\n"));
    assert!(res.is_ok(), "{res:?}");
}
