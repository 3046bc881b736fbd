//! The data root: content-addressed blobs, unpacked layers, image records.
pub mod unpack;
