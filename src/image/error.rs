//! Errors of image-level operations.

use crate::image::reference::ReferenceError;
use crate::storage::{FindError, StoreError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Find(#[from] FindError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path:?}: {reason}")]
    Source { path: PathBuf, reason: String },
    #[error("import {path:?} failed: {reason}")]
    Import { path: PathBuf, reason: String },
    #[error("load image from {path:?} failed: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("save image failed: {0}")]
    Save(String),
    #[error("failed to list images with repository {0:?} in local storage")]
    NoMatch(String),
    #[error("{0}")]
    Invalid(String),
}
