//! `ctr-img images`.

use crate::cli::output::{format_size, simple_table};
use crate::cli::{open_store, CliError};
use crate::config::Settings;
use crate::display::local_time;
use crate::image::manage;

/// Empty table, exactly as upstream prints it.
const EMPTY_TABLE: &str = "-----------   ----   ---------   --------
REPOSITORY    TAG    IMAGE ID    CREATED
-----------   ----   ---------   --------";

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Show only images of this repository, or the one image REPOSITORY:TAG
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub image: Option<String>,
    /// Output format: table (default) or json
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Only print image IDs
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(settings: &Settings, args: ImagesArgs) -> Result<(), CliError> {
    let store = open_store(settings)?;
    let rows = manage::list(&store, args.image.as_deref())?;
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(&r.id) {
                println!("{}", &r.id[..12]);
            }
        }
        return Ok(());
    }
    if args.format == "json" {
        let text =
            serde_json::to_string_pretty(&rows).map_err(|e| CliError::Other(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    if rows.is_empty() {
        println!("{EMPTY_TABLE}");
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.repository.clone(),
                r.tag.clone(),
                r.id[..12].to_string(),
                local_time(&r.created),
                format_size(r.size as f64, 1000.0),
            ]
        })
        .collect();
    print!(
        "{}",
        simple_table(
            &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
            &cells
        )
    );
    Ok(())
}
