//! `ctr-img push`.

use crate::cli::pull::LayerProgress;
use crate::cli::{open_store, CliError};
use crate::config::Settings;
use crate::registry::client::BlobOutcome;
use crate::registry::media::Format;
use crate::registry::push::{self, PushOptions, PushProgress};

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Image to push; its name names the destination: REGISTRY/REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: String,
    /// Format for image pushing to a registry: docker or oci
    #[arg(short, long, default_value = "docker")]
    pub format: String,
    /// Upload blobs in chunks of this many bytes instead of one request each
    #[arg(long = "chunk-size", hide = true, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
}

pub fn run(settings: &Settings, args: PushArgs) -> Result<(), CliError> {
    let format: Format = args.format.parse().map_err(CliError::Usage)?;
    let store = open_store(settings)?;
    let ui = LayerProgress::new();
    let on = |p: PushProgress<'_>| match p {
        PushProgress::BlobStart { digest, size } => ui.start("Pushing", digest, size),
        PushProgress::BlobDone { digest, outcome } => ui.done(
            digest,
            match outcome {
                BlobOutcome::Exists => "already exists",
                BlobOutcome::Mounted => "mounted",
                BlobOutcome::Uploaded => "pushed",
            },
        ),
        PushProgress::ManifestDone { digest } => ui.note(&format!("Manifest digest: {digest}")),
    };
    let opts = PushOptions {
        format,
        chunk_size: args.chunk_size,
    };
    let reference = crate::storage::index::with_default_tag(&args.reference);
    match push::push(&store, settings, &reference, &reference, opts, &on) {
        Ok(_) => {
            println!("Push success with image: {}", args.reference);
            Ok(())
        }
        Err(e) => Err(CliError::Other(format!("push image failed: {e}"))),
    }
}
