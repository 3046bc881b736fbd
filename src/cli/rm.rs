//! `ctr-img rm`.

use crate::cli::{open_store, CliError};
use crate::config::Settings;
use crate::image::manage::{self, RemoveEvent, RemoveTarget};

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Images to remove: name[:tag], ID or unique ID prefix
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Remove all images
    #[arg(short, long)]
    pub all: bool,
    /// Remove all untagged images
    #[arg(short, long)]
    pub prune: bool,
}

pub fn run(settings: &Settings, args: RmArgs) -> Result<(), CliError> {
    // Upstream's argument rules and messages.
    let target = match (args.images.is_empty(), args.all, args.prune) {
        (false, true, _) => {
            return Err(CliError::Usage(
                "imageID/name is not allowed when using --all".into(),
            ))
        }
        (false, _, true) => {
            return Err(CliError::Usage(
                "imageID/name is not allowed when using --prune".into(),
            ))
        }
        (false, false, false) => RemoveTarget::Images(args.images),
        (true, true, true) => {
            return Err(CliError::Usage(
                "--prune is not allowed when using --all".into(),
            ))
        }
        (true, true, false) => RemoveTarget::All,
        (true, false, true) => RemoveTarget::Untagged,
        (true, false, false) => {
            return Err(CliError::Usage("imageID/name must be specified".into()))
        }
    };
    let store = open_store(settings)?;
    let (events, ok) = manage::remove(&store, &target)?;
    for e in events {
        match e {
            RemoveEvent::Untagged(n) => println!("Untagged: {n}"),
            RemoveEvent::Deleted(id) => println!("Deleted: {id}"),
            RemoveEvent::Failed(msg) => eprintln!("{msg}"),
        }
    }
    if !ok {
        return Err(CliError::Other("remove one or more images failed".into()));
    }
    Ok(())
}
