//! `ctr-img build`.

use crate::build::driver::{
    self, BuildOptions, DockerfileSource, ImageFormat, ImageResolver, RunExecutor, RunRequest,
};
use crate::build::stages::BuildArgs;
use crate::cli::{open_store, CliError};
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
    /// Also export the image: docker-archive:PATH[:NAME:TAG], oci-archive:PATH[:NAME:TAG], docker://REGISTRY/REPO:TAG
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

const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
];

/// RUN executor backed by the built-in sandbox (or an OCI runtime).
struct SandboxExecutor;

impl RunExecutor for SandboxExecutor {
    fn run(&self, req: &RunRequest) -> Result<i32, String> {
        let spec = crate::sandbox::RunSpec {
            lower_dirs: req.lower_dirs.clone(),
            upper_dir: req.upper_dir.clone(),
            work_dir: req.work_dir.clone(),
            args: req.args.clone(),
            env: req.env.clone(),
            cwd: req.cwd.clone(),
            user: req.user.clone(),
            hostname: req.hostname.clone(),
            cap_add: req.cap_add.clone(),
            runtime: req.runtime.clone(),
            bundle_dir: req.bundle_dir.clone(),
        };
        crate::sandbox::run(&spec).map_err(|e| e.to_string())
    }
}

/// Resolves `FROM`/`COPY --from` images from the store, pulling those it lacks.
struct PullingResolver<'a> {
    settings: &'a Settings,
}

impl ImageResolver for PullingResolver<'_> {
    fn resolve(&self, store: &crate::storage::Store, reference: &str) -> Result<String, String> {
        let ix = store.index().map_err(|e| e.to_string())?;
        match ix.find(reference) {
            Ok(img) => return Ok(img.id.clone()),
            Err(crate::storage::FindError::Ambiguous { .. }) => {
                return Err(ix
                    .find(reference)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default())
            }
            Err(_) => {}
        }
        println!("Pulling {reference}");
        crate::registry::pull::pull(store, self.settings, reference, &|_| {})
            .map(|p| p.id)
            .map_err(|e| {
                format!("image {reference:?} is not in the local store and pulling it failed: {e}")
            })
    }
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
        PROXY_VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect()
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
    let output = match &args.output {
        Some(o) => Some(parse_output(o)?),
        None => None,
    };
    if let Some(Output::Archive { path, .. }) = &output {
        if path.exists() {
            return Err(CliError::Usage(format!(
                "output file already exist: {:?}, try to remove existing tarball or rename output file",
                path.display().to_string()
            )));
        }
    }
    let store = open_store(settings)?;
    let mut log = |line: &str| println!("{line}");
    let resolver = PullingResolver { settings };
    let built = driver::build(&store, &opts, &SandboxExecutor, &resolver, &mut log)
        .map_err(|e| CliError::Other(e.to_string()))?;
    if let Some(Output::Archive { format, path, name }) = &output {
        let mut progress = |_p: crate::image::load::Progress| {};
        crate::image::save::save_as(
            &store,
            &built.image_id,
            name.as_deref(),
            path,
            *format,
            &mut progress,
        )?;
    }
    if let Some(Output::Registry(dest)) = &output {
        let opts = crate::registry::push::PushOptions {
            format: if format == ImageFormat::Oci {
                crate::registry::media::Format::Oci
            } else {
                crate::registry::media::Format::Docker
            },
            chunk_size: None,
        };
        crate::registry::push::push(&store, settings, &built.image_id, dest, opts, &|_| {})
            .map_err(|e| CliError::Other(format!("push to {dest} failed: {e}")))?;
        println!("Push success with image: {dest}");
    }
    if let Some(f) = &args.iidfile {
        write_private(f, built.image_id.as_bytes())?;
    }
    println!("Build success with image id: {}", built.image_id);
    Ok(())
}

/// A parsed `-o TRANSPORT:DEST`.
#[derive(Debug, Clone, PartialEq)]
enum Output {
    /// `docker://REGISTRY/REPO:TAG`: push the result.
    Registry(String),
    Archive {
        format: crate::image::save::Format,
        path: PathBuf,
        name: Option<String>,
    },
}

/// `docker-archive:PATH[:NAME[:TAG]]` or `oci-archive:PATH[:NAME[:TAG]]`.
fn parse_output(o: &str) -> Result<Output, CliError> {
    const LONGEST: usize = 4096;
    if o.len() > LONGEST {
        return Err(CliError::Usage(format!(
            "output should not longer than {LONGEST}"
        )));
    }
    let (transport, dest) = o.split_once(':').ok_or_else(|| {
        CliError::Usage(format!(
            "invalid output {o:?}: expected TRANSPORT:DESTINATION"
        ))
    })?;
    if transport.is_empty() {
        return Err(CliError::Usage("transport should not be empty".into()));
    }
    if dest.is_empty() {
        return Err(CliError::Usage("destination should not be empty".into()));
    }
    let format = match transport {
        "docker" => {
            let d = dest.trim_start_matches("//");
            if d.is_empty() {
                return Err(CliError::Usage("destination should not be empty".into()));
            }
            return Ok(Output::Registry(d.to_string()));
        }
        "docker-archive" => crate::image::save::Format::DockerArchive,
        "oci-archive" => crate::image::save::Format::Oci,
        other => return Err(CliError::Usage(format!("transport {other:?} not support"))),
    };
    let (path, name) = match dest.split_once(':') {
        Some((p, n)) if !n.is_empty() => (p, Some(n.to_string())),
        Some((p, _)) => (p, None),
        None => (dest, None),
    };
    if let Some(n) = &name {
        crate::image::reference::Reference::parse_tagged_name(n)
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    let path = std::path::absolute(path).map_err(|e| CliError::Other(e.to_string()))?;
    Ok(Output::Archive { format, path, name })
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::Other(format!("write {}: {e}", path.display())))?;
    f.write_all(bytes)
        .map_err(|e| CliError::Other(format!("write {}: {e}", path.display())))
}
