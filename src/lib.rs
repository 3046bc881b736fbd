//! isula-build: a daemonless, isula-build compatible container image builder.
//!
//! The library is the engine; `src/main.rs`, [`cli`] and the compatibility server are thin
//! shells over it. Modules depend only on modules listed after them in
//! `docs/ARCHITECTURE.md`.

pub mod build;
pub mod cli;
