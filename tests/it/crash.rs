//! kill -9 at random moments during import: the store must stay valid.

use crate::common::*;
use std::time::{Duration, Instant};

/// A rootfs of many files with incompressible content, so an import takes a while.
fn big_rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for d in 0..40 {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_path(format!("d{d}/")).unwrap();
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        for f in 0..50 {
            let data: Vec<u8> = (0..16 * 1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let mut h = tar::Header::new_gnu();
            h.set_path(format!("d{d}/f{f}")).unwrap();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn kill_9_during_import_leaves_a_valid_store() {
    let env = Env::new();
    let big = env.path("big.tar");
    write(&big, &big_rootfs());
    write(&env.path("small.tar"), &small_rootfs("s"));
    env.import(&env.path("small.tar"), "keep");
    // How long one import takes here.
    let t = Instant::now();
    env.import(&big, "timing");
    let full = t.elapsed();
    env.ok(&["ctr-img", "rm", "timing"]);

    let mut killed_mid_way = 0;
    for i in 0..20 {
        let delay = Duration::from_micros(rand::random_range(
            0..(full.as_micros() as u64 * 6 / 5).max(1),
        ));
        let mut child = env
            .cmd()
            .args([
                "ctr-img",
                "import",
                big.to_str().unwrap(),
                &format!("crash{i}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished {
            killed_mid_way += 1;
        }
        let problems = check_store(&env.dataroot());
        assert!(
            problems.is_empty(),
            "after kill {i} at {delay:?}: {problems:?}"
        );
        // The store lists and opens.
        let table = env.ok(&["ctr-img", "images"]);
        assert!(table.contains("keep"), "{table}");
    }
    assert!(
        killed_mid_way >= 5,
        "only {killed_mid_way} kills landed during an import"
    );
    // The next command cleans tmp/; removing everything sweeps orphans.
    let out = env.ok(&["ctr-img", "rm", "-a"]);
    assert!(out.contains("Deleted"));
    let tmp: Vec<_> = std::fs::read_dir(env.dataroot().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(tmp.is_empty(), "tmp/ not cleaned: {tmp:?}");
    assert_eq!(
        std::fs::read_dir(env.dataroot().join("layers"))
            .unwrap()
            .count(),
        0,
        "orphan layers"
    );
    assert_eq!(
        std::fs::read_dir(env.dataroot().join("blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "orphan blobs"
    );
    // And it still works.
    env.import(&env.path("small.tar"), "again");
    assert!(check_store(&env.dataroot()).is_empty());
}
