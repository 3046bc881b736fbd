//! Registries: real `docker-registry` instances on 127.0.0.1 (open, htpasswd Basic auth,
//! TLS with a generated CA, Bearer token auth against a token service served here),
//! `skopeo` as the judge of what we push, and hostile servers for bad input.
//! Every server listens on a free loopback port and is stopped by the test.

use crate::common::{check_store, make_tar, sha256_hex, small_rootfs, snapshot, write, Env, E};
use base64::Engine as _;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const USER: &str = "tester";
pub(crate) const PASS: &str = "s3cret-Pa55word";

pub(crate) fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on port {port} did not start");
}

#[derive(Clone)]
pub(crate) enum Auth {
    Open,
    Htpasswd,
    Token { realm: String, cert: PathBuf },
}

/// A docker-registry process.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    tls: Option<PathBuf>,
}

impl Registry {
    pub(crate) fn start(auth: Auth, tls: bool) -> Registry {
        Registry::start_with(auth, tls, false)
    }

    /// With `client_certs`, TLS that requires a client certificate signed by the CA.
    fn start_with(auth: Auth, tls: bool, client_certs: bool) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("isula-reg-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let d = dir.path();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            d.join("data").display()
        );
        let mut ca = None;
        if tls {
            let (ca_crt, crt, key) = make_tls(d);
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                crt.display(),
                key.display()
            ));
            if client_certs {
                cfg.push_str(&format!("    clientcas:\n      - {}\n", ca_crt.display()));
            }
            ca = Some(ca_crt);
        }
        match auth {
            Auth::Open => {}
            Auth::Htpasswd => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASS])
                    .output()
                    .expect("htpasswd");
                assert!(out.status.success());
                write(&d.join("htpasswd"), &out.stdout);
                cfg.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    d.join("htpasswd").display()
                ));
            }
            Auth::Token { realm, cert } => {
                cfg.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                    cert.display()
                ));
            }
        }
        write(&d.join("config.yml"), cfg.as_bytes());
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            // The access log (combined format: request line, status, bytes).
            .stdout(std::fs::File::create(d.join("access.log")).expect("access log"))
            .stderr(std::fs::File::create(d.join("log")).expect("log"))
            .spawn()
            .expect("start docker-registry");
        wait_port(port);
        Registry {
            child,
            port,
            dir,
            tls: ca,
        }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub(crate) fn image(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host())
    }
    /// Lines of the access log so far.
    fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key).
fn make_tls(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=isula-test-ca",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    write(
        &d.join("ext.cnf"),
        b"subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    (d.join("ca.crt"), d.join("server.crt"), d.join("server.key"))
}

pub(crate) fn insecure(env: &Env, hosts: &[String]) {
    let list: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    write(
        &env.conf().join("registries.toml"),
        format!(
            "[registries.insecure]\nregistries = [{}]\n",
            list.join(", ")
        )
        .as_bytes(),
    );
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo")
}

fn skopeo_ok(args: &[&str]) -> String {
    let out = skopeo(args);
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).expect("json")
}

/// ID of the image named `name` in `env`'s store.
fn id_of(env: &Env, name: &str) -> String {
    env.index()["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| {
            i["names"]
                .as_array()
                .is_some_and(|n| n.iter().any(|x| x == name))
        })
        .and_then(|i| i["id"].as_str())
        .unwrap_or_else(|| panic!("no image named {name}"))
        .to_string()
}

fn import_small(env: &Env, name: &str, salt: &str) -> String {
    let tar = env.path(&format!("{salt}.tar"));
    write(&tar, &small_rootfs(salt));
    env.import(&tar, name)
}

fn assert_no_secret(out: &std::process::Output) {
    for s in [&out.stdout, &out.stderr] {
        let t = String::from_utf8_lossy(s);
        assert!(!t.contains(PASS), "password leaked: {t}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
        assert!(!t.contains(&b64), "credentials leaked: {t}");
    }
}

// ---------------------------------------------------------------------------------------
// OCI layouts made here, pushed by skopeo (an image we did not write).

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).expect("gz");
    e.finish().expect("gz")
}

fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    write(&layout.join("blobs/sha256").join(&hex), bytes);
    format!("sha256:{hex}")
}

/// An image manifest for `arch` with `layers` (uncompressed tars); returns its descriptor.
fn oci_image(layout: &Path, arch: &str, layers: &[Vec<u8>]) -> serde_json::Value {
    let mut diff_ids = vec![];
    let mut descs = vec![];
    for l in layers {
        diff_ids.push(format!("sha256:{}", sha256_hex(l)));
        let z = gz(l);
        let d = put_blob(layout, &z);
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": z.len(), "digest": d}));
    }
    let cfg = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}]
    });
    let cfg = serde_json::to_vec(&cfg).expect("cfg");
    let cd = put_blob(layout, &cfg);
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": cfg.len(), "digest": cd},
        "layers": descs
    });
    let mb = serde_json::to_vec(&m).expect("m");
    let md = put_blob(layout, &mb);
    serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": mb.len(), "digest": md,
        "platform": {"architecture": arch, "os": "linux"}, "config": cd})
}

/// An OCI layout whose `index.json` names one entry `ref`: the manifest itself, or (for
/// several) an image index of them.
fn write_layout(layout: &Path, manifests: &[serde_json::Value]) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    write(
        &layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    let ms: Vec<serde_json::Value> = manifests
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.as_object_mut().expect("obj").remove("config");
            m
        })
        .collect();
    let mut top = if ms.len() == 1 {
        ms[0].clone()
    } else {
        let idx = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms});
        let b = serde_json::to_vec(&idx).expect("idx");
        let d = put_blob(layout, &b);
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "size": b.len(), "digest": d})
    };
    top["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "ref"});
    let idx = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
    write(
        &layout.join("index.json"),
        &serde_json::to_vec(&idx).expect("idx"),
    );
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn layer_tar(name: &str, size: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    make_tar(&[E::Dir("data/", 0o755), E::File(name, &data, 0o644)])
}

// ---------------------------------------------------------------------------------------

#[test]
fn open_registry_push_pull_roundtrip_judged_by_skopeo() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start(Auth::Open, false);
    let a = Env::new();
    insecure(&a, &[reg.host()]);
    let name = format!("{}:v1", reg.image("test/small"));
    let id = import_small(&a, &name, "roundtrip");
    let out = a.ok(&["ctr-img", "push", &name]);
    assert_eq!(out.trim(), format!("Push success with image: {name}"));

    // skopeo reads what we pushed: config digest is our image ID, layers are our blobs.
    let raw = json(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{name}"),
    ]));
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(raw["config"]["digest"], format!("sha256:{id}"));
    let insp = json(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]));
    assert_eq!(insp["Architecture"], host_arch());
    let oci = a.path("skopeo-oci");
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("oci:{}:x", oci.display()),
    ]);

    // A second push skips every blob (HEAD).
    let out = a.run(&["ctr-img", "push", &name]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already exists") && !err.contains("pushed"),
        "{err}"
    );

    // Pull into a fresh store: same ID, consistent store.
    let b = Env::new();
    insecure(&b, &[reg.host()]);
    let out = b.ok(&["ctr-img", "pull", &name]);
    assert_eq!(out.trim(), format!("Pull success with image: {name}"));
    assert_eq!(id_of(&b, &name), id);
    assert!(
        check_store(&b.dataroot()).is_empty(),
        "{:?}",
        check_store(&b.dataroot())
    );
    let images = b.ok(&["ctr-img", "images"]);
    assert!(images.contains(&reg.image("test/small")), "{images}");

    // Pull again: nothing downloaded.
    let out = b.run(&["ctr-img", "pull", &name]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("up to date"));

    // OCI format push.
    let oname = format!("{}:oci", reg.image("test/small"));
    a.ok(&["ctr-img", "tag", &name, &oname]);
    a.ok(&["ctr-img", "push", "-f", "oci", &oname]);
    let raw = json(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{oname}"),
    ]));
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // Cross-repository mount: the registry already has the blobs in test/small.
    let mname = format!("{}:m", reg.image("other/repo"));
    a.ok(&["ctr-img", "tag", &name, &mname]);
    let out = a.run(&["ctr-img", "push", &mname]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mounted") && !err.contains("pushed"), "{err}");
    skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{mname}"),
    ]);

    // Chunked upload to a new repository with no mount source.
    let c = Env::new();
    insecure(&c, &[reg.host()]);
    let cname = format!("{}:c", reg.image("chunked/img"));
    import_small(&c, &cname, "chunky");
    c.ok(&["ctr-img", "push", "--chunk-size", "100", &cname]);
    let raw = json(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{cname}"),
    ]));
    assert_eq!(
        raw["config"]["digest"],
        format!("sha256:{}", id_of(&c, &cname))
    );
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{cname}"),
        &format!("oci:{}:c", oci.display()),
    ]);
}

