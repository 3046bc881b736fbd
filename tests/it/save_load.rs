//! `ctr-img save` / `ctr-img load`: round trips judged by byte equality and by outside tools
//! (podman, skopeo, umoci), separated images, and hostile archives.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------- archive builders

/// A member of a hand-made archive.
enum M {
    Bytes(String, Vec<u8>),
    Sym(String, String),
}

fn raw_tar(members: &[M]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        match m {
            M::Bytes(p, d) => {
                let name = p.as_bytes();
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_size(d.len() as u64);
                h.set_cksum();
                b.append(&h, &d[..]).unwrap();
            }
            M::Sym(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                let name = p.as_bytes();
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_link_name(t).unwrap();
                h.set_size(0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn config_for(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// Members of a docker-archive (containers/image style: `<diffid>.tar` layer files) for
/// images given as (layer tars, tags).
fn docker_members(images: &[(Vec<Vec<u8>>, Vec<&str>)]) -> Vec<M> {
    let mut members = Vec::new();
    let mut manifest = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (layers, tags) in images {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| format!("sha256:{}", sha256_hex(l)))
            .collect();
        let mut names = Vec::new();
        for l in layers {
            let n = format!("{}.tar", sha256_hex(l));
            if seen.insert(n.clone()) {
                members.push(M::Bytes(n.clone(), l.clone()));
            }
            names.push(n);
        }
        let cfg = config_for(&diff_ids);
        let cname = format!("{}.json", sha256_hex(&cfg));
        members.push(M::Bytes(cname.clone(), cfg));
        manifest.push(serde_json::json!({"Config": cname, "RepoTags": tags, "Layers": names}));
    }
    members.push(M::Bytes(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    members
}

fn layer(salt: &str) -> Vec<u8> {
    make_tar(&[
        E::Dir("d/", 0o755),
        E::File(&format!("d/{salt}"), salt.as_bytes(), 0o644),
    ])
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn loaded_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Loaded image as "))
        .map(str::to_string)
        .collect()
}

fn load(env: &Env, p: &Path) -> Vec<String> {
    let ids = loaded_ids(&env.ok(&["ctr-img", "load", "-i", s(p)]));
    assert!(!ids.is_empty());
    assert!(
        check_store(&env.dataroot()).is_empty(),
        "{:?}",
        check_store(&env.dataroot())
    );
    ids
}

/// A map of every file under `dir`: path → (kind, mode, content hash or link target).
fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    fn walk(base: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let v = if md.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                walk(base, &p, out);
                format!("dir {:o}", md.mode() & 0o7777)
            } else if md.is_file() {
                format!(
                    "file {:o} {}",
                    md.mode() & 0o7777,
                    sha256_hex(&std::fs::read(&p).unwrap())
                )
            } else {
                format!("special {:o}", md.mode())
            };
            out.insert(rel, v);
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn tree_of_tar(env: &Env, tar: &Path) -> std::collections::BTreeMap<String, String> {
    let d = env.path(&format!("x-{}", rand_name()));
    std::fs::create_dir(&d).unwrap();
    let st = Command::new("tar")
        .arg("-xpf")
        .arg(tar)
        .arg("-C")
        .arg(&d)
        .status()
        .unwrap();
    assert!(st.success());
    tree(&d)
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The unpacked rootfs of a single-layer image in our store.
fn our_rootfs(env: &Env, id: &str) -> PathBuf {
    let ix = env.index();
    let img = ix["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap()
        .clone();
    let chain = img["layers"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    env.unpacked_layer(&chain)
}

fn tool(name: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP save_load: {name} not installed");
    }
    ok
}

/// podman/skopeo with private storage and settings that work on these machines (PEERS.md).
struct Peer {
    dir: PathBuf,
}

impl Peer {
    fn new(env: &Env) -> Peer {
        let dir = env.path("peer");
        std::fs::create_dir_all(dir.join("dc")).unwrap();
        write(&dir.join("dc/config.json"), b"{}");
        write(
            &dir.join("containers.conf"),
            b"[containers]\nnetns=\"none\"\n[engine]\nruntime=\"runc\"\ncgroup_manager=\"cgroupfs\"\nevents_logger=\"file\"\n",
        );
        write(
            &dir.join("storage.conf"),
            format!(
                "[storage]\ndriver=\"vfs\"\ngraphroot=\"{0}/graph\"\nrunroot=\"{0}/run\"\n",
                dir.display()
            )
            .as_bytes(),
        );
        write(
            &dir.join("registries.conf"),
            b"unqualified-search-registries = []\n",
        );
        Peer { dir }
    }
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("DOCKER_CONFIG", self.dir.join("dc"));
        c
    }
    fn ok(&self, prog: &str, args: &[&str]) -> String {
        let out = self.cmd(prog).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{prog} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // podman's vfs/overlay storage may hold mounts; let podman clean up.
        let _ = self.cmd("podman").args(["system", "reset", "-f"]).output();
    }
}

fn rootfs(env: &Env) -> (PathBuf, bool) {
    match busybox_tar(env.dir.path()) {
        Some(p) => (p, true),
        None => {
            eprintln!(
                "SKIP (partly) save_load: busybox-static not installed, using a synthetic rootfs"
            );
            let p = env.path("rootfs.tar");
            write(&p, &small_rootfs("rootfs"));
            (p, false)
        }
    }
}

// ---------------------------------------------------------------- our own round trips

#[test]
fn save_load_save_is_byte_identical_in_both_formats() {
    let env = Env::new();
    let (rf, _) = rootfs(&env);
    let id = env.import(&rf, "busybox:latest");
    let a = env.path("a.tar");
    env.ok(&["ctr-img", "save", "busybox:latest", "-o", s(&a)]);
    let o = env.path("o.tar");
    env.ok(&[
        "--experimental",
        "ctr-img",
        "save",
        "-f",
        "oci",
        "busybox:latest",
        "-o",
        s(&o),
    ]);

    let env2 = Env::new();
    assert_eq!(load(&env2, &a), vec![id.clone()]);
    assert_eq!(env2.names_of(&id), vec!["busybox:latest".to_string()]);
    let a2 = env2.path("a2.tar");
    env2.ok(&["ctr-img", "save", "busybox:latest", "-o", s(&a2)]);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&a2).unwrap(),
        "docker-archive re-save differs"
    );

    let env3 = Env::new();
    assert_eq!(load(&env3, &o), vec![id.clone()]);
    let o2 = env3.path("o2.tar");
    env3.ok(&[
        "--experimental",
        "ctr-img",
        "save",
        "-f",
        "oci",
        "busybox",
        "-o",
        s(&o2),
    ]);
    assert_eq!(
        std::fs::read(&o).unwrap(),
        std::fs::read(&o2).unwrap(),
        "oci re-save differs"
    );
    // The loaded tree is the imported one.
    assert_eq!(tree(&our_rootfs(&env3, &id)), tree(&our_rootfs(&env, &id)));
    // Saving by ID: no RepoTags, loads unnamed.
    let byid = env.path("byid.tar");
    env.ok(&["ctr-img", "save", &id[..12], "-o", s(&byid)]);
    let env4 = Env::new();
    assert_eq!(load(&env4, &byid), vec![id.clone()]);
    assert!(env4.names_of(&id).is_empty());
    // Loading again is a no-op that keeps names; a compressed archive loads too.
    let gz = env.path("a.tar.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -1 -c {} > {}", s(&a), s(&gz)))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(load(&env2, &gz), vec![id.clone()]);
}

#[test]
fn several_images_share_layers_once_and_multi_image_rules() {
    let env = Env::new();
    let (base, mid, top1, top2) = (layer("base"), layer("mid"), layer("one"), layer("two"));
    let arch = env.path("multi.tar");
    write(
        &arch,
        &raw_tar(&docker_members(&[
            (
                vec![base.clone(), mid.clone(), top1.clone()],
                vec!["app:one"],
            ),
            (
                vec![base.clone(), mid.clone(), top2.clone()],
                vec!["app:two", "app:alias"],
            ),
        ])),
    );
    let ids = load(&env, &arch);
    assert_eq!(ids.len(), 2);
    assert_eq!(
        env.names_of(&ids[1]),
        vec!["app:two".to_string(), "app:alias".to_string()]
    );
    let out = env.path("out.tar");
    env.ok(&["ctr-img", "save", "app:one", "app:two", "-o", s(&out)]);
    let listing = Command::new("tar").arg("tf").arg(&out).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert_eq!(
        listing
            .lines()
            .filter(|l| l.ends_with("/layer.tar"))
            .count(),
        4,
        "{listing}"
    );
    let env2 = Env::new();
    let ids2 = load(&env2, &out);
    assert_eq!(ids2, ids);
    // Existing output is refused, as upstream.
    let err = env.fails(&["ctr-img", "save", "app:one", "-o", s(&out)]);
    assert!(err.contains("output file already exist"), "{err}");

    // A multi-image archive with an unnamed image is refused.
    let unnamed = env.path("unnamed.tar");
    write(
        &unnamed,
        &raw_tar(&docker_members(&[
            (vec![layer("u1")], vec!["x:1"]),
            (vec![layer("u2")], vec![]),
        ])),
    );
    let before = snapshot(&env.dataroot());
    let err = env.fails(&["ctr-img", "load", "-i", s(&unnamed)]);
    assert!(err.contains("not all of them are named"), "{err}");
    assert_eq!(before, snapshot(&env.dataroot()));
}

// ---------------------------------------------------------------- outside tools

#[test]
fn podman_and_skopeo_read_what_we_write_and_we_read_theirs() {
    if !tool("podman") || !tool("skopeo") {
        return;
    }
    let env = Env::new();
    let peer = Peer::new(&env);
    let (rf, _) = rootfs(&env);
    let id = env.import(&rf, "busybox:latest");
    let want_tree = tree_of_tar(&env, &rf);
    assert_eq!(tree(&our_rootfs(&env, &id)), want_tree);

    // ours → podman load, skopeo inspect
    let ours = env.path("ours.tar");
    env.ok(&["ctr-img", "save", "busybox:latest", "-o", s(&ours)]);
    peer.ok("podman", &["load", "-i", s(&ours)]);
    let pid = peer.ok(
        "podman",
        &["image", "inspect", "--format", "{{.Id}}", "busybox:latest"],
    );
    assert_eq!(pid.trim(), id, "podman sees another ID");
    let insp: serde_json::Value = serde_json::from_str(&peer.ok(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", s(&ours))],
    ))
    .unwrap();
    let ours_oci = env.path("ours-oci.tar");
    env.ok(&[
        "--experimental",
        "ctr-img",
        "save",
        "-f",
        "oci",
        "busybox:latest",
        "-o",
        s(&ours_oci),
    ]);
    let insp_oci: serde_json::Value = serde_json::from_str(&peer.ok(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci-archive:{}", s(&ours_oci)),
        ],
    ))
    .unwrap();
    assert_eq!(
        insp_oci["rootfs"]["diff_ids"],
        serde_json::json!(insp["Layers"])
    );
    peer.ok("podman", &["load", "-i", s(&ours_oci)]);

    // podman save (both formats), skopeo copy (both) → our load: same ID, same tree
    let cases = [
        (
            "podman-docker.tar",
            vec!["save", "-o", "", "busybox:latest"],
        ),
        (
            "podman-oci.tar",
            vec![
                "save",
                "--format",
                "oci-archive",
                "-o",
                "",
                "busybox:latest",
            ],
        ),
    ];
    for (name, args) in cases {
        let p = env.path(name);
        let args: Vec<&str> = args
            .iter()
            .map(|a| if a.is_empty() { s(&p) } else { a })
            .collect();
        peer.ok("podman", &args);
        let env2 = Env::new();
        let got = load(&env2, &p);
        // The config podman wrote: its digest is the image ID everyone computes.
        let want = if name.contains("oci") {
            let c: serde_json::Value = serde_json::from_str(&peer.ok(
                "skopeo",
                &["inspect", "--raw", &format!("oci-archive:{}", s(&p))],
            ))
            .unwrap();
            c["config"]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        } else {
            id.clone()
        };
        assert_eq!(got, vec![want.clone()], "{name}");
        assert_eq!(tree(&our_rootfs(&env2, &want)), want_tree, "{name}");
        assert!(!env2.names_of(&want).is_empty(), "{name}: no names");
    }
    for (name, dest) in [
        ("sk-docker.tar", "docker-archive"),
        ("sk-oci.tar", "oci-archive"),
    ] {
        let p = env.path(name);
        peer.ok(
            "skopeo",
            &[
                "copy",
                &format!("docker-archive:{}", s(&ours)),
                &format!("{dest}:{}:sk/busybox:v1", s(&p)),
            ],
        );
        let env2 = Env::new();
        let got = load(&env2, &p);
        let names = env2.names_of(&got[0]);
        assert!(
            names.len() == 1 && names[0].ends_with("sk/busybox:v1"),
            "{name}: {names:?}"
        );
        assert_eq!(tree(&our_rootfs(&env2, &got[0])), want_tree, "{name}");
        if dest == "docker-archive" {
            assert_eq!(got, vec![id.clone()]);
        }
    }
    // A zstd-compressed OCI layer (skopeo can write one).
    let z = env.path("zstd.tar");
    let out = peer
        .cmd("skopeo")
        .args([
            "copy",
            "--dest-compress-format",
            "zstd",
            &format!("docker-archive:{}", s(&ours)),
            &format!("oci-archive:{}:z:1", s(&z)),
        ])
        .output()
        .unwrap();
    if out.status.success() {
        let env2 = Env::new();
        let got = load(&env2, &z);
        assert_eq!(tree(&our_rootfs(&env2, &got[0])), want_tree);
    } else {
        eprintln!(
            "SKIP zstd case: skopeo cannot write zstd here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn umoci_unpacks_our_oci_archive() {
    if !tool("umoci") {
        return;
    }
    let env = Env::new();
    let (rf, _) = rootfs(&env);
    env.import(&rf, "busybox:latest");
    let o = env.path("o.tar");
    env.ok(&[
        "--experimental",
        "ctr-img",
        "save",
        "-f",
        "oci",
        "busybox:latest",
        "-o",
        s(&o),
    ]);
    let layout = env.path("layout");
    std::fs::create_dir(&layout).unwrap();
    assert!(Command::new("tar")
        .arg("xf")
        .arg(&o)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap()
        .success());
    let bundle = env.path("bundle");
    let out = Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{}:busybox:latest", s(&layout)),
            s(&bundle),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&bundle.join("rootfs")), tree_of_tar(&env, &rf));
}

// ---------------------------------------------------------------- separated images

#[test]
fn separated_images_round_trip_and_mismatches() {
    let env = Env::new();
    let (b, l, a1, a2) = (layer("base"), layer("lib"), layer("app1"), layer("app2"));
    let arch = env.path("in.tar");
    write(
        &arch,
        &raw_tar(&docker_members(&[
            (vec![b.clone()], vec!["base:1"]),
            (vec![b.clone(), l.clone()], vec!["lib:1"]),
            (
                vec![b.clone(), l.clone(), a1.clone()],
                vec!["example.io/apps/app:v1"],
            ),
            (vec![b.clone(), l.clone(), a2.clone()], vec!["app2:latest"]),
        ])),
    );
    let ids = load(&env, &arch);
    let dir = env.path("Images");
    let rename = env.path("rename.json");
    write(
        &rename,
        br#"[{"name":"app2_latest_app_image.tar.gz","rename":"second.tar.gz"}]"#,
    );
    env.ok(&[
        "ctr-img",
        "save",
        "-b",
        "base:1",
        "-l",
        "lib:1",
        "-r",
        s(&rename),
        "-d",
        s(&dir),
        "example.io/apps/app:v1",
        "app2",
    ]);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // Shared base and lib are written once, named after the first app in name order (as
    // upstream); the renamed package follows -r.
    assert_eq!(
        files,
        vec![
            "app2_latest_base_image.tar.gz",
            "app2_latest_lib_image.tar.gz",
            "app_v1_app_image.tar.gz",
            "manifest",
            "second.tar.gz"
        ]
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest")).unwrap()).unwrap();
    for (name, info) in m.as_object().unwrap() {
        for (f, h) in [("app", "appHash"), ("base", "baseHash"), ("lib", "libHash")] {
            let file = info[f].as_str().unwrap();
            assert_eq!(
                sha256_hex(&std::fs::read(dir.join(file)).unwrap()),
                info[h].as_str().unwrap(),
                "{name} {f}"
            );
        }
    }
    // Load into a fresh store: same IDs.
    let env2 = Env::new();
    let out = env2.ok(&[
        "ctr-img",
        "load",
        "-d",
        s(&dir),
        "-i",
        "example.io/apps/app:v1",
    ]);
    assert_eq!(loaded_ids(&out), vec![ids[2].clone()]);
    let out = env2.ok(&["ctr-img", "load", "-d", s(&dir), "-i", "app2"]);
    assert_eq!(loaded_ids(&out), vec![ids[3].clone()]);
    assert!(check_store(&env2.dataroot()).is_empty());

    // -d must be empty; base must be a base of the app.
    let err = env.fails(&["ctr-img", "save", "-b", "base:1", "-d", s(&dir), "app2"]);
    assert!(err.contains("dest path already exist"), "{err}");
    let err = env.fails(&[
        "ctr-img",
        "save",
        "-b",
        "app2",
        "-d",
        s(&env.path("D2")),
        "lib:1",
    ]);
    assert!(err.contains("is not the base of"), "{err}");
    assert!(!env.path("D2").exists());

    // A base built from something else: checksum error, or with --no-check a clear mismatch.
    let other = env.path("Other");
    let env3 = Env::new();
    write(
        &env3.path("o.tar"),
        &raw_tar(&docker_members(&[
            (vec![layer("otherbase")], vec!["base:1"]),
            (vec![layer("otherbase"), layer("x")], vec!["o:1"]),
        ])),
    );
    load(&env3, &env3.path("o.tar"));
    env3.ok(&["ctr-img", "save", "-b", "base:1", "-d", s(&other), "o:1"]);
    let wrong_base = other.join("o_1_base_image.tar.gz");
    let env4 = Env::new();
    env4.ok(&["ctr-img", "images"]);
    let before = snapshot(&env4.dataroot());
    let err = env4.fails(&[
        "ctr-img",
        "load",
        "-d",
        s(&dir),
        "-b",
        s(&wrong_base),
        "-i",
        "app2",
    ]);
    assert!(err.contains("check sum"), "{err}");
    let err = env4.fails(&[
        "ctr-img",
        "load",
        "-d",
        s(&dir),
        "-b",
        s(&wrong_base),
        "-i",
        "app2",
        "--no-check",
    ]);
    assert!(
        err.contains("does not match what app2:latest was built on"),
        "{err}"
    );
    let err = env4.fails(&["ctr-img", "load", "-d", s(&dir), "-i", "nosuch:1"]);
    assert!(err.contains("failed to find app image"), "{err}");
    assert_eq!(before, snapshot(&env4.dataroot()));
}

// ---------------------------------------------------------------- hostile archives

fn assert_load_rejected(env: &Env, bytes: &[u8], expect: &str) {
    let p = env.path(&format!("hostile-{}.tar", rand_name()));
    write(&p, bytes);
    let before = snapshot(&env.dataroot());
    let err = env.fails(&["ctr-img", "load", "-i", s(&p)]);
    assert!(err.contains(expect), "expected {expect:?} in {err:?}");
    assert_eq!(
        before,
        snapshot(&env.dataroot()),
        "store changed ({expect})"
    );
    let tmp: Vec<_> = std::fs::read_dir(env.dataroot().join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "left {tmp:?} in tmp/");
}

fn single(layer_tar: Vec<u8>) -> Vec<u8> {
    raw_tar(&docker_members(&[(vec![layer_tar], vec!["h:1"])]))
}

#[test]
fn hostile_archives_change_nothing() {
    let env = Env::new();
    write(&env.path("good.tar"), &small_rootfs("good"));
    env.import(&env.path("good.tar"), "good");
    let outside = env.path("outside");
    std::fs::create_dir(&outside).unwrap();

    // Layer entries escaping the layer.
    assert_load_rejected(
        &env,
        &single(make_tar(&[E::RawFile("../evil", b"x")])),
        "'..'",
    );
    assert_load_rejected(
        &env,
        &single(make_tar(&[E::RawFile("/etc/evil", b"x")])),
        "absolute",
    );
    assert_load_rejected(
        &env,
        &single(make_tar(&[E::Hard("h", "../../etc/passwd")])),
        "'..'",
    );
    assert_load_rejected(
        &env,
        &single(make_tar(&[
            E::Dir("dev/", 0o755),
            E::CharDev("dev/sda", 8, 0),
        ])),
        "character device",
    );
    let sym = make_tar(&[
        E::Sym("link", s(&outside)),
        E::File("link/pwned", b"x", 0o644),
    ]);
    let p = env.path("sym.tar");
    write(&p, &single(sym));
    let _ = env.run(&["ctr-img", "load", "-i", s(&p)]);
    assert!(!outside.join("pwned").exists(), "wrote through a symlink");
    assert!(check_store(&env.dataroot()).is_empty());

    // manifest.json naming files outside the archive.
    let l = layer("l");
    let cfg = config_for(&[format!("sha256:{}", sha256_hex(&l))]);
    let cname = format!("{}.json", sha256_hex(&cfg));
    let with_manifest = |layers: serde_json::Value, config: &str, extra: Vec<M>| {
        let mut m = vec![M::Bytes(cname.clone(), cfg.clone())];
        m.extend(extra);
        m.push(M::Bytes(
            "manifest.json".into(),
            serde_json::to_vec(
                &serde_json::json!([{"Config": config, "RepoTags": ["h:1"], "Layers": layers}]),
            )
            .unwrap(),
        ));
        raw_tar(&m)
    };
    assert_load_rejected(
        &env,
        &with_manifest(serde_json::json!(["../../../etc/passwd"]), &cname, vec![]),
        "outside the archive",
    );
    assert_load_rejected(
        &env,
        &with_manifest(serde_json::json!(["/etc/passwd"]), &cname, vec![]),
        "outside the archive",
    );
    assert_load_rejected(
        &env,
        &with_manifest(serde_json::json!(["x.tar"]), "/etc/hostname", vec![]),
        "outside the archive",
    );
    assert_load_rejected(
        &env,
        &with_manifest(
            serde_json::json!(["a/layer.tar"]),
            &cname,
            vec![M::Sym("a/layer.tar".into(), "../../etc/passwd".into())],
        ),
        "outside the archive",
    );
    assert_load_rejected(
        &env,
        &with_manifest(serde_json::json!(["missing.tar"]), &cname, vec![]),
        "is not in the archive",
    );

    // Digest mismatches: config named by a digest it does not have; layer not matching diff_ids.
    let bad_cfg = {
        let mut m = vec![
            M::Bytes(format!("{}.json", "0".repeat(64)), cfg.clone()),
            M::Bytes("l.tar".into(), l.clone()),
        ];
        m.push(M::Bytes(
            "manifest.json".into(),
            serde_json::to_vec(&serde_json::json!([{"Config": format!("{}.json", "0".repeat(64)), "RepoTags": ["h:1"], "Layers": ["l.tar"]}])).unwrap(),
        ));
        raw_tar(&m)
    };
    assert_load_rejected(&env, &bad_cfg, "digest mismatch");
    assert_load_rejected(
        &env,
        &with_manifest(
            serde_json::json!(["other.tar"]),
            &cname,
            vec![M::Bytes("other.tar".into(), layer("other"))],
        ),
        "does not match the image config",
    );

    // OCI: a layer blob whose content does not match its digest.
    let ours = env.path("o.tar");
    env.ok(&[
        "--experimental",
        "ctr-img",
        "save",
        "-f",
        "oci",
        "good",
        "-o",
        s(&ours),
    ]);
    let mut bytes = std::fs::read(&ours).unwrap();
    let blob_at = {
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut best = (0u64, 0u64);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            if e.size() > best.1 {
                best = (e.raw_file_position(), e.size());
            }
        }
        best
    };
    let mut tampered = bytes.clone();
    // The largest member is the layer (an uncompressed tar blob): this byte is in its
    // end-of-archive padding, which its digest covers.
    tampered[(blob_at.0 + blob_at.1 - 20) as usize] ^= 0x55;
    let err_p = env.path("tampered.tar");
    write(&err_p, &tampered);
    // Into a store without that layer (one that has it reuses its own copy and never reads
    // the archive's).
    let fresh = Env::new();
    let before = snapshot(&fresh.dataroot());
    let err = fresh.fails(&["ctr-img", "load", "-i", s(&err_p)]);
    assert!(
        err.contains("mismatch") || err.contains("corrupt") || err.contains("invalid"),
        "{err}"
    );
    assert_eq!(before, snapshot(&fresh.dataroot()));

    // Truncated archives.
    let n = bytes.len();
    bytes.truncate(n / 2);
    assert_load_rejected(&env, &bytes, "truncated");
    let mut half = single(layer("t"));
    let hn = half.len();
    half.truncate(hn - 1500);
    assert_load_rejected(&env, &half, "load image");

    // Not an image archive at all, empty.
    assert_load_rejected(&env, &small_rootfs("x"), "wrong image format");
    let empty = env.path("empty.tar");
    write(&empty, b"");
    let err = env.fails(&["ctr-img", "load", "-i", s(&empty)]);
    assert!(err.contains("empty"), "{err}");

    // Decompression bomb: a zstd layer of a tiny file followed by 1.2 GiB of zeros.
    let mut bomb_tar = make_tar(&[E::File("a", b"a", 0o644)]);
    bomb_tar.truncate(bomb_tar.len() - 1024); // drop the end marker
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    std::io::Write::write_all(&mut enc, &bomb_tar).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1230 {
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    // Its diff_id cannot be known without expanding it; the bomb guard must trip first.
    let cfg = config_for(&[format!("sha256:{}", "1".repeat(64))]);
    let cn = format!("{}.json", sha256_hex(&cfg));
    let arch = raw_tar(&[
        M::Bytes("bomb.tar".into(), bomb),
        M::Bytes(cn.clone(), cfg),
        M::Bytes(
            "manifest.json".into(),
            serde_json::to_vec(
                &serde_json::json!([{"Config": cn, "RepoTags": ["b:1"], "Layers": ["bomb.tar"]}]),
            )
            .unwrap(),
        ),
    ]);
    assert_load_rejected(&env, &arch, "decompression bomb");

    // Over the 50 GiB limit (sparse file).
    let big = env.path("big.tar");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(50 * 1024 * 1024 * 1024 + 1)
        .unwrap();
    let err = env.fails(&["ctr-img", "load", "-i", s(&big)]);
    assert!(err.contains("limit"), "{err}");
    assert!(check_store(&env.dataroot()).is_empty());
}

#[test]
fn save_and_load_argument_rules() {
    let env = Env::new();
    write(&env.path("r.tar"), &small_rootfs("r"));
    env.import(&env.path("r.tar"), "r:1");
    let o = env.path("o.tar");
    for (args, expect) in [
        (vec!["ctr-img", "save", "-o", s(&o)], "at least one image"),
        (
            vec!["ctr-img", "save", "r:1"],
            "output path(-o) should not be empty",
        ),
        (
            vec!["ctr-img", "save", "r:1", "-o", "a:b.tar"],
            "colon in path",
        ),
        (
            vec!["ctr-img", "save", "r:1", "-o", s(&o), "-b", "r:1"],
            "conflict flags",
        ),
        (
            vec!["ctr-img", "save", "r:1", "-f", "oci", "-o", s(&o)],
            "experimental",
        ),
        (
            vec![
                "--experimental",
                "ctr-img",
                "save",
                "r:1",
                "-f",
                "xyz",
                "-o",
                s(&o),
            ],
            "wrong image format",
        ),
        (
            vec!["ctr-img", "save", "nosuch:1", "-o", s(&o)],
            "not found",
        ),
        (
            vec!["ctr-img", "save", "-d", s(&env.path("D")), "r:1"],
            "base image name(-b) must be provided",
        ),
        (vec!["ctr-img", "load"], "tarball path should not be empty"),
        (
            vec!["ctr-img", "load", "-d", s(&env.path("nodir")), "-i", "a"],
            "is not exist",
        ),
        (
            vec!["ctr-img", "load", "-d", s(&env.path("nodir"))],
            "app image name(-i) should not be empty",
        ),
    ] {
        let err = env.fails(&args);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    assert!(!o.exists());
}

#[test]
fn docker_loads_ours_and_we_load_docker_save() {
    let env = Env::new();
    let Some(dk) = Dockerd::start(&env, "docker_loads_ours_and_we_load_docker_save") else {
        return;
    };
    let (rf, _) = rootfs(&env);
    let id = env.import(&rf, "busybox:latest");
    let ours = env.path("ours.tar");
    env.ok(&["ctr-img", "save", "busybox:latest", "-o", s(&ours)]);
    dk.ok(&["load", "-i", s(&ours)]);
    let did = dk.ok(&["image", "inspect", "--format", "{{.Id}}", "busybox:latest"]);
    assert_eq!(did.trim(), format!("sha256:{id}"));
    dk.ok(&["tag", "busybox:latest", "fromdocker:v1"]);
    let theirs = env.path("docker.tar");
    dk.ok(&["save", "-o", s(&theirs), "fromdocker:v1"]);
    let env2 = Env::new();
    assert_eq!(load(&env2, &theirs), vec![id.clone()]);
    assert_eq!(env2.names_of(&id), vec!["fromdocker:v1".to_string()]);
    assert_eq!(tree(&our_rootfs(&env2, &id)), tree_of_tar(&env, &rf));
}
