//! `ctr-img load`.

use crate::cli::{layer_bars::LayerBars, open_store, CliError};
use crate::config::Settings;
use crate::image::archive::separated::{self, LoadSeparated};
use crate::image::load;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Path to local tarball (or app image name when loading separated images)
    #[arg(short, long, value_name = "PATH")]
    pub input: Option<String>,
    /// Path to separated image tarballs directory
    #[arg(short, long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Base image tarball path of separated images
    #[arg(short, long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// Library image tarball path of separated images
    #[arg(short, long, value_name = "FILE")]
    pub lib: Option<PathBuf>,
    /// Skip sha256 check sum for legacy separated images loading
    #[arg(long = "no-check")]
    pub no_check: bool,
}

pub fn run(settings: &Settings, args: LoadArgs) -> Result<(), CliError> {
    let input = args.input.unwrap_or_default();
    let separated = args.dir.is_some() || args.base.is_some() || args.lib.is_some();
    let store;
    let loaded = if separated {
        // Upstream's argument rules and messages.
        if input.is_empty() {
            return Err(CliError::Usage(
                "app image name(-i) should not be empty".into(),
            ));
        }
        let dir = args
            .dir
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| CliError::Usage("image tarball directory should not be empty".into()))?;
        if args.base.is_some() && args.base == args.lib {
            return Err(CliError::Usage("base and lib tarballs are the same".into()));
        }
        if !crate::privilege::as_caller(|| dir.exists()) {
            return Err(CliError::Usage(format!(
                "image tarball directory {:?} is not exist",
                dir.display().to_string()
            )));
        }
        let opts = LoadSeparated {
            app: input,
            dir,
            base: args.base,
            lib: args.lib,
            skip_check: args.no_check,
        };
        store = open_store(settings)?;
        let mut bar = LayerBars::new("Loading");
        let res = separated::load(&store, &settings.policy, &opts, &mut |p| bar.update(p));
        bar.finish();
        res?
    } else {
        if input.is_empty() {
            return Err(CliError::Usage("tarball path should not be empty".into()));
        }
        store = open_store(settings)?;
        let mut bar = LayerBars::new("Loading");
        let res = load::load(
            &store,
            &settings.policy,
            std::path::Path::new(&input),
            &mut |p| bar.update(p),
        );
        bar.finish();
        res?
    };
    for l in loaded {
        println!("Loaded image as {}", l.id);
    }
    Ok(())
}
