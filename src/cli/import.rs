//! `ctr-img import`.

use crate::cli::{open_store, progress, CliError};
use crate::config::Settings;
use crate::image::import;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Rootfs tarball: plain, gzip, xz, bzip2 or zstd (detected by content); at most 1 GiB
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Name for the image; NAME means NAME:latest
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: String,
}

pub fn run(settings: &Settings, args: ImportArgs) -> Result<(), CliError> {
    let store = open_store(settings)?;
    let total = crate::privilege::as_caller(|| std::fs::metadata(&args.file))
        .map(|m| m.len())
        .unwrap_or(0);
    let bar = progress::bytes_bar(total, "Importing");
    let mut on_progress = |n: u64| bar.set(n);
    let res = import::import(
        &store,
        &settings.policy,
        &args.file,
        &args.reference,
        &mut on_progress,
    );
    bar.finish();
    let done = res?;
    println!("Import success with image id: {:?}", done.id);
    Ok(())
}
