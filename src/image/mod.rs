//! Image types, references and image-level operations over the store.
pub mod config;
pub mod error;
pub mod import;
pub mod manage;
pub mod reference;

pub use error::ImageError;
