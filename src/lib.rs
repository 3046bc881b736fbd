//! isula-build: a daemonless, isula-build compatible container image builder.
//!
//! The library is the engine; `src/main.rs`, [`cli`] and the compatibility server are thin
//! shells over it. Modules depend only on modules listed after them (see
//! `docs/ARCHITECTURE.md`).

pub mod build;
pub mod cli;
pub mod compat;
pub mod compression;
pub mod config;
pub mod digest;
pub mod display;
pub mod image;
pub mod interrupt;
pub mod lock;
pub mod policy;
pub mod privilege;
pub mod registry;
pub mod sandbox;
pub mod storage;
pub mod system;
