//! `ctr-img save`.

use crate::cli::{layer_bars::LayerBars, open_store, CliError};
use crate::config::Settings;
use crate::image::archive::separated::{self, SaveSeparated};
use crate::image::save::{self, Format};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Images to save: name[:tag], ID or unique ID prefix
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Path to save the tarball
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Format of image saving to local tarball: docker or oci (experimental; default oci
    /// when experimental features are on, as upstream)
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Destination file directory to store separated images [default: Images]
    #[arg(short, long, value_name = "DIR")]
    pub dest: Option<PathBuf>,
    /// Base image name of separated images
    #[arg(short, long, value_name = "IMAGE")]
    pub base: Option<String>,
    /// Lib image name of separated images
    #[arg(short, long, value_name = "IMAGE")]
    pub lib: Option<String>,
    /// Rename json file path of separated images
    #[arg(short, long, value_name = "FILE")]
    pub rename: Option<PathBuf>,
}

pub fn run(settings: &Settings, args: SaveArgs) -> Result<(), CliError> {
    // Upstream's argument rules and messages.
    if args.images.is_empty() {
        return Err(CliError::Usage("save accepts at least one image".into()));
    }
    let separated =
        args.dest.is_some() || args.base.is_some() || args.lib.is_some() || args.rename.is_some();
    if args.format.is_some() && !settings.experimental {
        return Err(CliError::Usage(
            "the --format flag is experimental: enable it with --experimental or ISULABUILD_CLI_EXPERIMENTAL=enabled".into(),
        ));
    }
    if separated {
        if args.output.is_some() {
            return Err(CliError::Usage(
                "conflict flags between -o and [-b -l -r -d]".into(),
            ));
        }
        let base = args
            .base
            .filter(|b| !b.is_empty())
            .ok_or_else(|| CliError::Usage("base image name(-b) must be provided".into()))?;
        if args.lib.as_deref() == Some(base.as_str()) {
            return Err(CliError::Usage("base and lib images are the same".into()));
        }
        let opts = SaveSeparated {
            apps: args.images.clone(),
            base,
            lib: args.lib.filter(|l| !l.is_empty()),
            rename: args.rename,
            dest: args.dest.unwrap_or_else(|| PathBuf::from("Images")),
        };
        let store = open_store(settings)?;
        let mut bar = LayerBars::new("Saving");
        separated::save(&store, &opts, &mut |p| bar.update(p))?;
        bar.finish();
        println!("Save success with image: [{}]", args.images.join(" "));
        return Ok(());
    }
    let format = match args.format.as_deref() {
        None if settings.experimental => Format::Oci,
        None | Some("docker") => Format::DockerArchive,
        Some("oci") => Format::Oci,
        Some(_) => return Err(CliError::Usage("wrong image format provided".into())),
    };
    let output = args
        .output
        .filter(|o| !o.as_os_str().is_empty())
        .ok_or_else(|| CliError::Usage("output path(-o) should not be empty".into()))?;
    if output.to_string_lossy().contains(':') {
        return Err(CliError::Usage(format!(
            "colon in path {:?} is not supported",
            output.display().to_string()
        )));
    }
    if format == Format::Oci && args.images.len() >= 2 {
        return Err(CliError::Usage(
            "oci image format now only supports saving single image".into(),
        ));
    }
    if crate::privilege::as_caller(|| std::fs::symlink_metadata(&output).is_ok()) {
        return Err(CliError::Usage(format!(
            "output file already exist: {:?}, try to remove existing tarball or rename output file",
            output.display().to_string()
        )));
    }
    let store = open_store(settings)?;
    let mut bar = LayerBars::new("Saving");
    let res = save::save(&store, &args.images, &output, format, &mut |p| {
        bar.update(p)
    });
    bar.finish();
    res?;
    println!("Save success with image: [{}]", args.images.join(" "));
    Ok(())
}
