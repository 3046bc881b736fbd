//! `manifest create|annotate|inspect|push` (experimental, as upstream).

use crate::cli::{open_store, CliError};
use crate::config::Settings;
use crate::registry::manifest_list::{self, Annotation};

#[derive(Debug, clap::Subcommand)]
pub enum ManifestCmd {
    /// Create a local manifest list
    Create(CreateArgs),
    /// Annotate a local manifest list
    Annotate(AnnotateArgs),
    /// Inspect a local manifest list
    Inspect(InspectArgs),
    /// Push a local manifest list to a repository
    Push(PushArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
    #[arg(value_name = "MANIFEST")]
    pub manifests: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
    #[arg(value_name = "MANIFEST")]
    pub manifest: String,
    /// Set architecture
    #[arg(long)]
    pub arch: Option<String>,
    /// Set operating system
    #[arg(long)]
    pub os: Option<String>,
    /// Set operating system feature
    #[arg(long = "os-features", value_delimiter = ',')]
    pub os_features: Vec<String>,
    /// Set architecture variant
    #[arg(long)]
    pub variant: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[arg(value_name = "MANIFEST_LIST")]
    pub lists: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[arg(value_name = "MANIFEST_LIST")]
    pub list: String,
    #[arg(value_name = "DESTINATION")]
    pub destination: String,
}

pub fn run(settings: &Settings, cmd: ManifestCmd) -> Result<(), CliError> {
    if !settings.experimental {
        return Err(CliError::Usage(
            "manifest is an experimental feature: enable it with --experimental or ISULABUILD_CLI_EXPERIMENTAL=enabled".into(),
        ));
    }
    let store = open_store(settings)?;
    match cmd {
        ManifestCmd::Create(a) => {
            if a.list.is_empty() {
                return Err(CliError::Usage(
                    "please specify a name to manifest list".into(),
                ));
            }
            let id = manifest_list::create(&store, settings, &a.list, &a.manifests)?;
            println!("{id}");
        }
        ManifestCmd::Annotate(a) => {
            let ann = Annotation {
                arch: a.arch,
                os: a.os,
                os_features: a.os_features,
                variant: a.variant,
            };
            manifest_list::annotate(&store, &a.list, &a.manifest, &ann)?;
            println!("Annotate manifest succeed");
        }
        ManifestCmd::Inspect(a) => {
            let name = match a.lists.as_slice() {
                [] => {
                    return Err(CliError::Usage(
                        "please specify the manifest list name".into(),
                    ))
                }
                [n] => n,
                _ => {
                    return Err(CliError::Usage(
                        "only one manifest list can be specified".into(),
                    ))
                }
            };
            let l = manifest_list::load(&store, name)?;
            println!("{}", manifest_list::to_pretty_json(&l.list)?);
        }
        ManifestCmd::Push(a) => {
            manifest_list::push(&store, settings, &a.list, &a.destination)?;
            println!("Push manifest list {} succeed", a.list);
        }
    }
    Ok(())
}
