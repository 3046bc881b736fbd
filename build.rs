//! Records the git commit, build time and compiler version for `isula-build version`, and
//! generates the gRPC code of the `isula-builder` compatibility server from
//! `proto/control.proto` (parsed by protox, pure Rust: no `protoc` needed to build).
use std::process::Command;

fn compile_proto() {
    println!("cargo:rerun-if-changed=proto/control.proto");
    let fds = match protox::compile(["control.proto"], ["proto"]) {
        Ok(f) => f,
        Err(e) => panic!("proto/control.proto: {e}"),
    };
    if let Err(e) = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)
    {
        panic!("generate gRPC code from proto/control.proto: {e}");
    }
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    compile_proto();
    let commit =
        output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let commit = if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    };
    let built = std::env::var("SOURCE_DATE_EPOCH").ok().unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().to_string())
            .unwrap_or_else(|_| "0".into())
    });
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ISULA_BUILD_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=ISULA_BUILD_BUILD_TIME={built}");
    println!("cargo:rustc-env=ISULA_BUILD_RUSTC_VERSION={rustc_version}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
