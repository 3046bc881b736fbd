//! Errors of the compatibility server. Every RPC error reaches the client as one line with
//! gRPC code `Unknown`, as upstream's Go handlers return plain errors (which grpc-go sends
//! as `Unknown`); the wording is upstream's where it has one.

use crate::config::ConfigError;
use crate::image::ImageError;
use crate::lock::LockError;
use crate::registry::RegistryError;
use crate::storage::StoreError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Crypto(#[from] crate::compat::crypto::CryptoError),
    /// Another server holds the run root (upstream's wording).
    #[error("lock {} failed, check if there is another daemon running", path.display())]
    AlreadyRunning { path: PathBuf },
    /// The socket could not be set up (upstream's prefix).
    #[error("create new GRPC socket failed: {0}")]
    Socket(String),
    #[error("group {0:?} does not exist: create it (groupadd {0}) or choose another with --group")]
    NoSuchGroup(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A request the server refuses, with upstream's message where it has one.
    #[error("{0}")]
    Invalid(String),
    /// A build that failed; the message is the build's own.
    #[error("{0}")]
    Build(String),
    #[error("{0}")]
    Internal(String),
}

impl CompatError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        CompatError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Fold a message into one line: embedded newlines become ": ".
pub fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

impl From<CompatError> for tonic::Status {
    fn from(e: CompatError) -> Self {
        tonic::Status::unknown(one_line(&e.to_string()))
    }
}

/// An `Unknown` status with a one-line message.
pub fn status(msg: impl std::fmt::Display) -> tonic::Status {
    tonic::Status::unknown(one_line(&msg.to_string()))
}
