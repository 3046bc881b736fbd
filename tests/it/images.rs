//! import, images, tag, rm through the CLI.

use crate::common::*;
use std::io::Write;

#[test]
fn import_every_compression_gives_the_same_layer() {
    let env = Env::new();
    let tar = small_rootfs("c");
    let plain = env.path("r.tar");
    write(&plain, &tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    write(&env.path("r.gz"), &gz.finish().unwrap());
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&tar).unwrap();
    write(&env.path("r.xz"), &xz.finish().unwrap());
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&tar).unwrap();
    write(&env.path("r.bz2"), &bz.finish().unwrap());
    write(&env.path("r.zst"), &zstd::encode_all(&tar[..], 3).unwrap());
    // Names lie about the content: detection must not use them.
    std::fs::rename(env.path("r.xz"), env.path("looks-like.tar.gz")).unwrap();

    let mut ids = Vec::new();
    for (f, name) in [
        ("r.tar", "c:plain"),
        ("r.gz", "c:gz"),
        ("looks-like.tar.gz", "c:xz"),
        ("r.bz2", "c:bz2"),
        ("r.zst", "c:zst"),
    ] {
        ids.push(env.import(&env.path(f), name));
    }
    let layers: Vec<_> = std::fs::read_dir(env.dataroot().join("layers"))
        .unwrap()
        .collect();
    assert_eq!(
        layers.len(),
        1,
        "same tar content must give one shared layer"
    );
    let chain = layers[0]
        .as_ref()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    assert_eq!(
        chain,
        sha256_hex(&tar),
        "layer chain id of a base layer is its diff_id"
    );
    assert!(
        check_store(&env.dataroot()).is_empty(),
        "{:?}",
        check_store(&env.dataroot())
    );

    // The config is a real single-layer image config.
    let cfg: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.dataroot().join("blobs/sha256").join(&ids[0])).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["os"], "linux");
    assert!(cfg["architecture"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(cfg["created"].as_str().is_some());
    assert_eq!(
        cfg["rootfs"]["diff_ids"][0],
        format!("sha256:{}", sha256_hex(&tar))
    );
    // Import writes the layer once (its tar); it is unpacked, with its metadata, on first use.
    assert!(
        !env.dataroot()
            .join("layers")
            .join(&chain)
            .join("diff")
            .exists(),
        "import unpacked the layer"
    );
    let diff = env.unpacked_layer(&chain);
    assert_eq!(
        std::fs::read_link(diff.join("bin/sh")).unwrap().to_str(),
        Some("tool")
    );
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(diff.join("bin/tool")).unwrap();
    let b = std::fs::metadata(diff.join("bin/tool2")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link preserved");
    assert_eq!(a.mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::metadata(diff.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        std::fs::metadata(diff.join("etc/salt")).unwrap().mode() & 0o7777,
        0o600
    );
}

#[test]
fn images_table_filters_json_and_quiet() {
    let env = Env::new();
    let empty = env.ok(&["ctr-img", "images"]);
    assert!(
        empty.contains("REPOSITORY    TAG    IMAGE ID    CREATED"),
        "{empty}"
    );
    write(&env.path("a.tar"), &small_rootfs("a"));
    write(&env.path("b.tar"), &small_rootfs("b"));
    let a = env.import(&env.path("a.tar"), "openeuler:20.03-lts-sp3");
    let b = env.import(&env.path("b.tar"), "localhost:5000/app");
    let table = env.ok(&["ctr-img", "images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("----"), "{table}");
    assert!(
        lines[1].contains("REPOSITORY") && lines[1].contains("SIZE"),
        "{table}"
    );
    // Newest first.
    assert!(
        lines[3].contains("localhost:5000/app") && lines[3].contains("latest"),
        "{table}"
    );
    assert!(lines[3].contains(&b[..12]));
    assert!(
        lines[4].contains("openeuler")
            && lines[4].contains("20.03-lts-sp3")
            && lines[4].contains(&a[..12])
    );
    assert!(lines[5].starts_with("----"));

    let only = env.ok(&["ctr-img", "images", "openeuler"]);
    assert!(
        only.contains(&a[..12]) && !only.contains(&b[..12]),
        "{only}"
    );
    let one = env.ok(&["ctr-img", "images", "localhost:5000/app:latest"]);
    assert!(one.contains(&b[..12]) && !one.contains(&a[..12]), "{one}");
    let by_id = env.ok(&["ctr-img", "images", &a[..6]]);
    assert!(by_id.contains(&a[..12]), "{by_id}");
    let err = env.fails(&["ctr-img", "images", "nosuch"]);
    assert!(
        err.contains("failed to list images with repository \"nosuch\""),
        "{err}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["ctr-img", "images", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[1]["repository"], "openeuler");
    assert_eq!(json[1]["id"], a);
    let q = env.ok(&["ctr-img", "images", "-q"]);
    assert_eq!(q.lines().collect::<Vec<_>>(), vec![&b[..12], &a[..12]]);
}

#[test]
fn tag_by_prefix_name_and_moving_names() {
    let env = Env::new();
    write(&env.path("a.tar"), &small_rootfs("a"));
    write(&env.path("b.tar"), &small_rootfs("b"));
    let a = env.import(&env.path("a.tar"), "a");
    let b = env.import(&env.path("b.tar"), "b:1");
    let out = env.ok(&["ctr-img", "tag", &a[..12], "openeuler:v1"]);
    assert_eq!(
        out.trim(),
        format!("Tag openeuler:v1 to image {} succeed", &a[..12])
    );
    env.ok(&["ctr-img", "tag", "a", "plain"]);
    assert_eq!(
        env.names_of(&a),
        vec!["a:latest", "openeuler:v1", "plain:latest"]
    );
    // Moving a name: openeuler:v1 now points at b.
    env.ok(&["ctr-img", "tag", "b:1", "openeuler:v1"]);
    assert_eq!(env.names_of(&b), vec!["b:1", "openeuler:v1"]);
    assert_eq!(env.names_of(&a), vec!["a:latest", "plain:latest"]);
    let e = env.fails(&["ctr-img", "tag", "nosuch", "x"]);
    assert!(e.contains("not found in local store"), "{e}");
    let e = env.fails(&["ctr-img", "tag", "a", "Bad:Name"]);
    assert!(e.contains("must be lowercase"), "{e}");
    assert!(check_store(&env.dataroot()).is_empty());
}

#[test]
fn name_conflicting_with_an_id_prefix_and_ambiguous_prefixes() {
    let env = Env::new();
    // Import until two IDs share their first hex digit (at most 17 tries by pigeonhole).
    let mut ids: Vec<String> = Vec::new();
    let (x, y) = loop {
        let n = ids.len();
        write(&env.path("r.tar"), &small_rootfs(&format!("p{n}")));
        let id = env.import(&env.path("r.tar"), &format!("img{n}"));
        if let Some(other) = ids.iter().find(|o| o[..1] == id[..1]) {
            break (other.clone(), id);
        }
        ids.push(id);
    };
    let e = env.fails(&["ctr-img", "tag", &x[..1], "z"]);
    assert!(e.contains("ambiguous"), "{e}");
    // Upstream: "image name conflict with image id": a name that is another image's ID
    // prefix resolves to the named image.
    let prefix = &y[..8];
    env.ok(&["ctr-img", "tag", &x, prefix]);
    env.ok(&["ctr-img", "tag", prefix, "viaprefixname"]);
    assert!(env
        .names_of(&x)
        .contains(&"viaprefixname:latest".to_string()));
    // A longer prefix is not a name: it finds y by ID.
    env.ok(&["ctr-img", "tag", &y[..9], "viaid"]);
    assert!(env.names_of(&y).contains(&"viaid:latest".to_string()));
}

#[test]
fn rm_untags_then_deletes_and_keeps_shared_layers() {
    let env = Env::new();
    let tar = small_rootfs("shared");
    write(&env.path("s.tar"), &tar);
    let a = env.import(&env.path("s.tar"), "one");
    let b = env.import(&env.path("s.tar"), "two");
    assert_ne!(a, b, "configs differ by creation time");
    env.ok(&["ctr-img", "tag", "one", "one:extra"]);
    let out = env.ok(&["ctr-img", "rm", "one:extra"]);
    assert_eq!(out.trim(), "Untagged: one:extra");
    let out = env.ok(&["ctr-img", "rm", "one"]);
    assert_eq!(out, format!("Untagged: one:latest\nDeleted: sha256:{a}\n"));
    // The layer is still used by "two".
    let chain = sha256_hex(&tar);
    assert!(env
        .dataroot()
        .join("layers")
        .join(&chain)
        .join("meta.json")
        .exists());
    assert!(env.unpacked_layer(&chain).join("bin/tool").exists());
    assert!(check_store(&env.dataroot()).is_empty());
    assert!(
        !env.dataroot().join("blobs/sha256").join(&a).exists(),
        "config blob of removed image swept"
    );
    // Failing removal: exit 1, other removals still happen.
    let out = env.run(&["ctr-img", "rm", "nosuch", "two"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("Deleted: sha256:{b}")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nosuch") && err.contains("remove one or more images failed"),
        "{err}"
    );
    // Nothing left: no layers, no blobs.
    assert_eq!(
        std::fs::read_dir(env.dataroot().join("layers"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(env.dataroot().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn rm_prune_and_all() {
    let env = Env::new();
    write(&env.path("a.tar"), &small_rootfs("a"));
    write(&env.path("b.tar"), &small_rootfs("b"));
    let a = env.import(&env.path("a.tar"), "x:1");
    let b = env.import(&env.path("b.tar"), "y:1");
    // Moving x:1 to b leaves a without names: a dangling image.
    env.ok(&["ctr-img", "tag", "y:1", "x:1"]);
    let table = env.ok(&["ctr-img", "images"]);
    assert!(table.contains("<none>"), "{table}");
    let out = env.ok(&["ctr-img", "rm", "-p"]);
    assert_eq!(out.trim(), format!("Deleted: sha256:{a}"));
    assert!(env.index()["images"].as_array().unwrap().len() == 1);
    env.fails(&["ctr-img", "rm", "-a", "-p"]);
    env.fails(&["ctr-img", "rm", "-a", "y:1"]);
    env.fails(&["ctr-img", "rm"]);
    let out = env.ok(&["ctr-img", "rm", "-a"]);
    assert!(out.contains(&format!("Deleted: sha256:{b}")), "{out}");
    assert_eq!(env.index()["images"].as_array().unwrap().len(), 0);
    assert_eq!(
        std::fs::read_dir(env.dataroot().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn busybox_rootfs_imports_as_a_real_image() {
    let env = Env::new();
    let Some(tar) = busybox_tar(env.dir.path()) else {
        eprintln!("SKIP busybox_rootfs_imports_as_a_real_image: busybox-static not installed");
        return;
    };
    let id = env.import(&tar, "busybox");
    let table = env.ok(&["ctr-img", "images", "busybox"]);
    assert!(
        table.contains("busybox") && table.contains(&id[..12]),
        "{table}"
    );
    let chain = &env.index()["images"][0]["layers"][0];
    let diff = env.unpacked_layer(chain.as_str().unwrap());
    // The unpacked layer is a usable rootfs: the busybox binary runs from it.
    let out = std::process::Command::new(diff.join("bin/busybox"))
        .arg("true")
        .status()
        .unwrap();
    assert!(out.success());
    assert_eq!(
        std::fs::read_link(diff.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
}