#[test]
fn pulls_what_skopeo_pushed_multi_layer_and_platform_index() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start(Auth::Open, false);
    let t = tempfile::tempdir().expect("tmp");
    let layout = t.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    let base = layer_tar("data/base", 300_000);
    let mine = oci_image(
        &layout,
        host_arch(),
        &[
            base.clone(),
            layer_tar("data/mid", 200_000),
            layer_tar("data/top", 1000),
        ],
    );
    let other_arch = if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let other = oci_image(&layout, other_arch, &[layer_tar("data/other", 500)]);
    write_layout(&layout, &[other, mine.clone()]);
    let name = format!("{}:multi", reg.image("ext/multi"));
    skopeo_ok(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:ref", layout.display()),
        &format!("docker://{name}"),
    ]);
    let env = Env::new();
    insecure(&env, &[reg.host()]);
    env.ok(&["ctr-img", "pull", &name]);
    let want = mine["config"]
        .as_str()
        .expect("cfg")
        .trim_start_matches("sha256:");
    assert_eq!(
        id_of(&env, &name),
        want,
        "index resolved to the host platform"
    );
    assert!(
        check_store(&env.dataroot()).is_empty(),
        "{:?}",
        check_store(&env.dataroot())
    );

    // An image sharing the base layer: that layer is not downloaded again.
    let layout2 = t.path().join("layout2");
    std::fs::create_dir_all(layout2.join("blobs/sha256")).expect("mkdir");
    let second = oci_image(&layout2, host_arch(), &[base, layer_tar("data/new", 100)]);
    write_layout(&layout2, &[second]);
    let name2 = format!("{}:second", reg.image("ext/multi"));
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:ref", layout2.display()),
        &format!("docker://{name2}"),
    ]);
    let out = env.run(&["ctr-img", "pull", &name2]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("already exists").count(), 1, "{err}");
    assert!(check_store(&env.dataroot()).is_empty());

    // Re-push of a pulled image keeps the registry's blobs and manifest digest.
    let back = format!("{}:back", reg.image("ext/multi"));
    env.ok(&["ctr-img", "tag", &name2, &back]);
    env.ok(&["ctr-img", "push", &back]);
    let r1 = json(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{back}"),
    ]));
    assert_eq!(
        r1["config"]["digest"],
        format!("sha256:{}", id_of(&env, &name2))
    );
}

