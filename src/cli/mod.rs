//! Command-line front end: clap definitions (one file per command) that turn flags into
//! library calls and print upstream-compatible messages. Results go to stdout; logs,
//! progress and errors to stderr.

pub mod build;
pub mod completion;
pub mod images;
pub mod import;
pub mod info;
pub mod layer_bars;
pub mod load;
pub mod login;
pub mod logout;
pub mod manifest;
pub mod output;
pub mod progress;
pub mod pull;
pub mod push;
pub mod rm;
pub mod save;
pub mod tag;
pub mod version;

use crate::config::{ConfigError, GlobalOptions, Settings};
use crate::image::ImageError;
use crate::registry::RegistryError;
use crate::storage::{Store, StoreError};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Errors a command reports to the user (one line on stderr, exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Parser)]
#[command(
    name = "isula-build",
    about = "A daemonless container image builder compatible with isula-build",
    version,
    disable_version_flag = true,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. Flags win over `configuration.toml`, which wins over defaults.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Persistent data root [default: /var/lib/isula-build]
    #[arg(long, global = true, value_name = "DIR")]
    pub dataroot: Option<PathBuf>,
    /// Run root for per-boot state [default: /var/run/isula-build]
    #[arg(long, global = true, value_name = "DIR")]
    pub runroot: Option<PathBuf>,
    /// Directory of configuration.toml, storage.toml, registries.toml, policy.json
    #[arg(long, global = true, value_name = "DIR", default_value = crate::config::DEFAULT_CONFIG_DIR)]
    pub config: PathBuf,
    /// Storage driver (only "overlay")
    #[arg(long = "storage-driver", global = true, value_name = "DRIVER")]
    pub storage_driver: Option<String>,
    /// Storage driver option (repeatable)
    #[arg(long = "storage-opt", global = true, value_name = "OPT")]
    pub storage_opt: Vec<String>,
    /// Log level: debug, info, warn or error [default: error]
    #[arg(long = "log-level", global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Debug mode (log level debug)
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
    /// Enable experimental features (also ISULABUILD_CLI_EXPERIMENTAL=enabled)
    #[arg(long, global = true)]
    pub experimental: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Container image operations
    #[command(name = "ctr-img", subcommand)]
    CtrImg(Box<CtrImg>),
    /// Show isula-build system information
    Info(info::InfoArgs),
    /// Show the isula-build version information
    Version,
    /// Login to an image registry
    Login(login::LoginArgs),
    /// Logout from an image registry
    Logout(logout::LogoutArgs),
    /// Manipulate manifest lists (experimental)
    #[command(subcommand)]
    Manifest(manifest::ManifestCmd),
    /// Generate a shell completion script (bash, zsh, fish, ...)
    Completion(completion::CompletionArgs),
}

#[derive(Debug, Subcommand)]
pub enum CtrImg {
    /// Build container images
    Build(build::BuildArgsCli),
    /// List locally stored images
    Images(images::ImagesArgs),
    /// Import the base image from a tarball to the image store
    Import(import::ImportArgs),
    /// Load images from a docker-archive or OCI archive, or separated images
    Load(load::LoadArgs),
    /// Remove one or more locally stored images
    Rm(rm::RmArgs),
    /// Save image to tarball
    Save(save::SaveArgs),
    /// Create a tag for source image
    Tag(tag::TagArgs),
    /// Pull image from remote repository
    Pull(pull::PullArgs),
    /// Push image to remote repository
    Push(push::PushArgs),
}

impl GlobalArgs {
    fn to_options(&self) -> GlobalOptions {
        GlobalOptions {
            dataroot: self.dataroot.clone(),
            runroot: self.runroot.clone(),
            config_dir: Some(self.config.clone()),
            storage_driver: self.storage_driver.clone(),
            storage_opts: self.storage_opt.clone(),
            log_level: self.log_level.clone(),
            debug: self.debug,
            experimental: self.experimental,
            default_log_level: None,
        }
    }
}

/// Open the data root named by the settings.
pub fn open_store(settings: &Settings) -> Result<Store, CliError> {
    Ok(Store::open(&settings.dataroot, &settings.runroot)?)
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::new(format!("isula_build={level}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// For a setuid invocation: the global options the caller gave that only root may give.
fn root_only_flags(g: &GlobalArgs) -> Vec<&'static str> {
    let mut out = Vec::new();
    if g.dataroot.is_some() {
        out.push("--dataroot");
    }
    if g.runroot.is_some() {
        out.push("--runroot");
    }
    if g.config != std::path::Path::new(crate::config::DEFAULT_CONFIG_DIR) {
        out.push("--config");
    }
    if g.storage_driver.is_some() {
        out.push("--storage-driver");
    }
    if !g.storage_opt.is_empty() {
        out.push("--storage-opt");
    }
    out
}

fn dispatch(cli: Cli) -> Result<(), CliError> {
    // Resolved once, when a command needs it or a setuid caller must be checked against the
    // admin's group.
    let mut settings = None;
    if crate::privilege::caller().is_some() {
        // Setuid invocation by a non-root user: the admin's configuration only, the admin's
        // group only.
        crate::privilege::refuse_root_only(&root_only_flags(&cli.global))
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let s = Settings::resolve(&cli.global.to_options())?;
        crate::privilege::authorize(&s.group).map_err(|e| CliError::Usage(e.to_string()))?;
        settings = Some(s);
    }
    match cli.command {
        Command::Version => {
            version::run();
            Ok(())
        }
        Command::Completion(a) => {
            completion::run(a);
            Ok(())
        }
        command => {
            let settings = match settings {
                Some(s) => s,
                None => Settings::resolve(&cli.global.to_options())?,
            };
            init_logging(&settings.log_level);
            match command {
                Command::Info(a) => info::run(&settings, a),
                Command::CtrImg(c) => match *c {
                    CtrImg::Build(a) => build::run(&settings, a),
                    CtrImg::Images(a) => images::run(&settings, a),
                    CtrImg::Import(a) => import::run(&settings, a),
                    CtrImg::Load(a) => load::run(&settings, a),
                    CtrImg::Rm(a) => rm::run(&settings, a),
                    CtrImg::Save(a) => save::run(&settings, a),
                    CtrImg::Tag(a) => tag::run(&settings, a),
                    CtrImg::Pull(a) => pull::run(&settings, a),
                    CtrImg::Push(a) => push::run(&settings, a),
                },
                Command::Login(a) => login::run(&settings, a),
                Command::Logout(a) => logout::run(&settings, a),
                Command::Manifest(a) => manifest::run(&settings, a),
                Command::Version | Command::Completion(_) => Ok(()),
            }
        }
    }
}

/// Parse `args` and run the command. Errors print as one line on stderr, exit status 1.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    // First of all: a setuid invocation gets its environment replaced before anything reads it.
    if let Err(e) = crate::privilege::init() {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", one_line(&e.to_string()));
            ExitCode::from(1)
        }
    }
}

/// Errors are one line: fold any embedded newlines.
fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}
