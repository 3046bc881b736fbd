//! Configuration files (`configuration.toml`, `storage.toml`, `registries.toml`, `policy.json`)
//! and the resolved settings every command runs with.
//!
//! Precedence: command-line flag > config file > built-in default. A missing config directory
//! or file means defaults; a file over 1 MiB, unparsable, or with a value of the wrong type is
//! an error naming the file, the line and the key.

use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest config file we read (upstream's limit).
pub const MAX_CONFIG_FILE_SIZE: u64 = 1024 * 1024;
/// Default directory of the config files.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/isula-build";
/// Default persistent data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/isula-build";
/// Default run root (per-boot state).
pub const DEFAULT_RUN_ROOT: &str = "/var/run/isula-build";
/// The storage driver we implement.
pub const STORAGE_DRIVER_OVERLAY: &str = "overlay";
/// Environment variable enabling experimental commands on the client, as upstream.
pub const EXPERIMENTAL_ENV: &str = "ISULABUILD_CLI_EXPERIMENTAL";

/// The proxy variables `--proxy` hands to RUN from the builder's environment.
pub const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: file is {size} bytes, larger than the 1 MiB limit for config files")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {value:?}: {message}")]
    BadValue {
        what: &'static str,
        value: String,
        message: String,
    },
}

/// `configuration.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Configuration {
    pub debug: bool,
    pub experimental: bool,
    pub group: Option<String>,
    pub loglevel: Option<String>,
    pub runtime: Option<String>,
    pub run_root: Option<String>,
    pub data_root: Option<String>,
}

/// `storage.toml` (the parts we use).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct StorageFile {
    pub storage: StorageSection,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct StorageSection {
    pub driver: Option<String>,
    pub options: StorageOptions,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct StorageOptions {
    pub overlay: OverlayOptions,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct OverlayOptions {
    pub mountopt: Option<String>,
}

/// `registries.toml`: the v1 tables (`[registries.search]` …) and the v2 form
/// (`unqualified-search-registries`, `[[registry]]`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RegistriesFile {
    pub registries: RegistriesV1,
    #[serde(rename = "unqualified-search-registries")]
    pub unqualified_search_registries: Vec<String>,
    pub registry: Vec<RegistryEntry>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RegistriesV1 {
    pub search: RegistryList,
    pub insecure: RegistryList,
    pub block: RegistryList,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RegistryList {
    pub registries: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RegistryEntry {
    pub prefix: Option<String>,
    pub location: Option<String>,
    pub insecure: bool,
    pub blocked: bool,
    #[serde(rename = "mirror-by-digest-only")]
    pub mirror_by_digest_only: bool,
    pub mirror: Vec<RegistryMirror>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RegistryMirror {
    pub location: String,
    pub insecure: bool,
    /// `all` (default), `digest-only` or `tag-only`.
    #[serde(rename = "pull-from-mirror")]
    pub pull_from_mirror: Option<String>,
}

/// Which pulls may use a mirror.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum MirrorUse {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

/// A mirror of a `[[registry]]` namespace: `location` replaces the rule's prefix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
    pub used_for: MirrorUse,
}

/// A `[[registry]]` table that changes where images under `prefix` are pulled from: a
/// `location` other than the prefix, or mirrors. Applies to pulls only, never to pushes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PullRule {
    /// `host[:port][/namespace…]` or `*.domain` (any subdomain; no `location` then).
    pub prefix: String,
    /// Where the prefix's namespace really is (equal to `prefix` when not rewritten).
    pub location: String,
    /// Tried in order before `location`.
    pub mirrors: Vec<Mirror>,
}

/// The registry settings as the engine uses them.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Registries {
    /// Registries tried in order for short names.
    pub search: Vec<String>,
    /// Registries reached over plain HTTP or unverified TLS.
    pub insecure: Vec<String>,
    /// Registries never contacted.
    pub blocked: Vec<String>,
    /// `[[registry]]` tables with a `location` rewrite or mirrors.
    #[serde(default)]
    pub pull_rules: Vec<PullRule>,
}

impl RegistriesFile {
    /// Merge the v1 and v2 forms; mixing both for the same list is an error, as upstream.
    fn resolve(self, path: &Path) -> Result<Registries, ConfigError> {
        let v1_search = !self.registries.search.registries.is_empty();
        if v1_search && !self.unqualified_search_registries.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message:
                    "mixing [registries.search] and unqualified-search-registries is not allowed"
                        .into(),
            });
        }
        let mut out = Registries {
            search: if v1_search {
                self.registries.search.registries
            } else {
                self.unqualified_search_registries
            },
            insecure: self.registries.insecure.registries,
            blocked: self.registries.block.registries,
            pull_rules: Vec::new(),
        };
        for r in self.registry {
            let invalid = |message: String| ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            };
            let Some(prefix) = r.prefix.clone().or(r.location.clone()) else {
                return Err(invalid(
                    "[[registry]] entry has neither prefix nor location".into(),
                ));
            };
            let prefix = prefix.trim().to_string();
            let location = r.location.clone().unwrap_or_default().trim().to_string();
            if let Some(domain) = prefix.strip_prefix("*.") {
                if domain.is_empty() || domain.contains(['/', '*', ':', '@']) {
                    return Err(invalid(format!(
                        "[[registry]] prefix {prefix:?}: a wildcard prefix must look like *.example.com"
                    )));
                }
                if !location.is_empty() {
                    return Err(invalid(format!(
                        "[[registry]] prefix {prefix:?}: a wildcard prefix cannot have a location"
                    )));
                }
            } else if prefix.is_empty() || prefix.contains('*') {
                return Err(invalid(format!(
                    "[[registry]] prefix {prefix:?} is not valid"
                )));
            }
            if r.insecure && !out.insecure.contains(&prefix) {
                out.insecure.push(prefix.clone());
            }
            if r.blocked && !out.blocked.contains(&prefix) {
                out.blocked.push(prefix.clone());
            }
            let mut mirrors = Vec::with_capacity(r.mirror.len());
            for m in r.mirror {
                let loc = m.location.trim().to_string();
                if loc.is_empty() || loc.contains('*') {
                    return Err(invalid(format!(
                        "[[registry]] prefix {prefix:?}: mirror location {loc:?} is not valid"
                    )));
                }
                let used_for = match m.pull_from_mirror.as_deref() {
                    _ if r.mirror_by_digest_only => MirrorUse::DigestOnly,
                    None | Some("" | "all") => MirrorUse::All,
                    Some("digest-only") => MirrorUse::DigestOnly,
                    Some("tag-only") => MirrorUse::TagOnly,
                    Some(other) => {
                        return Err(invalid(format!(
                            "[[registry.mirror]] {loc:?}: pull-from-mirror {other:?} is not one of all, digest-only, tag-only"
                        )))
                    }
                };
                if m.insecure && !out.insecure.contains(&loc) {
                    out.insecure.push(loc.clone());
                }
                mirrors.push(Mirror {
                    location: loc,
                    insecure: m.insecure,
                    used_for,
                });
            }
            let location = if location.is_empty() {
                prefix.clone()
            } else {
                location
            };
            if location != prefix || !mirrors.is_empty() {
                out.pull_rules.push(PullRule {
                    prefix,
                    location,
                    mirrors,
                });
            }
        }
        Ok(out)
    }
}

