//! Many processes on one data root at once.

use crate::common::*;
use std::process::Child;

#[test]
fn twenty_processes_import_tag_rm_and_list_at_once() {
    let env = Env::new();
    write(&env.path("base.tar"), &small_rootfs("base"));
    let base = env.import(&env.path("base.tar"), "base");
    for round in 0..3 {
        for i in 0..5 {
            write(
                &env.path(&format!("r{round}-{i}.tar")),
                &small_rootfs(&format!("{round}-{i}")),
            );
            env.ok(&["ctr-img", "tag", "base", &format!("gone{round}-{i}")]);
        }
        let mut children: Vec<(String, Child)> = Vec::new();
        for i in 0..5 {
            let tar = env.path(&format!("r{round}-{i}.tar"));
            let name = format!("imp{round}-{i}");
            let c = env
                .cmd()
                .args(["ctr-img", "import", tar.to_str().unwrap(), &name])
                .spawn()
                .unwrap();
            children.push((format!("import {name}"), c));
            let t = format!("t{round}-{i}");
            let c = env
                .cmd()
                .args(["ctr-img", "tag", &base[..12], &t])
                .spawn()
                .unwrap();
            children.push((format!("tag {t}"), c));
            let g = format!("gone{round}-{i}");
            let c = env
                .cmd()
                .args(["ctr-img", "rm", &g])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            children.push((format!("rm {g}"), c));
            let c = env
                .cmd()
                .args(["ctr-img", "images"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            children.push(("images".into(), c));
        }
        assert_eq!(children.len(), 20);
        for (what, mut c) in children {
            let st = c.wait().unwrap();
            assert!(st.success(), "{what} failed in round {round}");
        }
        let problems = check_store(&env.dataroot());
        assert!(problems.is_empty(), "round {round}: {problems:?}");
    }
    let ix = env.index();
    let all: Vec<String> = ix["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
        })
        .collect();
    for round in 0..3 {
        for i in 0..5 {
            assert!(
                all.contains(&format!("imp{round}-{i}:latest")),
                "lost imp{round}-{i}"
            );
            assert!(
                all.contains(&format!("t{round}-{i}:latest")),
                "lost tag t{round}-{i}"
            );
            assert!(
                !all.contains(&format!("gone{round}-{i}:latest")),
                "rm lost gone{round}-{i}"
            );
        }
    }
    assert!(all.contains(&"base:latest".to_string()));
    // Every listed image opens: the table lists them all.
    let q = env.ok(&["ctr-img", "images", "-q"]);
    assert_eq!(q.lines().count(), 16);
}
