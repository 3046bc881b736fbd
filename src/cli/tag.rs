//! `ctr-img tag`.

use crate::cli::{open_store, CliError};
use crate::config::Settings;
use crate::image::manage;

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// Image to tag: name[:tag], ID or unique ID prefix
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// New name; NAME means NAME:latest
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

pub fn run(settings: &Settings, args: TagArgs) -> Result<(), CliError> {
    let store = open_store(settings)?;
    manage::tag(&store, &args.source, &args.target)?;
    println!("Tag {} to image {} succeed", args.target, args.source);
    Ok(())
}