/// Options given on the command line (`None`: not given).
#[derive(Debug, Default, Clone)]
pub struct GlobalOptions {
    pub dataroot: Option<PathBuf>,
    pub runroot: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub storage_driver: Option<String>,
    pub storage_opts: Vec<String>,
    pub log_level: Option<String>,
    pub debug: bool,
    pub experimental: bool,
    /// Log level when neither the flag nor `configuration.toml` sets one and debug is off
    /// (`None`: "error", the command line's default; the server uses upstream's "info").
    pub default_log_level: Option<String>,
}

/// Everything a command runs with, after merging flags, files and defaults. Serializable so
/// the compat server's build workers run with exactly the server's settings.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct Settings {
    pub dataroot: PathBuf,
    pub runroot: PathBuf,
    pub config_dir: PathBuf,
    pub storage_driver: String,
    pub storage_opts: Vec<String>,
    pub log_level: String,
    pub debug: bool,
    pub experimental: bool,
    /// Group allowed to use the binary when installed setuid (`configuration.toml` `group`).
    pub group: String,
    /// OCI runtime for RUN; empty means the built-in sandbox.
    pub runtime: String,
    pub registries: Registries,
    /// `policy.json`: which images may come in.
    #[serde(default)]
    pub policy: crate::policy::Policy,
}

const LOG_LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "trace"];

/// Read a config file of at most 1 MiB; `Ok(None)` when it does not exist.
pub fn read_limited(path: &Path) -> Result<Option<String>, ConfigError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_FILE_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > MAX_CONFIG_FILE_SIZE {
        let size = std::fs::metadata(path)
            .map(|m| m.len())
            .unwrap_or(buf.len() as u64);
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: "file is not valid UTF-8".into(),
        })
}

