//! `logout`: remove saved credentials for one registry, or all.

use crate::cli::CliError;
use crate::config::Settings;
use crate::registry::credentials;

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Registry (host[:port])
    #[arg(value_name = "SERVER")]
    pub server: Vec<String>,
    /// Logout all registries
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(settings: &Settings, args: LogoutArgs) -> Result<(), CliError> {
    if args.server.len() > 1 {
        return Err(CliError::Usage(
            "too many arguments, login only accepts 1 argument".into(),
        ));
    }
    if args.all {
        if let Err(e) = credentials::remove_all(&settings.config_dir) {
            println!("Remove authentications failed");
            return Err(e.into());
        }
        println!("Removed authentications");
        return Ok(());
    }
    let Some(server) = args.server.first() else {
        return Err(CliError::Usage(
            "empty registry found, please input one registry".into(),
        ));
    };
    let server = credentials::normalize_server(server)?;
    match credentials::remove(&settings.config_dir, &server) {
        Ok(true) => {
            println!("Removed authentication for {server}");
            Ok(())
        }
        Ok(false) => {
            println!("Not logged in registry {server}");
            Err(CliError::Other(format!("not logged in registry {server}")))
        }
        Err(e) => {
            println!("Logout for {server} failed");
            Err(e.into())
        }
    }
}
