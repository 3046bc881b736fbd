//! Integration tests: the real `isula-build` binary against temporary data roots.

mod bad_input;
mod build;
mod common;
mod compat;
mod concurrency;
mod crash;
mod images;
mod outputs;
mod packaging;
mod registry;
mod sandbox;
mod save_load;
mod settings;
mod setuid;