/// Parse TOML text into `T`, turning errors into one line naming the line and key.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let mut message = e.message().trim().replace('\n', " ");
        if let Some(span) = e.span() {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("");
            let key = line
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_string())
                .filter(|k| !k.is_empty() && !k.starts_with('['));
            message = match key {
                Some(k) => format!("line {line_no}: key {k:?}: {message}"),
                None => format!("line {line_no}: {message}"),
            };
        }
        ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        }
    })
}

fn load_toml<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, ConfigError> {
    match read_limited(path)? {
        Some(text) => parse_toml(path, &text),
        None => Ok(T::default()),
    }
}

/// Read `policy.json` when present (see [`crate::policy`]).
fn load_policy(path: &Path) -> Result<crate::policy::Policy, ConfigError> {
    let Some(text) = read_limited(path)? else {
        return Ok(crate::policy::Policy::default());
    };
    crate::policy::Policy::parse(&text).map_err(|message| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

impl Settings {
    /// Merge command-line options, the config files found in the config directory, and defaults.
    pub fn resolve(opts: &GlobalOptions) -> Result<Settings, ConfigError> {
        let config_dir = opts
            .config_dir
            .clone()
            .map(absolute)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR));
        let conf: Configuration = load_toml(&config_dir.join("configuration.toml"))?;
        let storage: StorageFile = load_toml(&config_dir.join("storage.toml"))?;
        let reg_path = config_dir.join("registries.toml");
        let registries = load_toml::<RegistriesFile>(&reg_path)?.resolve(&reg_path)?;
        let policy = load_policy(&config_dir.join("policy.json"))?;

        let dataroot = opts
            .dataroot
            .clone()
            .or_else(|| non_empty(conf.data_root.clone()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT));
        let runroot = opts
            .runroot
            .clone()
            .or_else(|| non_empty(conf.run_root.clone()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_ROOT));
        let storage_driver = opts
            .storage_driver
            .clone()
            .or(non_empty(storage.storage.driver))
            .unwrap_or_else(|| STORAGE_DRIVER_OVERLAY.to_string());
        if storage_driver != STORAGE_DRIVER_OVERLAY {
            return Err(ConfigError::BadValue {
                what: "storage driver",
                value: storage_driver,
                message: "only \"overlay\" is supported".into(),
            });
        }
        let mut storage_opts = Vec::new();
        if let Some(m) = non_empty(storage.storage.options.overlay.mountopt) {
            storage_opts.push(format!("overlay.mountopt={m}"));
        }
        storage_opts.extend(opts.storage_opts.iter().cloned());

        let debug = opts.debug || conf.debug;
        let log_level = opts
            .log_level
            .clone()
            .or(non_empty(conf.loglevel))
            .unwrap_or_else(|| {
                if debug {
                    "debug".to_string()
                } else {
                    opts.default_log_level
                        .clone()
                        .unwrap_or_else(|| "error".to_string())
                }
            })
            .to_lowercase();
        if !LOG_LEVELS.contains(&log_level.as_str()) {
            return Err(ConfigError::BadValue {
                what: "log level",
                value: log_level,
                message: "expected one of debug, info, warn, error".into(),
            });
        }
        let experimental = opts.experimental
            || conf.experimental
            || std::env::var(EXPERIMENTAL_ENV).is_ok_and(|v| v == "enabled");
        Ok(Settings {
            dataroot: absolute(dataroot),
            runroot: absolute(runroot),
            config_dir,
            storage_driver,
            storage_opts,
            log_level,
            debug,
            experimental,
            group: non_empty(conf.group).unwrap_or_else(|| "isula".to_string()),
            runtime: non_empty(conf.runtime).unwrap_or_default(),
            registries,
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> GlobalOptions {
        GlobalOptions {
            config_dir: Some(dir.to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn missing_config_dir_gives_defaults() {
        let s = Settings::resolve(&opts(Path::new("/nonexistent/isula-build-conf"))).unwrap();
        assert_eq!(s.dataroot, PathBuf::from(DEFAULT_DATA_ROOT));
        assert_eq!(s.runroot, PathBuf::from(DEFAULT_RUN_ROOT));
        assert_eq!(s.storage_driver, "overlay");
        assert_eq!(s.group, "isula");
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("configuration.toml"),
            "data_root = \"/srv/from-file\"\nrun_root = \"/run/from-file\"\nloglevel = \"warn\"\n",
        )
        .unwrap();
        let mut o = opts(d.path());
        let s = Settings::resolve(&o).unwrap();
        assert_eq!(s.dataroot, PathBuf::from("/srv/from-file"));
        assert_eq!(s.log_level, "warn");
        o.dataroot = Some("/srv/from-flag".into());
        o.log_level = Some("error".into());
        let s = Settings::resolve(&o).unwrap();
        assert_eq!(s.dataroot, PathBuf::from("/srv/from-flag"));
        assert_eq!(s.runroot, PathBuf::from("/run/from-file"));
        assert_eq!(s.log_level, "error");
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("configuration.toml"),
            "debug = false\ndata_root = 5\n",
        )
        .unwrap();
        let e = Settings::resolve(&opts(d.path())).unwrap_err().to_string();
        assert!(e.contains("configuration.toml"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("\"data_root\""), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn unparsable_and_oversized_files_are_rejected() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("storage.toml"), "[storage\n").unwrap();
        let e = Settings::resolve(&opts(d.path())).unwrap_err().to_string();
        assert!(e.contains("storage.toml"), "{e}");
        std::fs::write(d.path().join("storage.toml"), "").unwrap();
        let big = format!("# {}\n", "x".repeat(1024 * 1024));
        std::fs::write(d.path().join("registries.toml"), big).unwrap();
        let e = Settings::resolve(&opts(d.path())).unwrap_err().to_string();
        assert!(e.contains("registries.toml") && e.contains("1 MiB"), "{e}");
    }

    #[test]
    fn registries_v1_and_v2_are_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("registries.toml"),
            "[registries.search]\nregistries = [\"docker.io\", \"hub.oepkgs.net\"]\n\
             [registries.insecure]\nregistries = [\"localhost:5000\"]\n\
             [[registry]]\nlocation = \"10.0.0.1:5000\"\ninsecure = true\n",
        )
        .unwrap();
        let s = Settings::resolve(&opts(d.path())).unwrap();
        assert_eq!(s.registries.search, vec!["docker.io", "hub.oepkgs.net"]);
        assert_eq!(
            s.registries.insecure,
            vec!["localhost:5000", "10.0.0.1:5000"]
        );
    }

    #[test]
    fn registry_tables_give_pull_rules_and_bad_ones_are_named() {
        let d = tempfile::tempdir().unwrap();
        let write = |t: &str| std::fs::write(d.path().join("registries.toml"), t).unwrap();
        write(
            "[[registry]]\nprefix = \"docker.io/library\"\nmirror-by-digest-only = true\n\
             [[registry.mirror]]\nlocation = \"m.local:5000/hub\"\ninsecure = true\n\
             [[registry]]\nprefix = \"a.io/x\"\nlocation = \"b.io/y\"\n\
             [[registry]]\nlocation = \"plain.io\"\n",
        );
        let s = Settings::resolve(&opts(d.path())).unwrap();
        let r = &s.registries;
        assert_eq!(r.pull_rules.len(), 2, "{r:?}");
        assert_eq!(r.pull_rules[0].location, "docker.io/library");
        assert_eq!(r.pull_rules[0].mirrors[0].used_for, MirrorUse::DigestOnly);
        assert_eq!(r.pull_rules[1].location, "b.io/y");
        assert_eq!(r.insecure, vec!["m.local:5000/hub"]);
        for (bad, what) in [
            (
                "[[registry]]\nprefix = \"a.io\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"sometimes\"\n",
                "pull-from-mirror",
            ),
            (
                "[[registry]]\nprefix = \"*.a.io\"\nlocation = \"b.io\"\n",
                "wildcard",
            ),
            (
                "[[registry]]\nprefix = \"a.io\"\n[[registry.mirror]]\nlocation = \"\"\n",
                "mirror location",
            ),
        ] {
            write(bad);
            let e = Settings::resolve(&opts(d.path())).unwrap_err().to_string();
            assert!(e.contains("registries.toml") && e.contains(what), "{e}");
        }
    }

    #[test]
    fn bad_policy_json_is_rejected() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("policy.json"), "{\"default\": 3}").unwrap();
        let e = Settings::resolve(&opts(d.path())).unwrap_err().to_string();
        assert!(e.contains("policy.json") && e.contains("default"), "{e}");
    }

    #[test]
    fn only_overlay_driver() {
        let mut o = opts(Path::new("/nonexistent"));
        o.storage_driver = Some("vfs".into());
        assert!(Settings::resolve(&o).is_err());
    }
}
