//! `packaging/install.sh` into a temporary DESTDIR: every file where a system package puts
//! it, with the modes of the upstream manual's "File and permission" table, and the packaged
//! config files as our config reader understands them.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn install(dest: &Path) -> std::process::Output {
    Command::new("sh")
        .arg(repo().join("packaging/install.sh"))
        .env("DESTDIR", dest)
        .env("PREFIX", "/usr")
        .env("BIN", bin())
        .output()
        .expect("run install.sh")
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn install_script_lays_down_the_manual_modes() {
    let env = Env::new();
    let dest = env.path("root");
    let out = install(&dest);
    assert!(
        out.status.success(),
        "install.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let p = |rel: &str| dest.join(rel);
    let expect: &[(&str, u32)] = &[
        ("usr/bin/isula-build", 0o550),
        ("usr/lib/systemd/system/isula-build.service", 0o640),
        ("etc/isula-build", 0o650),
        ("etc/isula-build/configuration.toml", 0o600),
        ("etc/isula-build/policy.json", 0o600),
        ("etc/isula-build/registries.toml", 0o600),
        ("etc/isula-build/storage.toml", 0o600),
        ("var/lib/isula-build", 0o700),
        ("usr/share/bash-completion/completions/isula-build", 0o644),
        ("usr/share/zsh/site-functions/_isula-build", 0o644),
        (
            "usr/share/fish/vendor_completions.d/isula-build.fish",
            0o644,
        ),
    ];
    for (rel, m) in expect {
        assert_eq!(mode(&p(rel)), *m, "{rel}: mode {:o}", mode(&p(rel)));
    }
    // isula-builder is the same binary under another name.
    assert_eq!(
        std::fs::read_link(p("usr/bin/isula-builder")).expect("symlink"),
        PathBuf::from("isula-build")
    );
    assert_eq!(
        std::fs::read(p("usr/bin/isula-builder")).expect("through the link"),
        std::fs::read(bin()).expect("binary")
    );
    // Every generated man page, 0644.
    let mut committed: Vec<String> = std::fs::read_dir(repo().join("man"))
        .expect("man/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    committed.sort();
    assert!(committed.contains(&"isula-build-ctr-img-build.1".to_string()));
    for page in &committed {
        assert_eq!(
            mode(&p(&format!("usr/share/man/man1/{page}"))),
            0o644,
            "{page}"
        );
    }
    // The configs installed are the packaged ones.
    for f in [
        "configuration.toml",
        "storage.toml",
        "registries.toml",
        "policy.json",
    ] {
        assert_eq!(
            std::fs::read(p(&format!("etc/isula-build/{f}"))).unwrap(),
            std::fs::read(repo().join("packaging").join(f)).unwrap(),
            "{f}"
        );
    }
    // A unit for the compat mode: isula-builder, Type=notify.
    let unit = std::fs::read_to_string(p("usr/lib/systemd/system/isula-build.service")).unwrap();
    assert!(unit.contains("\nType=notify\n"), "{unit}");
    assert!(
        unit.contains("\nExecStart=/usr/bin/isula-builder\n"),
        "{unit}"
    );

    // A second run keeps an edited config and says so (as upstream's make install).
    let conf = p("etc/isula-build/configuration.toml");
    std::fs::write(&conf, "debug = true\n").unwrap();
    let out = install(&dest);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("configuration.toml") && said.contains("please replace it manually"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "debug = true\n");
    assert_eq!(mode(&conf), 0o600);
}

#[test]
fn install_script_refuses_a_missing_binary() {
    let env = Env::new();
    let out = Command::new("sh")
        .arg(repo().join("packaging/install.sh"))
        .env("DESTDIR", env.path("root"))
        .env("BIN", env.path("no-such-binary"))
        .output()
        .expect("run install.sh");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not found"), "{err}");
    assert!(!env.path("root").exists());
}

#[test]
fn packaged_configs_mean_the_documented_defaults() {
    let dir = repo().join("packaging");
    let s = isula_build::config::Settings::resolve(&isula_build::config::GlobalOptions {
        config_dir: Some(dir.clone()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("packaged configs do not load: {e}"));
    assert_eq!(s.dataroot, PathBuf::from("/var/lib/isula-build"));
    assert_eq!(s.runroot, PathBuf::from("/var/run/isula-build"));
    assert_eq!(s.storage_driver, "overlay");
    assert_eq!(s.group, "isula");
    assert_eq!(s.runtime, "");
    assert_eq!(s.log_level, "error");
    assert!(!s.debug);
    assert!(s.registries.search.is_empty());
    assert!(s.registries.insecure.is_empty());
    assert!(s.registries.blocked.is_empty());
    // And the binary accepts them.
    let env = Env::new();
    let out = Command::new(bin())
        .args(["--config", dir.to_str().expect("utf8")])
        .arg("--dataroot")
        .arg(env.dataroot())
        .arg("--runroot")
        .arg(env.runroot())
        .args(["ctr-img", "images"])
        .env_remove("ISULABUILD_CLI_EXPERIMENTAL")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
