//! Helpers for the integration tests: a temporary data root, the real binary, tarball makers,
//! and a store consistency checker.

use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_isula-build"))
}

/// A temporary data root + run root + (empty) config dir.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("isula-it-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(dir.path().join("conf")).expect("conf dir");
        Env { dir }
    }
    pub fn dataroot(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    /// The unpacked form of the layer `chain` (hex or `sha256:hex`), unpacked now if this is
    /// its first use (as a build would).
    pub fn unpacked_layer(&self, chain: &str) -> PathBuf {
        let store = isula_build::storage::Store::open(&self.dataroot(), &self.runroot()).unwrap();
        let chain: isula_build::digest::Digest =
            format!("sha256:{}", chain.trim_start_matches("sha256:"))
                .parse()
                .unwrap();
        let _lease = store.lease(std::slice::from_ref(&chain)).unwrap();
        store.unpacked_layer(&chain).unwrap()
    }
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--dataroot")
            .arg(self.dataroot())
            .arg("--runroot")
            .arg(self.runroot())
            .arg("--config")
            .arg(self.conf())
            .env_remove("ISULABUILD_CLI_EXPERIMENTAL");
        c
    }
    /// Run with arguments; returns the output whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("spawn isula-build")
    }
    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "isula-build {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// Run and require failure with a one-line error; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "isula-build {args:?} should fail: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "error must be one line: {err:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
        err
    }
    /// Import a tarball and return the image ID.
    pub fn import(&self, tar: &Path, name: &str) -> String {
        let out = self.ok(&["ctr-img", "import", tar.to_str().expect("utf8"), name]);
        let id = out
            .trim()
            .strip_prefix("Import success with image id: \"")
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or_else(|| panic!("unexpected import output {out:?}"));
        assert_eq!(id.len(), 64);
        id.to_string()
    }
    pub fn index(&self) -> serde_json::Value {
        let p = self.dataroot().join("images.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).expect("images.json parses"),
            Err(_) => serde_json::json!({"images": []}),
        }
    }
    /// Names on image `id`.
    pub fn names_of(&self, id: &str) -> Vec<String> {
        let ix = self.index();
        ix["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|i| i["id"] == id)
            .map(|i| {
                i["names"]
                    .as_array()
                    .expect("names")
                    .iter()
                    .map(|n| n.as_str().expect("str").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A tar entry for [`make_tar`].
pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
    /// Raw name written into the header bypassing the tar crate's path checks.
    RawFile(&'a str, &'a [u8]),
    CharDev(&'a str, u32, u32),
}

pub fn make_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_path(p).expect("path");
                h.set_mode(*m);
                h.set_size(0);
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
            E::File(p, data, m) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_path(p).expect("path");
                h.set_mode(*m);
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
            E::Sym(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_path(p).expect("path");
                h.set_link_name(t).expect("link");
                h.set_mode(0o777);
                h.set_size(0);
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
            E::Hard(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_path(p).expect("path");
                h.set_link_name(t).expect("link");
                h.set_mode(0o644);
                h.set_size(0);
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
            E::RawFile(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                let name = p.as_bytes();
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
            E::CharDev(p, maj, min) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_path(p).expect("path");
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*maj).expect("major");
                h.set_device_minor(*min).expect("minor");
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
        }
    }
    b.into_inner().expect("finish tar")
}

/// A small synthetic rootfs: dirs, files, a symlink, a hard link; `salt` changes its content.
pub fn small_rootfs(salt: &str) -> Vec<u8> {
    let content = format!("hello from {salt}\n");
    make_tar(&[
        E::Dir("bin/", 0o755),
        E::File("bin/tool", b"#!/bin/sh\necho tool\n", 0o755),
        E::Dir("etc/", 0o755),
        E::File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
        E::File("etc/salt", content.as_bytes(), 0o600),
        E::Sym("bin/sh", "tool"),
        E::Hard("bin/tool2", "bin/tool"),
        E::Dir("tmp/", 0o1777),
    ])
}

pub fn write(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).expect("create");
    f.write_all(bytes).expect("write");
}

/// The busybox rootfs tarball made by scripts/make-busybox-rootfs.sh (cached per test run),
/// or None when busybox-static is not installed.
pub fn busybox_tar(dir: &Path) -> Option<PathBuf> {
    let out = dir.join("busybox-rootfs.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-busybox-rootfs.sh");
    let st = Command::new("bash").arg(script).arg(&out).status().ok()?;
    st.success().then_some(out)
}

/// Check every invariant of a data root; returns a list of problems (empty when consistent).
pub fn check_store(dataroot: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let ix: serde_json::Value = match std::fs::read(dataroot.join("images.json")) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(v) => v,
            Err(e) => return vec![format!("images.json does not parse: {e}")],
        },
        Err(_) => serde_json::json!({"images": []}),
    };
    let mut names = std::collections::HashSet::new();
    let blob = |d: &str| {
        dataroot
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    for img in ix["images"].as_array().cloned().unwrap_or_default() {
        let id = img["id"].as_str().unwrap_or("").to_string();
        for n in img["names"].as_array().cloned().unwrap_or_default() {
            if !names.insert(n.as_str().unwrap_or("").to_string()) {
                problems.push(format!("name {n} on two images"));
            }
        }
        match std::fs::read(blob(&id)) {
            Ok(b) if sha256_hex(&b) == id => {
                let cfg: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|d| d.as_str().unwrap_or("").to_string())
                    .collect();
                let layers: Vec<String> = img["layers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|d| d.as_str().unwrap_or("").to_string())
                    .collect();
                if diff_ids.len() != layers.len() {
                    problems.push(format!(
                        "{id}: {} diff_ids but {} layers",
                        diff_ids.len(),
                        layers.len()
                    ));
                }
                for (chain, diff_id) in layers.iter().zip(diff_ids.iter()) {
                    let ldir = dataroot
                        .join("layers")
                        .join(chain.trim_start_matches("sha256:"));
                    // `diff/` is made on first use; if present it must be a directory.
                    if ldir.join("diff").exists() && !ldir.join("diff").is_dir() {
                        problems.push(format!("{id}: layer {chain} diff is not a dir"));
                    }
                    if !ldir.join("meta.json").is_file() {
                        problems.push(format!("{id}: layer {chain} has no meta.json"));
                        continue;
                    }
                    let meta: serde_json::Value = match std::fs::read(ldir.join("meta.json")) {
                        Ok(m) => serde_json::from_slice(&m).unwrap_or_default(),
                        Err(e) => {
                            problems.push(format!("{id}: layer {chain} meta: {e}"));
                            continue;
                        }
                    };
                    if meta["diff_id"].as_str() != Some(diff_id) {
                        problems.push(format!("{id}: layer {chain} diff_id mismatch"));
                    }
                    let bd = meta["blob"].as_str().unwrap_or("");
                    match std::fs::read(blob(bd)) {
                        Ok(b) if format!("sha256:{}", sha256_hex(&b)) == bd => {
                            if meta["blob_size"].as_u64() != Some(b.len() as u64) {
                                problems.push(format!("{id}: layer blob {bd} size mismatch"));
                            }
                        }
                        Ok(_) => problems.push(format!("{id}: layer blob {bd} content mismatch")),
                        Err(e) => problems.push(format!("{id}: layer blob {bd}: {e}")),
                    }
                    // An uncompressed (tar) blob is the layer tar itself.
                    let mt = meta["media_type"].as_str().unwrap_or("");
                    if mt.ends_with(".tar") && bd != diff_id {
                        problems.push(format!(
                            "{id}: tar blob {bd} of layer {chain} is not its diff_id"
                        ));
                    }
                    if !meta["gzip"].is_null()
                        && (!mt.ends_with(".tar")
                            || meta["gzip"]["digest"]
                                .as_str()
                                .is_none_or(|d| !d.starts_with("sha256:"))
                            || meta["gzip"]["size"].as_u64().is_none())
                    {
                        problems.push(format!("{id}: layer {chain} has a bad gzip record"));
                    }
                }
            }
            Ok(_) => problems.push(format!("{id}: config blob content does not match id")),
            Err(e) => problems.push(format!("{id}: config blob: {e}")),
        }
        let m = img["manifest"].as_str().unwrap_or("");
        match std::fs::read(blob(m)) {
            Ok(b) if format!("sha256:{}", sha256_hex(&b)) == m => {}
            Ok(_) => problems.push(format!("{id}: manifest blob mismatch")),
            Err(e) => problems.push(format!("{id}: manifest blob {m}: {e}")),
        }
    }
    problems
}

/// Every file under the data root with its content hash (lock files and empty
/// directories excluded): equal snapshots mean an unchanged store.
pub fn snapshot(dataroot: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).expect("prefix").display().to_string();
            let ft = e.file_type().expect("file type");
            if rel.ends_with(".lock") {
                continue;
            }
            // A layer's unpacked form is a cache made on first use (a failing build may have
            // started by unpacking its base): not part of what "the store changed" means.
            if rel.starts_with("layers/") && rel.ends_with("/diff") {
                continue;
            }
            if ft.is_dir() {
                walk(base, &p, out);
            } else if ft.is_symlink() {
                out.push((
                    rel,
                    format!("-> {}", std::fs::read_link(&p).expect("link").display()),
                ));
            } else if ft.is_file() {
                out.push((rel, sha256_hex(&std::fs::read(&p).expect("read"))));
            } else {
                out.push((rel, "special".into()));
            }
        }
    }
    walk(dataroot, dataroot, &mut out);
    out.sort();
    out
}