#[test]
fn short_names_use_search_registries_in_order() {
    need!("docker-registry");
    let empty = Registry::start(Auth::Open, false);
    let full = Registry::start(Auth::Open, false);
    let a = Env::new();
    insecure(&a, &[full.host()]);
    let name = format!("{}:v1", full.image("team/tool"));
    let id = import_small(&a, &name, "search");
    a.ok(&["ctr-img", "push", &name]);
    let b = Env::new();
    write(
        &b.conf().join("registries.toml"),
        format!(
            "[registries.search]\nregistries = [\"{}\", \"{}\"]\n[registries.insecure]\nregistries = [\"{}\", \"{}\"]\n",
            empty.host(),
            full.host(),
            empty.host(),
            full.host()
        )
        .as_bytes(),
    );
    b.ok(&["ctr-img", "pull", "team/tool:v1"]);
    assert_eq!(id_of(&b, &name), id);
    let err = fail_line(&b, &["ctr-img", "pull", "team/absent:v1"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn htpasswd_basic_auth_login_logout() {
    need!("docker-registry", "htpasswd");
    let reg = Registry::start(Auth::Htpasswd, false);
    let env = Env::new();
    insecure(&env, &[reg.host()]);
    let name = format!("{}:v1", reg.image("sec/img"));
    import_small(&env, &name, "basic");
    let before = snapshot(&env.dataroot());

    // Anonymous: refused with a one-line error.
    let err = fail_line(&env, &["ctr-img", "push", &name]);
    assert!(err.contains("unauthorized"), "{err}");

    // Wrong password: refused, nothing saved.
    let out = env
        .cmd()
        .args(["login", &reg.host(), "-u", USER, "-p"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(b"wrong-password\n")?;
            c.wait_with_output()
        })
        .expect("login");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Unauthorized login attempt"));
    assert!(!env.conf().join("auth.json").exists());

    // Right password: verified, then saved 0600 in Docker's format.
    let login = |env: &Env| {
        env.cmd()
            .args(["login", &reg.host(), "-u", USER, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().expect("stdin").write_all(PASS.as_bytes())?;
                c.wait_with_output()
            })
            .expect("login")
    };
    let out = login(&env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Login Succeeded"
    );
    assert_no_secret(&out);
    let auth = env.conf().join("auth.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&auth).expect("auth").permissions().mode() & 0o777,
        0o600
    );
    let v = json(&std::fs::read_to_string(&auth).expect("read"));
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    assert_eq!(v["auths"][reg.host()]["auth"], b64);

    // Login with the saved credentials.
    let out = env.run(&["login", &reg.host()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeed with AuthFile"));

    let out = env.run(&["ctr-img", "push", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&out);
    let b = Env::new();
    insecure(&b, &[reg.host()]);
    std::fs::copy(&auth, b.conf().join("auth.json")).expect("copy");
    let out = b.run(&["-D", "ctr-img", "pull", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&out);
    assert!(check_store(&b.dataroot()).is_empty());

    // Logout: removed; a second logout says not logged in.
    assert_eq!(
        env.ok(&["logout", &reg.host()]).trim(),
        format!("Removed authentication for {}", reg.host())
    );
    let out = env.run(&["logout", &reg.host()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Not logged in registry"));
    let c = Env::new();
    insecure(&c, &[reg.host()]);
    let before_c = snapshot(&c.dataroot());
    let err = fail_line(&c, &["ctr-img", "pull", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    assert_eq!(snapshot(&c.dataroot()), before_c);
    assert_eq!(env.ok(&["logout", "-a"]).trim(), "Removed authentications");
    let _ = before;
}

#[test]
fn tls_registry_with_generated_ca_in_certs_d() {
    need!("docker-registry", "openssl", "skopeo");
    let reg = Registry::start(Auth::Open, true);
    let env = Env::new();
    let name = format!("{}:v1", reg.image("tls/img"));
    let id = import_small(&env, &name, "tls");
    // Without the CA: a one-line TLS error.
    let err = fail_line(&env, &["ctr-img", "push", &name]);
    assert!(err.contains("TLS"), "{err}");
    // With the CA in certs.d/<host>/ca.crt: verified TLS.
    let certs = env.conf().join("certs.d").join(reg.host());
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(reg.tls.as_ref().expect("ca"), certs.join("ca.crt")).expect("copy");
    env.ok(&["ctr-img", "push", &name]);
    let certdir = certs.display().to_string();
    let raw = json(&skopeo_ok(&[
        "inspect",
        "--cert-dir",
        &certdir,
        "--raw",
        &format!("docker://{name}"),
    ]));
    assert_eq!(raw["config"]["digest"], format!("sha256:{id}"));
    let b = Env::new();
    let bcerts = b.conf().join("certs.d").join(reg.host());
    std::fs::create_dir_all(&bcerts).expect("mkdir");
    std::fs::copy(certs.join("ca.crt"), bcerts.join("ca.crt")).expect("copy");
    b.ok(&["ctr-img", "pull", &name]);
    assert_eq!(id_of(&b, &name), id);
    // Marked insecure, it works without the CA too.
    let c = Env::new();
    insecure(&c, &[reg.host()]);
    c.ok(&["ctr-img", "pull", &name]);
    let _ = &reg.dir;
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP server for the token service and hostile registries.

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

type Handler = dyn Fn(&Request) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

/// What a server saw: (method, path, Authorization header).
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

struct Server {
    port: u16,
    log: Seen,
}

fn serve(handler: Arc<Handler>) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let h = handler.clone();
            let log = log2.clone();
            std::thread::spawn(move || {
                let _ = handle(s, &*h, &log);
            });
        }
    });
    Server { port, log }
}

fn handle(
    s: TcpStream,
    h: &Handler,
    log: &Mutex<Vec<(String, String, Option<String>)>>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l)?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if path.contains("stall-upload") {
        // Take the request, never read its body (the connection stays open).
        log.lock()
            .expect("log")
            .push((method, path, headers.get("authorization").cloned()));
        std::thread::sleep(Duration::from_secs(40));
        return Ok(());
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    log.lock().expect("log").push((
        method.clone(),
        path.clone(),
        headers.get("authorization").cloned(),
    ));
    let req = Request {
        method,
        path,
        headers,
    };
    let (status, hs, body) = h(&req);
    let mut w = s;
    let slow = hs.iter().any(|(k, _)| k == "X-Test-Slow");
    let stall = hs.iter().any(|(k, _)| k == "X-Test-Stall");
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in hs {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.flush()?;
    if stall {
        // Headers, then silence (the connection stays open).
        std::thread::sleep(Duration::from_secs(40));
        return Ok(());
    }
    if req.method != "HEAD" {
        if slow {
            for c in body.chunks(16) {
                w.write_all(c)?;
                w.flush()?;
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            w.write_all(&body)?;
        }
    }
    w.flush()
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A token service issuing RS256 JWTs (signed with openssl) with an x5c chain.
fn token_service(dir: &Path) -> (Server, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "token.key",
            "-out",
            "token.crt",
            "-days",
            "2",
            "-subj",
            "/CN=token-issuer",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-in",
            "token.crt",
            "-outform",
            "DER",
            "-out",
            "token.der",
        ],
    );
    let der = std::fs::read(dir.join("token.der")).expect("der");
    let key = dir.join("token.key");
    let x5c = base64::engine::general_purpose::STANDARD.encode(der);
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    );
    let handler: Arc<Handler> = Arc::new(move |req: &Request| {
        if req.headers.get("authorization") != Some(&good) {
            return (401, vec![], b"{}".to_vec());
        }
        let url = reqwest::Url::parse(&format!("http://x{}", req.path)).expect("url");
        let mut access = vec![];
        for (k, v) in url.query_pairs() {
            if k == "scope" {
                let p: Vec<&str> = v.split(':').collect();
                if p.len() == 3 {
                    let actions: Vec<&str> = p[2].split(',').collect();
                    access
                        .push(serde_json::json!({"type": p[0], "name": p[1], "actions": actions}));
                }
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
        let claims = serde_json::json!({"iss": "test-issuer", "sub": USER, "aud": "test-registry",
            "exp": now + 600, "nbf": now - 60, "iat": now - 60, "jti": format!("{now}{}", access.len()), "access": access});
        let signing = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut c = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(signing.as_bytes())
            .expect("write");
        let out = c.wait_with_output().expect("sign");
        let token = format!("{signing}.{}", b64url(&out.stdout));
        let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
        (
            200,
            vec![("Content-Type".into(), "application/json".into())],
            body.into_bytes(),
        )
    });
    (serve(handler), dir.join("token.crt"))
}

#[test]
fn bearer_token_auth_against_a_token_service() {
    need!("docker-registry", "openssl");
    let t = tempfile::tempdir().expect("tmp");
    let (ts, cert) = token_service(t.path());
    let realm = format!("http://127.0.0.1:{}/token", ts.port);
    let reg = Registry::start(Auth::Token { realm, cert }, false);
    let env = Env::new();
    insecure(&env, &[reg.host()]);
    let name = format!("{}:v1", reg.image("tok/img"));
    let id = import_small(&env, &name, "token");
    let err = fail_line(&env, &["ctr-img", "push", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    let out = env
        .cmd()
        .args(["login", &reg.host(), "-u", USER, "-p"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(PASS.as_bytes())?;
            c.wait_with_output()
        })
        .expect("login");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&out);
    let n_before = ts.log.lock().expect("log").len();
    let out = env.run(&["ctr-img", "push", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One token per scope set, reused for every request of the push.
    let tokens = ts.log.lock().expect("log").len() - n_before;
    assert!(tokens <= 2, "{tokens} token requests");
    let b = Env::new();
    insecure(&b, &[reg.host()]);
    std::fs::copy(env.conf().join("auth.json"), b.conf().join("auth.json")).expect("copy");
    b.ok(&["ctr-img", "pull", &name]);
    assert_eq!(id_of(&b, &name), id);
    let scopes: Vec<String> = ts
        .log
        .lock()
        .expect("log")
        .iter()
        .map(|e| e.1.clone())
        .collect();
    assert!(
        scopes
            .iter()
            .any(|s| s.contains("scope=repository%3Atok%2Fimg%3Apull%2Cpush")),
        "{scopes:?}"
    );
}

/// A registry serving one image with whatever `tamper` does to it.
struct Fake {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
}

fn fake_image() -> Fake {
    let tar = small_rootfs("fake");
    let layer = gz(&tar);
    let cfg = serde_json::json!({"architecture": host_arch(), "os": "linux", "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&tar))]}});
    let config = serde_json::to_vec(&cfg).expect("cfg");
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": format!("sha256:{}", sha256_hex(&config))},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": format!("sha256:{}", sha256_hex(&layer))}]});
    Fake {
        manifest: serde_json::to_vec(&m).expect("m"),
        config,
        layer,
    }
}

fn fake_registry(f: Fake, mode: &'static str, other_port: u16) -> Server {
    let f = Arc::new(f);
    let handler: Arc<Handler> = Arc::new(move |req: &Request| {
        let basic = (
            401,
            vec![(
                "WWW-Authenticate".to_string(),
                "Basic realm=\"x\"".to_string(),
            )],
            vec![],
        );
        if !req.headers.contains_key("authorization") {
            return basic;
        }
        let p = req.path.as_str();
        if p == "/v2/" {
            return (200, vec![], b"{}".to_vec());
        }
        if p.contains("/manifests/") {
            let body = if mode == "huge" {
                let mut v = f.manifest.clone();
                v.truncate(v.len() - 1);
                v.extend(std::iter::repeat_n(b' ', 5 * 1024 * 1024));
                v.push(b'}');
                v
            } else {
                f.manifest.clone()
            };
            return (
                200,
                vec![(
                    "Content-Type".into(),
                    "application/vnd.docker.distribution.manifest.v2+json".into(),
                )],
                body,
            );
        }
        let cd = format!("sha256:{}", sha256_hex(&f.config));
        if p.ends_with(&cd) {
            return (200, vec![], f.config.clone());
        }
        if p.contains("/blobs/") {
            // The layer, with a header telling the server how to send it.
            let flagged = |h: &str| (200, vec![(h.to_string(), "1".to_string())], f.layer.clone());
            match mode {
                "mismatch" => {
                    let mut bad = f.layer.clone();
                    let n = bad.len();
                    bad[n / 2] ^= 0xff;
                    return (200, vec![], bad);
                }
                "garbage" => {
                    // Not gzip at all, of the right length.
                    return (200, vec![], vec![b'x'; f.layer.len()]);
                }
                "stall-body" => return flagged("X-Test-Stall"),
                "stall-head" => {
                    // Accept the request, answer nothing.
                    std::thread::sleep(Duration::from_secs(40));
                    return (200, vec![], f.layer.clone());
                }
                "slow" => return flagged("X-Test-Slow"),
                "redirect" => {
                    return (
                        307,
                        vec![(
                            "Location".into(),
                            format!("http://localhost:{other_port}/storage/blob"),
                        )],
                        vec![],
                    );
                }
                _ => return (200, vec![], f.layer.clone()),
            }
        }
        (404, vec![], vec![])
    });
    serve(handler)
}

fn logged_in_env(host: &str) -> Env {
    let env = Env::new();
    insecure(&env, &[host.to_string()]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    write(
        &env.conf().join("auth.json"),
        format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{b64}\"}}}}}}").as_bytes(),
    );
    env
}

#[test]
fn hostile_registries_fail_cleanly_and_leak_nothing() {
    // Digest mismatch served by a broken registry.
    let s = fake_registry(fake_image(), "mismatch", 0);
    let host = format!("127.0.0.1:{}", s.port);
    let env = logged_in_env(&host);
    env.ok(&["ctr-img", "images"]);
    let before = snapshot(&env.dataroot());
    let layer_digest = format!("sha256:{}", sha256_hex(&fake_image().layer));
    let err = fail_line(&env, &["ctr-img", "pull", &format!("{host}/x/y:t")]);
    // The bytes do not decompress, but the cause to report is that they are not the blob.
    assert!(
        err.contains("digest mismatch") && err.contains(&layer_digest),
        "{err}"
    );
    assert!(!err.contains(PASS));
    env.ok(&["ctr-img", "images"]);
    assert_eq!(snapshot(&env.dataroot()), before, "store unchanged");

    // Bytes that are not gzip at all: the same.
    let s = fake_registry(fake_image(), "garbage", 0);
    let host = format!("127.0.0.1:{}", s.port);
    let env = logged_in_env(&host);
    env.ok(&["ctr-img", "images"]);
    let before = snapshot(&env.dataroot());
    let err = fail_line(&env, &["ctr-img", "pull", &format!("{host}/x/y:t")]);
    assert!(
        err.contains("digest mismatch") && err.contains(&layer_digest),
        "{err}"
    );
    assert_eq!(snapshot(&env.dataroot()), before, "store unchanged");

    // A manifest larger than 4 MiB.
    let s = fake_registry(fake_image(), "huge", 0);
    let host = format!("127.0.0.1:{}", s.port);
    let env = logged_in_env(&host);
    let err = fail_line(&env, &["ctr-img", "pull", &format!("{host}/x/y:t")]);
    assert!(err.contains("larger than the limit"), "{err}");
    assert!(env.index()["images"]
        .as_array()
        .is_none_or(|a| a.is_empty()));

    // A redirect to another host: that host gets no credentials. It serves the right
    // blob, so the pull succeeds.
    let f = fake_image();
    let layer = f.layer.clone();
    let storage = serve(Arc::new(move |_r: &Request| (200, vec![], layer.clone())));
    let s = fake_registry(f, "redirect", storage.port);
    let host = format!("127.0.0.1:{}", s.port);
    let env = logged_in_env(&host);
    let out = env.run(&["ctr-img", "pull", &format!("{host}/x/y:t")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&out);
    let seen = storage.log.lock().expect("log").clone();
    assert!(!seen.is_empty(), "the blob was fetched from the other host");
    assert!(
        seen.iter().all(|(_, _, auth)| auth.is_none()),
        "credentials sent to another host: {seen:?}"
    );
    assert!(s
        .log
        .lock()
        .expect("log")
        .iter()
        .any(|(_, _, a)| a.is_some()));
    assert!(check_store(&env.dataroot()).is_empty());

    // Unreachable registry.
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    let env = logged_in_env(&host);
    let err = fail_line(&env, &["ctr-img", "pull", &format!("{host}/x/y:t")]);
    assert!(err.contains("cannot connect"), "{err}");
    let err = fail_line(&env, &["ctr-img", "push", &format!("{host}/x/y:t")]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn missing_manifest_and_wrong_password_are_one_line_errors() {
    need!("docker-registry", "htpasswd");
    let reg = Registry::start(Auth::Open, false);
    let env = Env::new();
    insecure(&env, &[reg.host()]);
    env.ok(&["ctr-img", "images"]);
    let before = snapshot(&env.dataroot());
    let err = fail_line(
        &env,
        &["ctr-img", "pull", &format!("{}:nope", reg.image("no/such"))],
    );
    assert!(err.contains("not found"), "{err}");
    assert_eq!(snapshot(&env.dataroot()), before, "store unchanged");
    let sec = Registry::start(Auth::Htpasswd, false);
    let env = Env::new();
    insecure(&env, &[sec.host()]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong"));
    write(
        &env.conf().join("auth.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{b64}\"}}}}}}",
            sec.host()
        )
        .as_bytes(),
    );
    let err = fail_line(
        &env,
        &["ctr-img", "pull", &format!("{}:v1", sec.image("a/b"))],
    );
    assert!(
        err.contains("unauthorized") && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "{err}");
}

#[test]
fn manifest_lists_create_annotate_inspect_push() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start(Auth::Open, false);
    let env = Env::new();
    insecure(&env, &[reg.host()]);
    let a = format!("{}:amd", reg.image("ml/src"));
    let b = format!("{}:arm", reg.image("ml/src"));
    import_small(&env, &a, "one");
    import_small(&env, &b, "two");
    env.ok(&["ctr-img", "push", &a]);
    env.ok(&["ctr-img", "push", &b]);
    // Experimental only.
    let err = fail_line(&env, &["manifest", "create", "mylist", &a, &b]);
    assert!(err.contains("experimental"), "{err}");
    let id = env.ok(&["--experimental", "manifest", "create", "mylist", &a, &b]);
    assert_eq!(id.trim().len(), 64);
    let out = env.ok(&[
        "--experimental",
        "manifest",
        "annotate",
        "--arch",
        "arm64",
        "--variant",
        "v8",
        "--os",
        "linux",
        "mylist",
        &b,
    ]);
    assert_eq!(out.trim(), "Annotate manifest succeed");
    let text = env.ok(&["--experimental", "manifest", "inspect", "mylist"]);
    assert!(text.starts_with("{\n    \"schemaVersion\": 2,\n    \"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\",\n    \"manifests\": [\n        {\n            \"mediaType\""), "{text}");
    let v = json(&text);
    assert_eq!(v["manifests"][1]["platform"]["architecture"], "arm64");
    assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");
    // Push to another repository: the images are copied (mounted) there first.
    let dest = format!("{}:multi", reg.image("ml/dest"));
    let out = env.ok(&["--experimental", "manifest", "push", "mylist", &dest]);
    assert_eq!(out.trim(), "Push manifest list mylist succeed");
    let raw = json(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{dest}"),
    ]));
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(raw["manifests"].as_array().expect("list").len(), 2);
    let t = tempfile::tempdir().expect("tmp");
    skopeo_ok(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{dest}"),
        &format!("oci:{}", t.path().join("o").display()),
    ]);
}

/// Run and require failure (status 1): progress lines may come first ("Blob …"), then
/// exactly one error line. Returns the error line.
fn fail_line(env: &Env, args: &[&str]) -> String {
    let out = env.run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "isula-build {args:?} should fail: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.trim_end().lines().collect();
    let (last, rest) = lines.split_last().expect("an error line");
    for l in rest {
        assert!(
            l.starts_with("Blob ") || l.starts_with("Image is up to date"),
            "unexpected stderr line {l:?} in {err:?}"
        );
    }
    last.to_string()
}

#[test]
fn killed_pull_leaves_no_partial_image_and_a_retry_works() {
    let slow = fake_registry(fake_image(), "slow", 0);
    let host = format!("127.0.0.1:{}", slow.port);
    let env = logged_in_env(&host);
    env.ok(&["ctr-img", "images"]);
    let before = store_snapshot(&env);
    let mut child = env
        .cmd()
        .args(["ctr-img", "pull", &format!("{host}/x/y:t")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait until the layer is streaming, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && !slow.log.lock().expect("log").iter().any(|(_, p, _)| {
            p.contains("/blobs/") && !p.ends_with(&sha256_hex(&fake_image().config))
        })
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("kill");
    let _ = child.wait();
    // The next command cleans the dead pull's scratch space; no image appeared.
    env.ok(&["ctr-img", "images"]);
    assert_eq!(
        store_snapshot(&env),
        before,
        "store unchanged after the killed pull (the download cache aside)"
    );
    // A retry (here from a registry serving at full speed) starts clean and succeeds.
    let fast = fake_registry(fake_image(), "ok", 0);
    let host2 = format!("127.0.0.1:{}", fast.port);
    insecure(&env, &[host.clone(), host2.clone()]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    write(
        &env.conf().join("auth.json"),
        format!("{{\"auths\":{{\"{host2}\":{{\"auth\":\"{b64}\"}}}}}}").as_bytes(),
    );
    env.ok(&["ctr-img", "pull", &format!("{host2}/x/y:t")]);
    assert!(check_store(&env.dataroot()).is_empty());
}

#[test]
fn build_pulls_a_missing_base_and_pushes_with_output_docker() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start(Auth::Open, false);
    let a = Env::new();
    insecure(&a, &[reg.host()]);
    let base = format!("{}:v1", reg.image("test/base"));
    import_small(&a, &base, "frombase");
    a.ok(&["ctr-img", "push", &base]);
    // A second store that has never seen the base image builds FROM it: the build pulls it.
    let b = Env::new();
    insecure(&b, &[reg.host()]);
    let ctx = b.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nCOPY f /f\n")).unwrap();
    std::fs::write(ctx.join("f"), "built").unwrap();
    let dest = format!("{}:built", reg.image("test/out"));
    let out = b.ok(&[
        "ctr-img",
        "build",
        "-o",
        &format!("docker://{dest}"),
        ctx.to_str().unwrap(),
    ]);
    assert!(
        out.contains(&format!("Push success with image: {dest}")),
        "{out}"
    );
    assert!(check_store(&b.dataroot()).is_empty());
    let insp = json(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{dest}"),
    ]));
    assert_eq!(insp["Layers"].as_array().unwrap().len(), 2, "{insp}");
}

/// The gzip records of every layer of a store (digest of the compressed form).
fn gzip_records(env: &Env) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(env.dataroot().join("layers")).unwrap() {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.unwrap().path().join("meta.json")).unwrap())
                .unwrap();
        if let Some(d) = meta["gzip"]["digest"].as_str() {
            out.push(d.to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn static_builds_push_to_the_same_manifest_and_compress_once() {
    need!("docker-registry", "skopeo");
    let reg = Registry::start(Auth::Open, false);
    let mut digests = Vec::new();
    let mut ids = Vec::new();
    let big: Vec<u8> = (0..3_500_000u32).map(|i| (i * 31 % 253) as u8).collect();
    for (i, repo) in ["static/one", "static/two"].iter().enumerate() {
        let env = Env::new();
        insecure(&env, &[reg.host()]);
        let ctx = env.path("ctx");
        std::fs::create_dir_all(ctx.join("d")).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /app/\n").unwrap();
        std::fs::write(ctx.join("d/big.bin"), &big).unwrap();
        std::fs::write(ctx.join("small"), "small").unwrap();
        let name = format!("{}:v1", reg.image(repo));
        let out = env.ok(&[
            "ctr-img",
            "build",
            "--build-static",
            "build-time=2021-01-02 03:04:05",
            "--tag",
            &name,
            ctx.to_str().unwrap(),
        ]);
        assert!(out.contains("Build success"), "{out}");
        ids.push(id_of(&env, &name));
        // Built layers are stored uncompressed: nothing recorded before the first push.
        assert!(gzip_records(&env).is_empty());
        env.ok(&["ctr-img", "push", &name]);
        let raw = skopeo_ok(&[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{name}"),
        ]);
        let m = json(&raw);
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        // The gzip form pushed is the one recorded in the layer's meta.
        let recorded = gzip_records(&env);
        assert_eq!(
            recorded,
            vec![m["layers"][0]["digest"].as_str().unwrap().to_string()]
        );
        // A second push compresses nothing (the record gives the digest, HEAD finds it) and
        // gives the same manifest.
        let out = env.run(&["ctr-img", "push", &name]);
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("already exists") && !err.contains("pushed"),
            "{err}"
        );
        let again = skopeo_ok(&[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{name}"),
        ]);
        assert_eq!(raw, again);
        let insp = json(&skopeo_ok(&[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ]));
        digests.push(insp["Digest"].as_str().unwrap().to_string());
        // skopeo unpacks what we pushed (the multi-member gzip stream included).
        skopeo_ok(&[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:x", env.path(&format!("oci-{i}")).display()),
        ]);
        assert!(
            check_store(&env.dataroot()).is_empty(),
            "{:?}",
            check_store(&env.dataroot())
        );
    }
    assert_eq!(
        ids[0], ids[1],
        "static builds in two stores give one image ID"
    );
    assert_eq!(digests[0], digests[1], "and push to one manifest");
}

// ---------------------------------------------------------------------------------------
// Stalled registries, interrupted and resumed pulls.

/// Run `cmd`, killing it (and failing) if it runs longer than `limit`.
fn run_with_deadline(mut cmd: Command, limit: Duration) -> (std::process::Output, Duration) {
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    while child.try_wait().expect("wait").is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().expect("output"), t0.elapsed())
}

#[test]
fn stalled_registries_time_out_with_one_line_errors() {
    let layer_digest = format!("sha256:{}", sha256_hex(&fake_image().layer));
    for mode in ["stall-body", "stall-head"] {
        let s = fake_registry(fake_image(), mode, 0);
        let host = format!("127.0.0.1:{}", s.port);
        let env = logged_in_env(&host);
        env.ok(&["ctr-img", "images"]);
        let before = snapshot(&env.dataroot());
        let mut c = env.cmd();
        c.env("ISULA_BUILD_REGISTRY_READ_TIMEOUT", "2").args([
            "ctr-img",
            "pull",
            &format!("{host}/x/y:t"),
        ]);
        let (out, took) = run_with_deadline(c, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        let last = err.trim_end().lines().last().unwrap_or("");
        assert!(
            last.contains(&format!("registry {host}"))
                && last.contains("no data for 2s")
                && last.contains(&layer_digest),
            "{mode}: {err}"
        );
        assert!(
            err.trim_end()
                .lines()
                .rev()
                .skip(1)
                .all(|l| l.starts_with("Blob ")),
            "{mode}: {err}"
        );
        assert!(took < Duration::from_secs(20), "{mode}: took {took:?}");
        assert_eq!(snapshot(&env.dataroot()), before, "{mode}: store unchanged");
    }
    // A bad value is a one-line error.
    let s = fake_registry(fake_image(), "ok", 0);
    let host = format!("127.0.0.1:{}", s.port);
    let env = logged_in_env(&host);
    let out = env
        .cmd()
        .env("ISULA_BUILD_REGISTRY_READ_TIMEOUT", "soon")
        .args(["ctr-img", "pull", &format!("{host}/x/y:t")])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("ISULA_BUILD_REGISTRY_READ_TIMEOUT"), "{err}");
}

#[test]
fn a_registry_that_stops_reading_an_upload_times_out() {
    // Only the upload's own session: blobs are missing, uploads start at a URL whose
    // PUT the server takes but never reads.
    let handler: Arc<Handler> = Arc::new(|req: &Request| match req.method.as_str() {
        "GET" if req.path == "/v2/" => (200, vec![], b"{}".to_vec()),
        "POST" if req.path.ends_with("/blobs/uploads/") => (
            202,
            vec![(
                "Location".into(),
                "/v2/x/y/blobs/uploads/stall-upload".into(),
            )],
            vec![],
        ),
        _ => (404, vec![], vec![]),
    });
    let s = serve(handler);
    let host = format!("127.0.0.1:{}", s.port);
    let env = Env::new();
    insecure(&env, std::slice::from_ref(&host));
    // More than the socket buffers on both ends hold, and incompressible.
    let tar = env.path("big.tar");
    write(
        &tar,
        &make_tar(&[E::File("big", &noise(7, 24 << 20), 0o644)]),
    );
    let name = format!("{host}/x/y:t");
    env.import(&tar, &name);
    let before = snapshot(&env.dataroot());
    let mut c = env.cmd();
    c.env("ISULA_BUILD_REGISTRY_READ_TIMEOUT", "2")
        .args(["ctr-img", "push", &name]);
    let (out, took) = run_with_deadline(c, Duration::from_secs(35));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.trim_end().lines().last().unwrap_or("");
    assert!(
        last.contains(&format!("registry {host}")) && last.contains("no data for 2s"),
        "{err}"
    );
    assert!(
        s.log
            .lock()
            .expect("log")
            .iter()
            .any(|(m, p, _)| m == "PUT" && p.contains("stall-upload")),
        "the upload was not reached"
    );
    assert!(took < Duration::from_secs(25), "took {took:?}");
    // The layer's meta may now record its gzip form (a cache push keeps even when the
    // upload fails); nothing else changes.
    let without_metas = |snap: Vec<(String, String)>| -> Vec<(String, String)> {
        snap.into_iter()
            .filter(|(p, _)| !(p.starts_with("layers/") && p.ends_with("/meta.json")))
            .collect()
    };
    assert_eq!(
        without_metas(snapshot(&env.dataroot())),
        without_metas(before),
        "store unchanged"
    );
}

#[test]
fn pulls_use_mirrors_first_then_the_location_and_store_the_name_asked_for() {
    need!("docker-registry");
    let mirror = Registry::start(Auth::Open, false);
    let origin = Registry::start(Auth::Open, false);
    let closed = format!("127.0.0.1:{}", free_port());
    let a = Env::new();
    insecure(&a, &[mirror.host(), origin.host()]);
    // What the mirror has (under its own path), and what only the origin has.
    let on_mirror = import_small(&a, &format!("{}/hub/app:v1", mirror.host()), "mirrored");
    a.ok(&["ctr-img", "push", &format!("{}/hub/app:v1", mirror.host())]);
    let only_origin = import_small(&a, &origin.image("app:v2"), "origin-only");
    a.ok(&["ctr-img", "push", &origin.image("app:v2")]);
    a.ok(&[
        "ctr-img",
        "tag",
        &origin.image("app:v2"),
        &origin.image("team/app:v3"),
    ]);
    a.ok(&["ctr-img", "push", &origin.image("team/app:v3")]);

    let b = Env::new();
    let m = mirror.host();
    write(
        &b.conf().join("registries.toml"),
        format!(
            "[[registry]]\nprefix = \"{closed}\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"{m}/hub\"\ninsecure = true\n\
             [[registry]]\nprefix = \"{o}\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"{m}/hub\"\ninsecure = true\n\
             [[registry]]\nprefix = \"example.invalid/team\"\nlocation = \"{o}/team\"\n\
             [[registry]]\nprefix = \"{closed}/pinned\"\nmirror-by-digest-only = true\n\
             [[registry.mirror]]\nlocation = \"{m}/hub\"\ninsecure = true\n",
            o = origin.host()
        )
        .as_bytes(),
    );
    // The origin is down: the mirror serves it, stored under the name asked for.
    let name = format!("{closed}/app:v1");
    b.ok(&["ctr-img", "pull", &name]);
    assert_eq!(id_of(&b, &name), on_mirror);
    // The mirror lacks it: the location serves it.
    b.ok(&["ctr-img", "pull", &origin.image("app:v2")]);
    assert_eq!(id_of(&b, &origin.image("app:v2")), only_origin);
    // A moved namespace.
    b.ok(&["ctr-img", "pull", "example.invalid/team/app:v3"]);
    assert_eq!(id_of(&b, "example.invalid/team/app:v3"), only_origin);
    // Nowhere: one line naming every place tried, store unchanged.
    let before = snapshot(&b.dataroot());
    let err = fail_line(&b, &["ctr-img", "pull", &format!("{closed}/app:v9")]);
    assert!(
        err.contains("not pulled from any mirror or its location")
            && err.contains(&format!("mirror {m}/hub/app:v9"))
            && err.contains(&format!("location {closed}/app:v9")),
        "{err}"
    );
    assert_eq!(snapshot(&b.dataroot()), before);
    // Mirrors only for digests there: a tag goes to the (closed) location alone.
    let err = fail_line(&b, &["ctr-img", "pull", &format!("{closed}/pinned/app:v1")]);
    assert!(
        err.contains(&closed) && !err.contains(&m) && !err.contains("mirror"),
        "{err}"
    );
    // FROM in a build takes the same path.
    let ctx = b.path("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    write(
        &ctx.join("Dockerfile"),
        format!("FROM {closed}/app:v1\n").as_bytes(),
    );
    b.ok(&["ctr-img", "rm", &name]);
    b.ok(&[
        "ctr-img",
        "build",
        "-t",
        "from-mirror:1",
        ctx.to_str().expect("utf8"),
    ]);
    assert_eq!(id_of(&b, &name), on_mirror);
}

#[test]
fn a_partial_download_continues_with_a_range_request_to_docker_registry() {
    need!("docker-registry");
    let reg = Registry::start(Auth::Open, false);
    let name = reg.image("resume/app:v1");
    let a = Env::new();
    insecure(&a, &[reg.host()]);
    let tar = a.path("big.tar");
    write(
        &tar,
        &make_tar(&[E::File("big", &noise(11, 3 << 20), 0o644)]),
    );
    let id = a.import(&tar, &name);
    a.ok(&["ctr-img", "push", &name]);
    // The layer blob as the registry serves it (a pull stores it byte for byte).
    let b = Env::new();
    insecure(&b, &[reg.host()]);
    b.ok(&["ctr-img", "pull", &name]);
    let chain = b.index()["images"][0]["layers"][0]
        .as_str()
        .and_then(|c| c.strip_prefix("sha256:"))
        .expect("layer")
        .to_string();
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.dataroot().join("layers").join(&chain).join("meta.json")).expect("meta"),
    )
    .expect("meta json");
    let digest = meta["blob"].as_str().expect("blob").to_string();
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    let blob = std::fs::read(b.dataroot().join("blobs/sha256").join(hex)).expect("blob");
    // What an interrupted pull leaves: the first part of the blob.
    let c = Env::new();
    insecure(&c, &[reg.host()]);
    let cache = c.dataroot().join("registry/downloads");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let have = blob.len() / 3;
    write(&cache.join(format!("{hex}.part")), &blob[..have]);
    let before = reg.access_log().len();
    c.ok(&["ctr-img", "pull", &name]);
    assert_eq!(id_of(&c, &name), id);
    assert!(check_store(&c.dataroot()).is_empty());
    let log = reg.access_log();
    let gets: Vec<&String> = log[before..]
        .iter()
        .filter(|l| l.contains(&format!("GET /v2/resume/app/blobs/{digest}")))
        .collect();
    // One request, answered 206 with the rest of the blob only.
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert!(
        gets[0].contains(&format!("\" 206 {} ", blob.len() - have)),
        "{gets:?}"
    );
    assert!(downloads(&c).is_empty(), "{:?}", downloads(&c));
}

#[test]
fn policy_json_decides_which_images_may_come_in() {
    need!("docker-registry");
    let reg = Registry::start(Auth::Open, false);
    let a = Env::new();
    insecure(&a, &[reg.host()]);
    let id = import_small(&a, &reg.image("ok/app:1"), "policy");
    for repo in ["ok/app:1", "secret/app:1", "signed/app:1"] {
        a.ok(&["ctr-img", "tag", &reg.image("ok/app:1"), &reg.image(repo)]);
        a.ok(&["ctr-img", "push", &reg.image(repo)]);
    }
    let trusted = a.path("trusted");
    std::fs::create_dir_all(&trusted).expect("dir");
    let (good_tar, other_tar) = (trusted.join("app.tar"), a.path("app.tar"));
    for t in [&good_tar, &other_tar] {
        a.ok(&[
            "ctr-img",
            "save",
            &reg.image("ok/app:1"),
            "-o",
            t.to_str().expect("utf8"),
        ]);
    }

    let b = Env::new();
    insecure(&b, &[reg.host()]);
    let h = reg.host();
    write(
        &b.conf().join("policy.json"),
        format!(
            r#"{{"default": [{{"type": "reject"}}],
                "transports": {{
                    "docker": {{
                        "{h}/ok": [{{"type": "insecureAcceptAnything"}}],
                        "{h}/signed": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}}]
                    }},
                    "docker-archive": {{"{}": [{{"type": "insecureAcceptAnything"}}]}}
                }}}}"#,
            trusted.canonicalize().expect("trusted").display()
        )
        .as_bytes(),
    );
    b.ok(&["ctr-img", "pull", &reg.image("ok/app:1")]);
    assert_eq!(id_of(&b, &reg.image("ok/app:1")), id);
    b.ok(&["ctr-img", "load", "-i", good_tar.to_str().expect("utf8")]);
    let before = snapshot(&b.dataroot());
    let err = fail_line(&b, &["ctr-img", "pull", &reg.image("secret/app:1")]);
    assert!(
        err.contains(&format!(
            "Source image rejected: Running image docker://{}:1 is rejected by policy.",
            reg.image("secret/app")
        )),
        "{err}"
    );
    let err = fail_line(&b, &["ctr-img", "pull", &reg.image("signed/app:1")]);
    assert!(
        err.contains("signedBy") && err.contains("does not verify signatures"),
        "{err}"
    );
    let err = fail_line(
        &b,
        &["ctr-img", "load", "-i", other_tar.to_str().expect("utf8")],
    );
    assert!(
        err.contains("docker-archive:") && err.contains("rejected by policy"),
        "{err}"
    );
    let rootfs = b.path("rootfs.tar");
    write(&rootfs, &small_rootfs("policy-import"));
    let err = fail_line(
        &b,
        &["ctr-img", "import", rootfs.to_str().expect("utf8"), "imp:1"],
    );
    assert!(
        err.contains("tarball:") && err.contains("rejected by policy"),
        "{err}"
    );
    let ctx = b.path("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    write(
        &ctx.join("Dockerfile"),
        format!("FROM {}\n", reg.image("secret/app:1")).as_bytes(),
    );
    let err = fail_line(
        &b,
        &["ctr-img", "build", "-t", "x:1", ctx.to_str().expect("utf8")],
    );
    assert!(err.contains("rejected by policy"), "{err}");
    assert_eq!(snapshot(&b.dataroot()), before, "store unchanged");
}

/// Incompressible bytes.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An image of several layers (gzip of one file of `sizes[i]` random bytes each).
struct Multi {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
}

impl Multi {
    fn new(sizes: &[usize]) -> Multi {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            let data = noise(i as u64 + 1, *n);
            let name = format!("f{i}");
            let tar = make_tar(&[E::File(&name, &data, 0o644)]);
            diff_ids.push(format!("sha256:{}", sha256_hex(&tar)));
            layers.push(gz(&tar));
        }
        let cfg = serde_json::json!({"architecture": host_arch(), "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let config = serde_json::to_vec(&cfg).expect("cfg");
        let descs: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| {
                serde_json::json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": l.len(), "digest": format!("sha256:{}", sha256_hex(l))})
            })
            .collect();
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": format!("sha256:{}", sha256_hex(&config))},
            "layers": descs});
        Multi {
            manifest: serde_json::to_vec(&m).expect("m"),
            config,
            layers,
        }
    }
    fn digest(&self, i: usize) -> String {
        format!("sha256:{}", sha256_hex(&self.layers[i]))
    }
    fn total(&self) -> u64 {
        self.layers.iter().map(|l| l.len() as u64).sum()
    }
}

/// What an anonymous fake registry serving a [`Multi`] saw of layer requests.
#[derive(Default)]
struct BlobLog {
    /// Layer body bytes it answered with.
    served: u64,
    /// (digest, Range header, status) of every layer GET.
    gets: Vec<(String, Option<String>, u16)>,
}

/// An anonymous registry serving `img` as `x/y:t`; `slow`: 16 bytes per 50 ms; `ranges`:
/// answers `Range: bytes=N-` with 206 (else ignores it and answers 200).
fn multi_registry(img: Arc<Multi>, slow: bool, ranges: bool, log: Arc<Mutex<BlobLog>>) -> Server {
    let handler: Arc<Handler> = Arc::new(move |req: &Request| {
        let p = req.path.as_str();
        if p == "/v2/" {
            return (200, vec![], b"{}".to_vec());
        }
        if p.contains("/manifests/") {
            let ct = "application/vnd.docker.distribution.manifest.v2+json";
            return (
                200,
                vec![("Content-Type".into(), ct.into())],
                img.manifest.clone(),
            );
        }
        if p.ends_with(&sha256_hex(&img.config)) {
            return (200, vec![], img.config.clone());
        }
        for (i, l) in img.layers.iter().enumerate() {
            let d = img.digest(i);
            if !p.ends_with(&d) {
                continue;
            }
            let range = req.headers.get("range").cloned();
            let from = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| ranges && *n < l.len());
            let mut hs = vec![];
            if slow {
                hs.push(("X-Test-Slow".to_string(), "1".to_string()));
            }
            let (status, body) = match from {
                Some(n) => {
                    hs.push((
                        "Content-Range".into(),
                        format!("bytes {n}-{}/{}", l.len() - 1, l.len()),
                    ));
                    (206, l[n..].to_vec())
                }
                None => (200, l.clone()),
            };
            let mut g = log.lock().expect("log");
            g.served += body.len() as u64;
            g.gets.push((d, range, status));
            return (status, hs, body);
        }
        (404, vec![], vec![])
    });
    serve(handler)
}

