//! Build outputs (`-o TRANSPORT:DEST`): where a built image goes besides the store.

use crate::build::driver::ImageFormat;
use crate::config::Settings;
use crate::image::reference::Reference;
use crate::image::save::Format as ArchiveFormat;
use crate::storage::Store;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Longest `-o` value upstream accepts.
pub const MAX_OUTPUT_LEN: usize = 4096;

/// Why an `-o` value or its delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The `-o` value is malformed (upstream's wording where it has one).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("push to {dest} failed: {source}")]
    Push {
        dest: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error("export to docker-daemon failed: {0}")]
    DockerDaemon(#[from] crate::image::docker_engine::EngineError),
    #[error("the Docker daemon loaded {name} as {got}, not as the built image sha256:{want}")]
    DockerDaemonMismatch {
        name: String,
        got: String,
        want: String,
    },
    /// `isula load` (or writing its archive) failed; upstream's wording.
    #[error("export to isulad failed: {0}")]
    Isulad(String),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    /// A signal arrived while exporting; temporary files are gone. Re-raise it.
    #[error("export interrupted by {0}")]
    Interrupted(nix::sys::signal::Signal),
}

/// A parsed `-o TRANSPORT:DEST`.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `docker://REGISTRY/REPO:TAG`: push the result.
    Registry(String),
    /// `docker-archive:PATH[:NAME:TAG]` or `oci-archive:PATH[:NAME:TAG]`.
    Archive {
        format: ArchiveFormat,
        path: PathBuf,
        name: Option<String>,
    },
    /// `docker-daemon:NAME:TAG`: load into the local Docker engine through its API.
    DockerDaemon(String),
    /// `isulad:NAME:TAG`: a docker-archive in the store's tmp dir, given to `isula load`.
    Isulad(String),
}

impl Output {
    /// Parse `TRANSPORT:DEST`. Archive paths are made absolute against the current directory.
    pub fn parse(o: &str) -> Result<Output, OutputError> {
        let invalid = |m: String| OutputError::Invalid(m);
        if o.len() > MAX_OUTPUT_LEN {
            return Err(invalid(format!(
                "output should not longer than {MAX_OUTPUT_LEN}"
            )));
        }
        let (transport, dest) = o.split_once(':').ok_or_else(|| {
            invalid(format!(
                "invalid output {o:?}: expected TRANSPORT:DESTINATION"
            ))
        })?;
        if transport.is_empty() {
            return Err(invalid("transport should not be empty".into()));
        }
        if dest.is_empty() {
            return Err(invalid("destination should not be empty".into()));
        }
        let format = match transport {
            "docker" => {
                let d = dest.trim_start_matches("//");
                if d.is_empty() {
                    return Err(invalid("destination should not be empty".into()));
                }
                return Ok(Output::Registry(d.to_string()));
            }
            "docker-daemon" => {
                let r = Reference::parse(dest).map_err(|e| invalid(e.to_string()))?;
                if r.digest().is_some() {
                    return Err(invalid(format!(
                        "docker-daemon: reference {dest} has a digest: name the image NAME:TAG"
                    )));
                }
                if r.tag().is_none() {
                    return Err(invalid(format!(
                        "docker-daemon: reference {dest} has neither a tag nor a digest"
                    )));
                }
                return Ok(Output::DockerDaemon(r.to_string()));
            }
            "isulad" => {
                let r = Reference::parse(dest).map_err(|e| invalid(e.to_string()))?;
                if r.tag().is_none() || r.digest().is_some() {
                    return Err(invalid(format!("invalid isulad output format: {o}")));
                }
                return Ok(Output::Isulad(r.to_string()));
            }
            "docker-archive" => ArchiveFormat::DockerArchive,
            "oci-archive" => ArchiveFormat::Oci,
            other => return Err(invalid(format!("transport {other:?} not support"))),
        };
        let (path, name) = match dest.split_once(':') {
            Some((p, n)) if !n.is_empty() => (p, Some(n.to_string())),
            Some((p, _)) => (p, None),
            None => (dest, None),
        };
        if let Some(n) = &name {
            Reference::parse_tagged_name(n).map_err(|e| invalid(e.to_string()))?;
        }
        let path =
            std::path::absolute(path).map_err(|e| invalid(format!("output path {path:?}: {e}")))?;
        Ok(Output::Archive { format, path, name })
    }

    /// Checks worth doing before a long build: an archive path must not exist yet, a
    /// Docker engine must answer, `isula` must be on PATH.
    pub fn precheck(&self) -> Result<(), OutputError> {
        match self {
            Output::Archive { path, .. } => {
                if crate::privilege::as_caller(|| path.exists()) {
                    return Err(OutputError::Invalid(format!(
                        "output file already exist: {:?}, try to remove existing tarball or rename output file",
                        path.display().to_string()
                    )));
                }
            }
            Output::DockerDaemon(_) => {
                crate::image::docker_engine::Engine::from_env()?.ping()?;
            }
            Output::Isulad(_) => {
                if find_in_path(ISULA).is_none() {
                    return Err(OutputError::Isulad(format!(
                        "{ISULA} command not found in PATH: is iSulad installed?"
                    )));
                }
            }
            Output::Registry(_) => {}
        }
        Ok(())
    }

