//! Build outputs (`-o TRANSPORT:DEST`): where a built image goes besides the store.

use crate::build::driver::ImageFormat;
use crate::config::Settings;
use crate::image::reference::Reference;
use crate::image::save::Format as ArchiveFormat;
use crate::storage::Store;
use std::path::PathBuf;

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

    /// Checks worth doing before a long build: an archive path must not exist yet.
    pub fn precheck(&self) -> Result<(), OutputError> {
        if let Output::Archive { path, .. } = self {
            if crate::privilege::as_caller(|| path.exists()) {
                return Err(OutputError::Invalid(format!(
                    "output file already exist: {:?}, try to remove existing tarball or rename output file",
                    path.display().to_string()
                )));
            }
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
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in ["", "nocolon", ":x", "docker-archive:", "ftp:x", "docker://"] {
            assert!(Output::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Output::parse(&format!("docker-archive:{}", "a".repeat(5000))).is_err());
    }
}
