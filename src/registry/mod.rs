//! Docker Registry HTTP API v2 client: authentication (anonymous, Basic, Bearer token),
//! TLS trust from `certs.d` and insecure registries from `registries.toml`, the credentials
//! file, pull and push with digest verification, and manifest lists.
//!
//! Entry points for the rest of the engine:
//! - [`pull::pull`]: fetch an image into the store (used by `ctr-img pull` and by `FROM` of
//!   an image that is not in the store);
//! - [`push::push`]: send a stored image to a registry (`ctr-img push`, build `-o docker://`);
//! - [`credentials`]: `auth.json` read/write for `login`/`logout`;
//! - [`manifest_list`]: the experimental `manifest` commands.
//!
//! Credentials are only ever sent to the registry host they belong to and to the token
//! realm that registry names; redirects to other hosts (blob storage) carry no
//! `Authorization` header. Neither credentials nor tokens are logged or put in errors.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod download;
pub mod manifest_list;
pub mod media;
pub mod mirrors;
pub mod name;
pub mod pull;
pub mod push;
pub mod sources;
pub mod tls;

pub use client::RegistryClient;
pub use name::RemoteName;

use crate::digest::Digest;
use crate::image::reference::ReferenceError;
use crate::storage::StoreError;

/// Largest manifest (or manifest list) accepted from a registry.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// Largest image config accepted from a registry.
pub const MAX_CONFIG_SIZE: u64 = 16 * 1024 * 1024;

/// Errors of registry operations. Messages never contain credentials or tokens.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error("registry {host}: cannot connect: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("registry {host}: TLS: {reason} ({hint})")]
    Tls {
        host: String,
        reason: String,
        hint: String,
    },
    #[error("registry {host}: no data for {secs}s during {what} (read timeout; {env} sets it in seconds)", env = tls::READ_TIMEOUT_ENV)]
    Timeout {
        host: String,
        what: String,
        secs: f64,
    },
    #[error("registry {host}: unauthorized: {reason}")]
    Unauthorized { host: String, reason: String },
    #[error("registry {host}: access to {what} denied")]
    Denied { host: String, what: String },
    #[error("{what}: not found in registry")]
    NotFound { what: String },
    #[error("registry {host}: {method} {path}: unexpected status {status}{detail}")]
    Status {
        host: String,
        method: String,
        path: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{what}: invalid: {reason}")]
    Invalid { what: String, reason: String },
    #[error("registry {0} is blocked in registries.toml")]
    Blocked(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{path}: {reason}")]
    File {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("network: {0}")]
    Network(String),
    #[error("{0}")]
    Other(String),
}

impl RegistryError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        RegistryError::Invalid {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
    pub(crate) fn file(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        RegistryError::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// The description of a reqwest error without its URL (which may hold upload state), with
/// the chain of causes that tells a refused connection from a certificate problem.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = c.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}