    /// Send the built image `image_id` to this output. `log` gets upstream's success line.
    pub fn deliver(
        &self,
        store: &Store,
        settings: &Settings,
        image_id: &str,
        format: ImageFormat,
        log: &mut dyn FnMut(&str),
    ) -> Result<(), OutputError> {
        match self {
            Output::Archive { format, path, name } => {
                crate::image::save::save_as(
                    store,
                    image_id,
                    name.as_deref(),
                    path,
                    *format,
                    &mut |_| {},
                )?;
            }
            Output::Registry(dest) => {
                let opts = crate::registry::push::PushOptions {
                    format: if format == ImageFormat::Oci {
                        crate::registry::media::Format::Oci
                    } else {
                        crate::registry::media::Format::Docker
                    },
                    chunk_size: None,
                };
                crate::registry::push::push(store, settings, image_id, dest, opts, &|_| {})
                    .map_err(|source| OutputError::Push {
                        dest: dest.clone(),
                        source: Box::new(source),
                    })?;
                log(&format!("Push success with image: {dest}"));
            }
            Output::DockerDaemon(name) => {
                deliver_docker_daemon(store, image_id, name)?;
                log(&format!("Load success with image: {name}"));
            }
            Output::Isulad(name) => {
                deliver_isulad(store, image_id, name)?;
                log(&format!("Load success with image: {name}"));
            }
        }
        Ok(())
    }
}

/// Write image `image_id`, named `name`, as a docker-archive into `w` (the form both engines
/// load).
fn write_docker_archive(
    store: &Store,
    image_id: &str,
    name: &str,
    w: impl std::io::Write,
) -> Result<(), crate::image::ImageError> {
    let sel = crate::image::save::select_as(store, image_id, Some(name))?;
    crate::image::save::write_selection(
        store,
        &sel,
        std::io::BufWriter::with_capacity(1 << 20, w),
        ArchiveFormat::DockerArchive,
        &mut |_| {},
    )
    .map(drop)
}

/// Stream the image as a docker-archive into the engine's `POST /images/load`, then check
/// that the engine has `name` with our image ID.
fn deliver_docker_daemon(store: &Store, image_id: &str, name: &str) -> Result<(), OutputError> {
    use crate::image::docker_engine::Engine;
    let engine = Engine::from_env()?;
    engine
        .load_streamed(|w| write_docker_archive(store, image_id, name, w).map_err(|e| e.into()))?;
    let want = format!("sha256:{image_id}");
    match engine.image_id(name)? {
        Some(got) if got == want => Ok(()),
        got => Err(OutputError::DockerDaemonMismatch {
            name: name.to_string(),
            got: got.unwrap_or_else(|| "nothing".into()),
            want: image_id.to_string(),
        }),
    }
}

/// The iSulad command-line client.
const ISULA: &str = "isula";
/// Prefix of the temporary archive handed to `isula load` (upstream's name).
pub const ISULAD_TMP_PREFIX: &str = "isula-build-tmp-";
/// Most of `isula load`'s output quoted in an error.
const MAX_ISULA_OUTPUT: u64 = 4096;

fn find_in_path(cmd: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(cmd)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// A writer that fails once a caught signal is pending, so a long archive write stops.
struct StopOnSignal<'a, W> {
    inner: W,
    signals: &'a crate::interrupt::Interrupts,
    caught: &'a std::cell::Cell<Option<nix::sys::signal::Signal>>,
}

impl<W: Write> Write for StopOnSignal<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(sig) = self.signals.pending() {
            self.caught.set(Some(sig));
        }
        if let Some(sig) = self.caught.get() {
            // Not ErrorKind::Interrupted: write_all and BufWriter retry those forever.
            return Err(std::io::Error::other(format!("interrupted by {sig}")));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Write the image as a docker-archive to `<dataroot>/tmp/isulad-<id>/isula-build-tmp-<id>.tar`
/// and run `isula load -i` on it. The work dir (and the archive in it) goes away on success,
/// on failure and on SIGINT/SIGTERM/SIGHUP (then [`OutputError::Interrupted`] is returned);
/// if the process is killed outright, the store's sweeper removes it.
fn deliver_isulad(store: &Store, image_id: &str, name: &str) -> Result<(), OutputError> {
    use std::os::unix::fs::OpenOptionsExt;
    let signals = crate::interrupt::Interrupts::catch()
        .map_err(|e| OutputError::Isulad(format!("catch signals: {e}")))?;
    let caught = std::cell::Cell::new(None);
    let ws = store.workspace("isulad")?;
    let tar_path = ws.child(&format!(
        "{ISULAD_TMP_PREFIX}{}.tar",
        crate::storage::fsutil::random_hex(6)
    ));
    let written = (|| -> Result<(), OutputError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tar_path)
            .map_err(|e| OutputError::Isulad(format!("create {}: {e}", tar_path.display())))?;
        let w = StopOnSignal {
            inner: file,
            signals: &signals,
            caught: &caught,
        };
        Ok(write_docker_archive(store, image_id, name, w)?)
    })();
    if let Some(sig) = caught.get() {
        return Err(OutputError::Interrupted(sig));
    }
    written?;
    let res = run_isula_load(&tar_path, ws.path(), &signals);
    drop(ws);
    res
}

