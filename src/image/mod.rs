//! Image types, references and image-level operations over the store.
pub mod archive;
pub mod config;
pub mod docker_engine;
pub mod error;
pub mod import;
pub mod load;
pub mod manage;
pub mod reference;
pub mod save;

pub use error::ImageError;
