//! The `isula-builder` command line: upstream's daemon flags, plus `--config` (the config
//! directory, as for `isula-build`) and `--socket`. Flags win over `configuration.toml` /
//! `storage.toml`, which win over defaults (the same resolution `isula-build` uses).

use crate::config::{GlobalOptions, Settings};
use std::path::PathBuf;

/// Where upstream's clients connect.
pub const DEFAULT_SOCKET: &str = "/var/run/isula_build.sock";
/// Upstream's default owner group of the socket.
pub const DEFAULT_GROUP: &str = "isula";

#[derive(Debug, clap::Parser)]
#[command(
    name = "isula-builder",
    about = "isula-build compatibility server: serves the isula.build.v1.Control gRPC API",
    version,
    disable_version_flag = true
)]
pub struct ServerArgs {
    /// Open debug mode
    #[arg(short = 'D', long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub debug: Option<bool>,
    /// Enable experimental features
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub experimental: Option<bool>,
    /// Persistent dir [default: /var/lib/isula-build]
    #[arg(long, value_name = "DIR")]
    pub dataroot: Option<PathBuf>,
    /// Runtime dir [default: /var/run/isula-build]
    #[arg(long, value_name = "DIR")]
    pub runroot: Option<PathBuf>,
    /// User group for the unix socket [default: isula]
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Storage driver (only "overlay")
    #[arg(long = "storage-driver", value_name = "DRIVER")]
    pub storage_driver: Option<String>,
    /// Storage driver option (repeatable, or comma-separated as upstream)
    #[arg(long = "storage-opt", value_name = "OPT", value_delimiter = ',')]
    pub storage_opt: Vec<String>,
    /// Log level to be used: "debug", "info", "warn" or "error" [default: info]
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Directory of configuration.toml, storage.toml, registries.toml, policy.json; the
    /// public key isula-build.pub is written here
    #[arg(long, value_name = "DIR", default_value = crate::config::DEFAULT_CONFIG_DIR)]
    pub config: PathBuf,
    /// Unix socket to listen on
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Print the version
    #[arg(short = 'v', long)]
    pub version: bool,
}

/// What the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub settings: Settings,
    pub group: String,
    pub socket: PathBuf,
}

impl ServerArgs {
    pub fn global_options(&self) -> GlobalOptions {
        GlobalOptions {
            dataroot: self.dataroot.clone(),
            runroot: self.runroot.clone(),
            config_dir: Some(self.config.clone()),
            storage_driver: self.storage_driver.clone(),
            storage_opts: self.storage_opt.clone(),
            log_level: self.log_level.clone(),
            debug: self.debug.unwrap_or(false),
            experimental: self.experimental.unwrap_or(false),
            default_log_level: Some("info".into()),
        }
    }

    /// Resolve flags, config files and defaults.
    pub fn resolve(&self) -> Result<ServerConfig, crate::config::ConfigError> {
        let settings = Settings::resolve(&self.global_options())?;
        if settings.dataroot == settings.runroot {
            return Err(crate::config::ConfigError::BadValue {
                what: "runroot",
                value: settings.runroot.display().to_string(),
                message: format!(
                    "runroot({:?}) and dataroot({:?}) must be different paths",
                    settings.runroot.display().to_string(),
                    settings.dataroot.display().to_string()
                ),
            });
        }
        // --group beats configuration.toml's `group`, which beats upstream's default.
        let group = self
            .group
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| settings.group.clone());
        let socket = std::path::absolute(&self.socket).unwrap_or_else(|_| self.socket.clone());
        Ok(ServerConfig {
            settings,
            group,
            socket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn upstream_flag_forms_parse() {
        let a = ServerArgs::try_parse_from([
            "isula-builder",
            "--debug=false",
            "--experimental",
            "--storage-opt",
            "a=1,b=2",
            "--group",
            "wheel",
        ])
        .unwrap();
        assert_eq!(a.debug, Some(false));
        assert_eq!(a.experimental, Some(true));
        assert_eq!(a.storage_opt, vec!["a=1", "b=2"]);
        let o = a.global_options();
        assert!(!o.debug && o.experimental);
        assert!(ServerArgs::try_parse_from(["isula-builder", "extra"]).is_err());
    }

    #[test]
    fn group_flag_beats_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("configuration.toml"),
            "group = \"fromfile\"\n",
        )
        .unwrap();
        let conf = d.path().to_str().unwrap();
        let a = ServerArgs::try_parse_from(["isula-builder", "--config", conf]).unwrap();
        let c = a.resolve().unwrap();
        assert_eq!(c.group, "fromfile");
        assert_eq!(c.settings.log_level, "info");
        let a = ServerArgs::try_parse_from(["isula-builder", "--config", conf, "--group", "g2"])
            .unwrap();
        assert_eq!(a.resolve().unwrap().group, "g2");
    }
}