/// `isula load -i TAR`, its output kept in a file (a grandchild holding a pipe open can then
/// not hang us), waiting while polling for signals.
fn run_isula_load(
    tar_path: &Path,
    dir: &Path,
    signals: &crate::interrupt::Interrupts,
) -> Result<(), OutputError> {
    use std::io::{Read, Seek};
    let log_path = dir.join("isula-load.log");
    let mut log = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&log_path)
        .map_err(|e| OutputError::Isulad(format!("create {}: {e}", log_path.display())))?;
    let err_log = log
        .try_clone()
        .map_err(|e| OutputError::Isulad(format!("{}: {e}", log_path.display())))?;
    let out_log = log
        .try_clone()
        .map_err(|e| OutputError::Isulad(format!("{}: {e}", log_path.display())))?;
    let mut child = std::process::Command::new(ISULA)
        .arg("load")
        .arg("-i")
        .arg(tar_path)
        .stdin(std::process::Stdio::null())
        .stdout(out_log)
        .stderr(err_log)
        .spawn()
        .map_err(|e| {
            OutputError::Isulad(format!(
                "load image to isulad failed, stderr: , err: run {ISULA}: {e}"
            ))
        })?;
    let status = loop {
        if let Some(sig) = signals.pending() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(OutputError::Interrupted(sig));
        }
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(OutputError::Isulad(format!("wait for {ISULA}: {e}")));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = log.rewind();
    let _ = (&mut log).take(MAX_ISULA_OUTPUT).read_to_string(&mut text);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Err(OutputError::Isulad(format!(
        "load image to isulad failed, stderr: {text}, err: {status}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_writes_stop_once_a_signal_is_pending() {
        let signals = crate::interrupt::Interrupts::catch().unwrap();
        let caught = std::cell::Cell::new(None);
        let mut w = StopOnSignal {
            inner: Vec::new(),
            signals: &signals,
            caught: &caught,
        };
        w.write_all(b"before").unwrap();
        // raise() signals this thread only, where the guard holds it pending.
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
        // Through a BufWriter, as the archive writer uses it: an error, not a retry loop.
        let e = {
            let mut bw = std::io::BufWriter::with_capacity(4, &mut w);
            bw.write_all(b"after the signal").unwrap_err()
        };
        assert_eq!(e.to_string(), "interrupted by SIGHUP");
        assert_eq!(caught.get(), Some(nix::sys::signal::Signal::SIGHUP));
        // Stays failed: the signal was consumed but is remembered.
        assert!(w.write(b"x").is_err());
        assert_eq!(w.inner, b"before");
    }

    #[test]
    fn parses_transports() {
        assert_eq!(
            Output::parse("docker://localhost:5000/a/b:1").unwrap(),
            Output::Registry("localhost:5000/a/b:1".into())
        );
        match Output::parse("docker-archive:/tmp/x.tar:app:1").unwrap() {
            Output::Archive { format, path, name } => {
                assert_eq!(format, ArchiveFormat::DockerArchive);
                assert_eq!(path, PathBuf::from("/tmp/x.tar"));
                assert_eq!(name.as_deref(), Some("app:1"));
            }
            o => panic!("unexpected {o:?}"),
        }
        assert_eq!(
            Output::parse("docker-daemon:app:1").unwrap(),
            Output::DockerDaemon("app:1".into())
        );
        assert_eq!(
            Output::parse("isulad:localhost:5000/a/b:v2").unwrap(),
            Output::Isulad("localhost:5000/a/b:v2".into())
        );
        let e = Output::parse("isulad:app").unwrap_err().to_string();
        assert_eq!(e, "invalid isulad output format: isulad:app");
        let e = Output::parse("docker-daemon:app").unwrap_err().to_string();
        assert_eq!(
            e,
            "docker-daemon: reference app has neither a tag nor a digest"
        );
        for bad in [
            "",
            "nocolon",
            ":x",
            "docker-archive:",
            "ftp:x",
            "docker://",
            "isulad:",
            "isulad:Bad:1",
            "docker-daemon:",
            "docker-daemon:app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(Output::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Output::parse(&format!("docker-archive:{}", "a".repeat(5000))).is_err());
    }
}