/// Is `tool` on PATH?
pub fn have_tool(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A private dockerd (own data root, exec root and socket, no networking side effects; see
/// PEERS.md), stopped and its directory removed on drop, also when the test fails.
pub struct Dockerd {
    dir: PathBuf,
    child: std::process::Child,
}

impl Dockerd {
    /// Start one under `env`; `None` (after a SKIP line naming `test`) when it cannot run here.
    pub fn start(env: &Env, test: &str) -> Option<Dockerd> {
        if !have_tool("dockerd") || !Path::new("/usr/bin/docker").exists() || !is_root() {
            eprintln!("SKIP {test}: dockerd, /usr/bin/docker or root missing");
            return None;
        }
        let dir = env.path("dk");
        std::fs::create_dir_all(&dir).expect("dockerd dir");
        let log = std::fs::File::create(dir.join("log")).expect("dockerd log");
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .args([
                "--storage-driver",
                "overlay2",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .ok()?;
        // From here on, Drop stops it whatever happens.
        let d = Dockerd { dir, child };
        for _ in 0..60 {
            if d.cmd()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Some(d);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        eprintln!(
            "SKIP {test}: dockerd did not start here: {}",
            std::fs::read_to_string(d.dir.join("log"))
                .unwrap_or_default()
                .lines()
                .last()
                .unwrap_or("")
        );
        None
    }
    /// The engine's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }
    /// `DOCKER_HOST` value for this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("/usr/bin/docker");
        c.arg("-H").arg(self.host());
        c
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if std::time::Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
        // Its data root (overlay2 layers, images): dockerd unmounted what it mounted.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
