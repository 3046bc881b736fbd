//! `ctr-img build`.

use crate::build::driver::{self, BuildOptions, DockerfileSource, ImageFormat};
use crate::build::output::OutputError;
use crate::build::stages::BuildArgs;
use crate::cli::CliError;
use crate::config::Settings;
use crate::storage::overlay;
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct BuildArgsCli {
    /// Path of the Dockerfile, or - to read it from stdin [default: CONTEXT_DIR/Dockerfile]
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<String>,
    /// Build-time variable KEY=VALUE (KEY alone takes the value from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Name for the built image; NAME means NAME:latest
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Also export the image: docker-archive:PATH[:NAME:TAG], oci-archive:PATH[:NAME:TAG],
    /// docker://REGISTRY/REPO:TAG (push), docker-daemon:NAME:TAG (load into the local Docker
    /// engine; DOCKER_HOST=unix://SOCKET picks its socket), isulad:NAME:TAG (`isula load`)
    #[arg(short = 'o', long = "output", value_name = "TRANSPORT:DEST")]
    pub output: Option<String>,
    /// Static build: build-time="YYYY-MM-DD HH:MM:SS" fixes every timestamp
    #[arg(long = "build-static", value_name = "build-time=TIME")]
    pub build_static: Option<String>,
    /// Give RUN the proxy variables of this environment
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub proxy: bool,
    /// Add a Linux capability for RUN
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Image format: docker or oci (experimental)
    #[arg(long, value_parser = ["docker", "oci"])]
    pub format: Option<String>,
    /// Build up to this stage
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Build context directory
    #[arg(value_name = "CONTEXT_DIR", default_value = ".")]
    pub context: PathBuf,
}

fn parse_build_args(raw: &[String]) -> Result<BuildArgs, CliError> {
    let mut out = BuildArgs::new();
    for a in raw {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.insert(k, v),
            Some(_) => {
                return Err(CliError::Usage(format!(
                    "invalid build-arg {a:?}: empty name"
                )))
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.as_str(), v);
                }
            }
        }
    }
    Ok(out)
}

pub fn run(settings: &Settings, args: BuildArgsCli) -> Result<(), CliError> {
    // Mounts made by this process must die with it: enter a private mount namespace while
    // still single-threaded.
    overlay::enter_private_mount_namespace().map_err(|e| CliError::Other(e.to_string()))?;
    let format = match args.format.as_deref() {
        None | Some("docker") => ImageFormat::Docker,
        Some(_) if !settings.experimental => {
            return Err(CliError::Usage(
                "--format is experimental: enable it with --experimental or ISULABUILD_CLI_EXPERIMENTAL=enabled".into(),
            ))
        }
        Some(_) => ImageFormat::Oci,
    };
    // Capabilities are checked before anything is built.
    // Extra capabilities (CAP_SYS_ADMIN can mount a devtmpfs, ...) are root's to give: a
    // group member of a setuid install builds with the default set.
    if !args.cap_add.is_empty() {
        crate::privilege::refuse_root_only(&["--cap-add"])
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    let cap_add =
        crate::sandbox::validate_caps(&args.cap_add).map_err(|e| CliError::Usage(e.to_string()))?;
    let context = std::path::absolute(&args.context).map_err(|e| CliError::Other(e.to_string()))?;
    let dockerfile = match args.file.as_deref() {
        Some("-") => {
            let mut t = String::new();
            std::io::stdin()
                .take(crate::build::parser::MAX_DOCKERFILE_SIZE as u64 + 1)
                .read_to_string(&mut t)
                .map_err(|e| CliError::Other(format!("read Dockerfile from stdin: {e}")))?;
            DockerfileSource::Text(t)
        }
        Some(p) => DockerfileSource::Path(PathBuf::from(p)),
        None => DockerfileSource::Path(context.join("Dockerfile")),
    };
    let static_time = match &args.build_static {
        Some(v) => Some(driver::parse_build_static(v).map_err(CliError::Usage)?),
        None => None,
    };
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(
            v.parse::<i64>()
                .map_err(|_| CliError::Usage(format!("invalid SOURCE_DATE_EPOCH {v:?}")))?,
        ),
        _ => None,
    };
    let proxy_env = if args.proxy {
        crate::build::job::proxy_env()
    } else {
        Vec::new()
    };
    let opts = BuildOptions {
        context_dir: context,
        dockerfile,
        build_args: parse_build_args(&args.build_args)?,
        tags: args.tag.iter().cloned().collect(),
        target: args.target.clone(),
        static_time,
        source_date_epoch,
        proxy_env,
        cap_add,
        format,
        runtime: (!settings.runtime.is_empty()).then(|| settings.runtime.clone()),
    };
    let built = crate::build::job::run(
        settings,
        &opts,
        args.output.as_deref(),
        args.iidfile.as_deref(),
        &|line: &str| println!("{line}"),
    )
    .map_err(|e| match e {
        crate::build::job::JobError::Output(OutputError::Interrupted(sig)) => {
            // Temporary files are gone: die of the signal as the user asked.
            crate::interrupt::reraise(sig);
            CliError::Other(OutputError::Interrupted(sig).to_string())
        }
        crate::build::job::JobError::Output(e) => CliError::Usage(e.to_string()),
        e => CliError::Other(e.to_string()),
    })?;
    println!("Build success with image id: {}", built.image_id);
    Ok(())
}
