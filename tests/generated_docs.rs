//! `man/` (one page per command and subcommand) and `completions/` (bash, zsh, fish) are
//! generated from the clap definitions (`isula_build::cli::Cli`) and committed. This test
//! regenerates them in memory and fails when the committed files differ; with
//! `UPDATE_GENERATED=1` it rewrites them instead:
//!
//! ```sh
//! UPDATE_GENERATED=1 cargo test --test generated_docs
//! ```

use clap::CommandFactory;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const REGENERATE: &str = "UPDATE_GENERATED=1 cargo test --test generated_docs";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every man page, by file name: `isula-build.1`, `isula-build-ctr-img.1`,
/// `isula-build-ctr-img-build.1`, …, and `isula-builder.1` (hidden commands and `help` left
/// out).
fn man_pages() -> BTreeMap<String, Vec<u8>> {
    fn walk(cmd: clap::Command, out: &mut BTreeMap<String, Vec<u8>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, out);
        }
        let man = clap_mangen::Man::new(cmd)
            .source(format!("isula-build {}", env!("CARGO_PKG_VERSION")))
            .manual("isula-build Manual");
        let mut page = Vec::new();
        man.render(&mut page).expect("render man page");
        out.insert(man.get_filename(), page);
    }
    let mut cmd = isula_build::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = BTreeMap::new();
    walk(cmd, &mut out);
    // The compatibility server (the same binary started as `isula-builder`).
    let mut server = isula_build::compat::flags::ServerArgs::command();
    server.build();
    walk(server, &mut out);
    out
}

/// Completion scripts, by file name; the same bytes `isula-build completion SHELL` prints.
fn completions() -> BTreeMap<String, Vec<u8>> {
    use clap_complete::Shell;
    let mut out = BTreeMap::new();
    for (shell, file) in [
        (Shell::Bash, "isula-build.bash"),
        (Shell::Zsh, "_isula-build"),
        (Shell::Fish, "isula-build.fish"),
    ] {
        let mut cmd = isula_build::cli::Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, "isula-build", &mut script);
        out.insert(file.to_string(), script);
    }
    out
}

/// Compare `dir` with `want`; with `update`, make it equal. Returns what differed.
fn sync_dir(dir: &Path, want: &BTreeMap<String, Vec<u8>>, update: bool) -> Vec<String> {
    let mut stale = Vec::new();
    if update {
        std::fs::create_dir_all(dir).expect("create generated dir");
    }
    for (name, bytes) in want {
        let p = dir.join(name);
        match std::fs::read(&p) {
            Ok(have) if &have == bytes => {}
            Ok(_) => stale.push(format!("{} differs", p.display())),
            Err(_) => stale.push(format!("{} is missing", p.display())),
        }
        if update {
            std::fs::write(&p, bytes).expect("write generated file");
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !want.contains_key(&name) {
                stale.push(format!("{} is no longer generated", e.path().display()));
                if update {
                    std::fs::remove_file(e.path()).expect("remove old generated file");
                }
            }
        }
    }
    stale
}

#[test]
fn man_pages_and_completions_are_up_to_date() {
    let update = std::env::var("UPDATE_GENERATED").is_ok_and(|v| v == "1");
    let mut stale = sync_dir(&root().join("man"), &man_pages(), update);
    stale.extend(sync_dir(
        &root().join("completions"),
        &completions(),
        update,
    ));
    if update {
        eprintln!(
            "regenerated man/ and completions/ ({} changes)",
            stale.len()
        );
        return;
    }
    assert!(
        stale.is_empty(),
        "generated files are stale ({}); regenerate them with `{REGENERATE}` and commit",
        stale.join(", ")
    );
}

#[test]
fn every_command_has_a_page_and_the_completion_command_prints_the_committed_script() {
    let pages = man_pages();
    for name in [
        "isula-build.1",
        "isula-build-ctr-img.1",
        "isula-build-ctr-img-build.1",
        "isula-build-ctr-img-save.1",
        "isula-build-manifest-push.1",
        "isula-build-login.1",
        "isula-build-completion.1",
        "isula-builder.1",
    ] {
        assert!(pages.contains_key(name), "no {name} in {:?}", pages.keys());
    }
    assert!(
        !pages.keys().any(|k| k.contains("-help")),
        "{:?}",
        pages.keys()
    );
    let build = String::from_utf8_lossy(&pages["isula-build-ctr-img-build.1"]).into_owned();
    assert!(build.contains("docker\\-daemon:NAME:TAG"), "{build}");
    // The binary's `completion` command and the committed file agree.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_isula-build"))
        .args(["completion", "bash"])
        .output()
        .expect("run isula-build completion");
    assert!(out.status.success());
    assert_eq!(out.stdout, completions()["isula-build.bash"]);
}
