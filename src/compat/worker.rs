//! The build worker: one child process per Build RPC, the same binary re-executed from
//! `/proc/self/exe` with a hidden first argument.
//!
//! Why a child: a build mounts overlays, and `ctr-img build` keeps its mounts from outliving
//! it by entering a private mount namespace while single-threaded; the server is
//! multi-threaded, so it cannot. A fresh process can, and killing its process group
//! cancels the build completely: the sandbox helpers below it die by PDEATHSIG, the
//! namespace's mounts go with its last process, build markers and work-dir locks are
//! `flock`s that die too, and the store is crash-consistent by design.
//!
//! Protocol: the job (JSON, [`WorkerJob`]) on stdin; the log (STEP lines, RUN output on
//! both streams, the final line) on stderr, which is also made the worker's stdout so RUN
//! steps write there; the result ([`WorkerResult`], JSON) on the original stdout, kept on a
//! close-on-exec descriptor that no RUN step can reach or forge.

use crate::build::driver::{BuildOptions, DockerfileSource, ImageFormat};
use crate::build::stages::BuildArgs;
use crate::config::Settings;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// The hidden first argument that selects the worker.
pub const WORKER_ARG: &str = "__isula-builder-build-worker";
/// Largest job accepted on stdin (a Dockerfile is at most 1 MiB; build args add little).
const MAX_JOB: u64 = 8 * 1024 * 1024;

/// One build, as the server hands it to a worker.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkerJob {
    pub settings: Settings,
    pub context_dir: PathBuf,
    pub dockerfile: String,
    pub build_args: Vec<(String, String)>,
    pub tags: Vec<String>,
    pub static_time: Option<i64>,
    pub proxy_env: Vec<(String, String)>,
    pub cap_add: Vec<String>,
    pub oci: bool,
    pub output: Option<String>,
    pub iidfile: Option<PathBuf>,
}

/// What a worker reports at the end.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct WorkerResult {
    pub image_id: Option<String>,
    pub error: Option<String>,
}

/// Whether this process was started as a build worker.
pub fn is_worker_invocation() -> bool {
    std::env::args_os().nth(1).is_some_and(|a| a == WORKER_ARG)
}

/// The worker's `main`. Refuses unless the real user is root (a setuid installation must
/// not let anyone drive it directly).
pub fn worker_main() -> ExitCode {
    if !nix::unistd::getuid().is_root() {
        eprintln!("{WORKER_ARG} is internal to isula-builder");
        return ExitCode::from(1);
    }
    // Keep the result channel away from RUN steps: a close-on-exec copy of stdout, then
    // stdout becomes the log (stderr).
    // (`try_clone_to_owned` duplicates with F_DUPFD_CLOEXEC.)
    use std::os::fd::AsFd;
    let mut result_out = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            eprintln!("build worker: duplicate stdout: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = nix::unistd::dup2_stdout(std::io::stderr()) {
        eprintln!("build worker: redirect stdout: {e}");
        return ExitCode::from(1);
    }
    let res = run_job();
    let ok = res.is_ok();
    let result = match res {
        Ok(id) => WorkerResult {
            image_id: Some(id),
            error: None,
        },
        Err(e) => WorkerResult {
            image_id: None,
            error: Some(e),
        },
    };
    let _ = std::io::stdout().flush();
    let text = serde_json::to_vec(&result).unwrap_or_default();
    if result_out.write_all(&text).is_err() {
        return ExitCode::from(1);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_job() -> Result<String, String> {
    let mut text = Vec::new();
    std::io::stdin()
        .take(MAX_JOB + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("read build job: {e}"))?;
    if text.len() as u64 > MAX_JOB {
        return Err("build job is too large".into());
    }
    let job: WorkerJob =
        serde_json::from_slice(&text).map_err(|e| format!("build job does not parse: {e}"))?;
    // Mounts made from here on die with this process.
    crate::storage::overlay::enter_private_mount_namespace().map_err(|e| e.to_string())?;
    let mut build_args = BuildArgs::new();
    for (k, v) in &job.build_args {
        build_args.insert(k.as_str(), v.as_str());
    }
    let settings = job.settings;
    let opts = BuildOptions {
        context_dir: job.context_dir,
        dockerfile: DockerfileSource::Text(job.dockerfile),
        build_args,
        tags: job.tags,
        target: None,
        static_time: job.static_time,
        source_date_epoch: None,
        proxy_env: job.proxy_env,
        cap_add: job.cap_add,
        format: if job.oci {
            ImageFormat::Oci
        } else {
            ImageFormat::Docker
        },
        runtime: (!settings.runtime.is_empty()).then(|| settings.runtime.clone()),
    };
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let built = crate::build::job::run(
        &settings,
        &opts,
        job.output.as_deref(),
        job.iidfile.as_deref(),
        &say,
    )
    .map_err(|e| e.to_string())?;
    // Upstream's last line.
    match &job.iidfile {
        Some(p) => say(&format!(
            "Write image ID [{}] to file: {}",
            built.image_id,
            p.display()
        )),
        None => say(&format!("Build success with image id: {}", built.image_id)),
    }
    Ok(built.image_id)
}
