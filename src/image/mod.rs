//! Image types, references and image-level operations.
pub mod reference;