/// Files of the download cache: name → size.
fn downloads(env: &Env) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(env.dataroot().join("registry/downloads"))
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    (n, e.metadata().map(|m| m.len()).unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The store without the download cache.
fn store_snapshot(env: &Env) -> Vec<(String, String)> {
    snapshot(&env.dataroot())
        .into_iter()
        .filter(|(p, _)| !p.starts_with("registry/downloads/"))
        .collect()
}

/// Start a pull from the slow `host` and kill -9 it once every layer has streamed a while
/// (the small first layer has finished by then).
fn kill_slow_pull(env: &Env, host: &str, img: &Multi, log: &Arc<Mutex<BlobLog>>) {
    let mut child = env
        .cmd()
        .args(["ctr-img", "pull", &format!("{host}/x/y:t")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && log.lock().expect("log").gets.len() < img.layers.len() {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("kill");
    let _ = child.wait();
}

#[test]
fn killed_pull_resumes_with_range_requests_and_reuses_finished_layers() {
    // Layer 0 is small (done before the kill); 1 and 2 take ~25 s at the slow rate.
    let img = Arc::new(Multi::new(&[64, 8000, 8000]));
    let total = img.total();
    for ranges in [true, false] {
        let slow_log = Arc::new(Mutex::new(BlobLog::default()));
        let slow = multi_registry(img.clone(), true, ranges, slow_log.clone());
        let host = format!("127.0.0.1:{}", slow.port);
        let env = Env::new();
        insecure(&env, std::slice::from_ref(&host));
        env.ok(&["ctr-img", "images"]);
        let before = store_snapshot(&env);
        kill_slow_pull(&env, &host, &img, &slow_log);
        env.ok(&["ctr-img", "images"]);
        assert_eq!(store_snapshot(&env), before, "no partial image");
        // What the killed pull kept: layer 0 whole, the start of 1 and 2.
        let cached = downloads(&env);
        let hex = |i: usize| sha256_hex(&img.layers[i]);
        assert!(
            cached.contains(&(hex(0), img.layers[0].len() as u64)),
            "{cached:?}"
        );
        let part = |i: usize| {
            cached
                .iter()
                .find(|(n, _)| *n == format!("{}.part", hex(i)))
                .map(|e| e.1)
                .unwrap_or(0)
        };
        assert!(part(1) > 0 && part(2) > 0, "{cached:?}");
        assert!(part(1) < img.layers[1].len() as u64, "{cached:?}");
        // An abandoned download of two days ago is garbage; a young one is kept.
        let dl = env.dataroot().join("registry/downloads");
        let old = dl.join(format!("{}.part", "a".repeat(64)));
        let young = dl.join(format!("{}.part", "b".repeat(64)));
        write(&old, b"old bytes");
        write(&young, b"young bytes");
        let touched = Command::new("touch")
            .args(["-d", "2 days ago"])
            .arg(&old)
            .status()
            .expect("touch");
        assert!(touched.success());

        // The retry, from a registry at full speed.
        let fast_log = Arc::new(Mutex::new(BlobLog::default()));
        let fast = multi_registry(img.clone(), false, ranges, fast_log.clone());
        let host2 = format!("127.0.0.1:{}", fast.port);
        insecure(&env, &[host.clone(), host2.clone()]);
        env.ok(&["ctr-img", "pull", &format!("{host2}/x/y:t")]);
        assert!(check_store(&env.dataroot()).is_empty());
        let g = fast_log.lock().expect("log");
        // Layer 0 is not fetched again.
        assert!(
            g.gets.iter().all(|(d, _, _)| *d != img.digest(0)),
            "{:?}",
            g.gets
        );
        if ranges {
            // 1 and 2 continue where they stopped: only the missing bytes travel.
            assert_eq!(
                g.served,
                total - img.layers[0].len() as u64 - part(1) - part(2),
                "{:?}",
                g.gets
            );
            assert!(
                g.gets
                    .iter()
                    .filter(|(_, r, s)| r.is_some() && *s == 206)
                    .count()
                    == 2,
                "{:?}",
                g.gets
            );
        } else {
            // No range support: 1 and 2 come whole (the request asked for a range).
            assert_eq!(g.served, total - img.layers[0].len() as u64);
            assert!(g.gets.iter().all(|(_, r, s)| r.is_some() && *s == 200));
        }
        assert!(g.served < total);
        // The image's downloads are gone, so is the abandoned one; the young one stays.
        let left: Vec<String> = downloads(&env).into_iter().map(|e| e.0).collect();
        assert_eq!(left, vec![format!("{}.part", "b".repeat(64))]);
    }
}

/// A client certificate signed by the test CA in `d`: (client.cert, client.key).
fn make_client_cert(d: &Path) -> (PathBuf, PathBuf) {
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=isula-test-client",
        ],
    );
    write(
        &d.join("client-ext.cnf"),
        b"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.cert",
            "-days",
            "2",
            "-extfile",
            "client-ext.cnf",
        ],
    );
    (d.join("client.cert"), d.join("client.key"))
}

#[test]
fn tls_registry_requiring_client_certificates_from_certs_d() {
    need!("docker-registry", "openssl");
    let reg = Registry::start_with(Auth::Open, true, true);
    let (cert, key) = make_client_cert(reg.dir.path());
    let ca = reg.tls.clone().expect("ca");
    let certs_for = |env: &Env, client: bool| {
        let d = env.conf().join("certs.d").join(reg.host());
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::copy(&ca, d.join("ca.crt")).expect("copy");
        if client {
            std::fs::copy(&cert, d.join("client.cert")).expect("copy");
            std::fs::copy(&key, d.join("client.key")).expect("copy");
        }
    };
    let env = Env::new();
    let name = format!("{}:v1", reg.image("mtls/img"));
    let id = import_small(&env, &name, "mtls");
    // The CA alone: the registry refuses the connection; one line that says why (its
    // alert, or under TLS 1.3 maybe only a closed connection).
    certs_for(&env, false);
    let err = fail_line(&env, &["ctr-img", "push", &name]);
    assert!(
        err.contains(&format!("registry {}", reg.host()))
            && err.contains(&format!(
                "NAME.cert and NAME.key in certs.d/{}/",
                reg.host()
            )),
        "{err}"
    );
    // With client.cert + client.key next to it: push and pull work.
    certs_for(&env, true);
    env.ok(&["ctr-img", "push", &name]);
    let b = Env::new();
    certs_for(&b, false);
    let before = snapshot(&b.dataroot());
    let err = fail_line(&b, &["ctr-img", "pull", &name]);
    assert!(err.contains("requires a client certificate"), "{err}");
    assert_eq!(snapshot(&b.dataroot()), before, "store unchanged");
    certs_for(&b, true);
    b.ok(&["ctr-img", "pull", &name]);
    assert_eq!(id_of(&b, &name), id);
    assert!(check_store(&b.dataroot()).is_empty());
}
