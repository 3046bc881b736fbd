//! One build from options to delivered result: the store is opened, the `-o` output is
//! checked, the driver runs with the sandbox and the pulling resolver, the output is
//! delivered and the image ID written to the iidfile. `ctr-img build` and the compat
//! server's build worker both run builds through [`run`]; they differ only in where the
//! log lines go and what they print at the end.

use crate::build::driver::{self, BuildError, BuildOptions, Built};
use crate::build::host::{PullingResolver, SandboxExecutor};
use crate::build::output::{Output, OutputError};
use crate::config::Settings;
use crate::storage::{Store, StoreError};
use std::path::{Path, PathBuf};

/// Why a build job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("write {}: {source}", path.display())]
    Iidfile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The proxy variables set in this process's environment, as (name, value).
pub fn proxy_env() -> Vec<(String, String)> {
    crate::config::PROXY_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// Run one build. `output` is a raw `-o TRANSPORT:DEST` value, checked before anything is
/// built; `log` gets the `STEP n: ...` lines, `Pulling NAME` and the outputs' lines. The
/// caller must already be in a private mount namespace
/// ([`crate::storage::overlay::enter_private_mount_namespace`]).
pub fn run(
    settings: &Settings,
    opts: &BuildOptions,
    output: Option<&str>,
    iidfile: Option<&Path>,
    log: &dyn Fn(&str),
) -> Result<Built, JobError> {
    let output = output.map(Output::parse).transpose()?;
    if let Some(o) = &output {
        o.precheck()?;
    }
    let store = Store::open(&settings.dataroot, &settings.runroot)?;
    let resolver = PullingResolver { settings, log };
    let mut log_mut = |line: &str| log(line);
    let built = driver::build(&store, opts, &SandboxExecutor, &resolver, &mut log_mut)?;
    if let Some(o) = &output {
        o.deliver(&store, settings, &built.image_id, opts.format, &mut log_mut)?;
    }
    if let Some(f) = iidfile {
        write_private(f, built.image_id.as_bytes())?;
    }
    Ok(built)
}

/// Create or replace `path` with mode 0600 and write `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), JobError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| JobError::Iidfile {
        path: path.to_path_buf(),
        source,
    };
    // The user's file: written with their rights when installed setuid.
    let mut f = crate::privilege::as_caller(|| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
    })
    .map_err(err)?;
    f.write_all(bytes).map_err(err)
}
