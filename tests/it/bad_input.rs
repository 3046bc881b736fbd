//! Hostile and broken input: each is a one-line error, exit status 1, store unchanged.

use crate::common::*;

fn setup() -> Env {
    let env = Env::new();
    write(&env.path("good.tar"), &small_rootfs("good"));
    env.import(&env.path("good.tar"), "good");
    env
}

fn assert_rejected(env: &Env, args: &[&str], expect: &str) {
    let before = snapshot(&env.dataroot());
    let err = env.fails(args);
    assert!(
        err.contains(expect),
        "{args:?}: expected {expect:?} in {err:?}"
    );
    let after = snapshot(&env.dataroot());
    assert_eq!(before, after, "{args:?} changed the store");
    // No scratch dir left behind.
    let tmp: Vec<_> = std::fs::read_dir(env.dataroot().join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "{args:?} left {tmp:?} in tmp/");
}

fn import_bytes_rejected(env: &Env, bytes: &[u8], expect: &str) {
    let p = env.path("bad.tar");
    write(&p, bytes);
    assert_rejected(
        env,
        &["ctr-img", "import", p.to_str().unwrap(), "bad:1"],
        expect,
    );
}

#[test]
fn malformed_archives() {
    let env = setup();
    import_bytes_rejected(
        &env,
        b"root:x:0:0:root:/root:/bin/sh\n",
        "not a tar archive",
    );
    import_bytes_rejected(&env, &[0u8; 10240], "no tar entries");
    let good = small_rootfs("t");
    import_bytes_rejected(&env, &good[..1200], "read tar stream");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &good).unwrap();
    let gz = gz.finish().unwrap();
    import_bytes_rejected(&env, &gz[..gz.len() / 2], "import");
    let mut corrupt = gz.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    corrupt[mid + 1] ^= 0xff;
    import_bytes_rejected(&env, &corrupt, "import");
    import_bytes_rejected(&env, b"", "is empty");
}

#[test]
fn escaping_and_special_entries() {
    let env = setup();
    import_bytes_rejected(&env, &make_tar(&[E::RawFile("../evil", b"x")]), "'..'");
    import_bytes_rejected(&env, &make_tar(&[E::RawFile("a/../../evil", b"x")]), "'..'");
    import_bytes_rejected(
        &env,
        &make_tar(&[E::RawFile("/etc/evil", b"x")]),
        "absolute",
    );
    import_bytes_rejected(
        &env,
        &make_tar(&[E::Dir("dev/", 0o755), E::CharDev("dev/sda", 8, 0)]),
        "character device",
    );
    import_bytes_rejected(&env, &make_tar(&[E::Hard("h", "../../etc/shadow")]), "'..'");
    import_bytes_rejected(
        &env,
        &make_tar(&[E::File(".wh.passwd", b"", 0o644)]),
        "whiteout",
    );
    // Writing through a symlink that points outside must not escape, whatever happens.
    let outside = env.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let tar = make_tar(&[
        E::Sym("link", outside.to_str().unwrap()),
        E::File("link/pwned", b"x", 0o644),
    ]);
    write(&env.path("sym.tar"), &tar);
    let _ = env.run(&[
        "ctr-img",
        "import",
        env.path("sym.tar").to_str().unwrap(),
        "sym",
    ]);
    assert!(
        !outside.join("pwned").exists(),
        "a tar entry escaped through a symlink"
    );
    assert!(check_store(&env.dataroot()).is_empty());
}

#[test]
fn bad_references_and_sources() {
    let env = setup();
    let good = env.path("good.tar");
    let g = good.to_str().unwrap();
    assert_rejected(
        &env,
        &["ctr-img", "import", g, "../../x:tag"],
        "invalid reference format",
    );
    assert_rejected(
        &env,
        &["ctr-img", "import", g, "UPPER:tag"],
        "must be lowercase",
    );
    let long = "a".repeat(256);
    assert_rejected(&env, &["ctr-img", "import", g, &long], "255 characters");
    let long_tag = format!("a:{}", "t".repeat(129));
    assert_rejected(&env, &["ctr-img", "import", g, &long_tag], "128 characters");
    assert_rejected(
        &env,
        &[
            "ctr-img",
            "import",
            g,
            "a@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ],
        "digest",
    );
    assert_rejected(
        &env,
        &["ctr-img", "import", "/nonexistent/file.tar", "x"],
        "No such file",
    );
    assert_rejected(
        &env,
        &["ctr-img", "import", env.dataroot().to_str().unwrap(), "x"],
        "regular file",
    );
    // Over the 1 GiB limit (a sparse file: no disk used).
    let big = env.path("big.tar");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1024 * 1024 * 1024 + 1)
        .unwrap();
    assert_rejected(
        &env,
        &["ctr-img", "import", big.to_str().unwrap(), "x"],
        "limit",
    );
    // Missing reference: a usage error from the argument parser.
    let out = env.run(&["ctr-img", "import", g]);
    assert_eq!(out.status.code(), Some(1));
}
