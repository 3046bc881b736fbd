//! Global options, config files, info, version, completion.

use crate::common::*;

#[test]
fn config_file_errors_name_the_file_and_key() {
    let env = Env::new();
    std::fs::write(
        env.conf().join("configuration.toml"),
        "debug = false\ndata_root = 42\n",
    )
    .unwrap();
    let e = env.fails(&["ctr-img", "images"]);
    assert!(
        e.contains("configuration.toml") && e.contains("data_root") && e.contains("line 2"),
        "{e}"
    );
    std::fs::write(
        env.conf().join("configuration.toml"),
        "this is = = not toml",
    )
    .unwrap();
    let e = env.fails(&["info"]);
    assert!(e.contains("configuration.toml"), "{e}");
    std::fs::write(
        env.conf().join("configuration.toml"),
        format!("# {}\n", "x".repeat(1 << 20)),
    )
    .unwrap();
    let e = env.fails(&["info"]);
    assert!(e.contains("1 MiB"), "{e}");
}

#[test]
fn data_root_from_config_file_and_flag_precedence() {
    let env = Env::new();
    let from_file = env.path("from-file");
    std::fs::write(
        env.conf().join("configuration.toml"),
        format!(
            "data_root = \"{}\"\nrun_root = \"{}\"\n",
            from_file.display(),
            env.path("run2").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["--config", env.conf().to_str().unwrap(), "info"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("DataRoot:     {}", from_file.display())),
        "{text}"
    );
    assert!(from_file.join("blobs/sha256").is_dir());
    // The flag wins.
    let text = env.ok(&["info"]);
    assert!(
        text.contains(&format!("DataRoot:     {}", env.dataroot().display())),
        "{text}"
    );
}

#[test]
fn info_sections() {
    let env = Env::new();
    std::fs::write(
        env.conf().join("registries.toml"),
        "[registries.search]\nregistries = [\"docker.io\"]\n[registries.insecure]\nregistries = [\"localhost:5000\"]\n",
    )
    .unwrap();
    let text = env.ok(&["info", "-H", "-V"]);
    for want in [
        "General:",
        "MemTotal:",
        "SwapFree:",
        "OCI Runtime:",
        "Builders:     0",
        "Store:",
        "Storage Driver:     overlay",
        "Backing Filesystem:",
        "Registry:",
        "    docker.io",
        "    localhost:5000",
        "Runtime:",
        "VmRSS:",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(
        text.contains(" GB") || text.contains(" MB"),
        "-H uses units: {text}"
    );
    let raw = env.ok(&["info"]);
    assert!(!raw.lines().any(|l| l == "Runtime:"));
    let total: u64 = raw
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("MemTotal in bytes");
    assert!(total > 1 << 20);
}

#[test]
fn version_and_completion() {
    let env = Env::new();
    let v = env.ok(&["version"]);
    for want in [
        "Version:",
        "Rust Version:",
        "Git Commit:",
        "Built:",
        "OS/Arch:       linux/",
    ] {
        assert!(v.contains(want), "{v}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let c = env.ok(&["completion", shell]);
        assert!(
            c.contains("ctr-img") && c.contains("import"),
            "{shell}: {}",
            &c[..c.len().min(200)]
        );
    }
}

#[test]
fn experimental_env_var_is_honoured() {
    let env = Env::new();
    let text = env.ok(&["info"]);
    assert!(text.contains("Experimental: false"));
    let out = env
        .cmd()
        .arg("info")
        .env("ISULABUILD_CLI_EXPERIMENTAL", "enabled")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Experimental: true"));
    let text = env.ok(&["--experimental", "info"]);
    assert!(text.contains("Experimental: true"));
}
