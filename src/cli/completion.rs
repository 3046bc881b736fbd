//! `completion`: shell completion scripts generated from the clap definitions.

use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// Shell to generate completions for
    #[arg(value_enum, default_value = "bash")]
    pub shell: clap_complete::Shell,
}

pub fn run(args: CompletionArgs) {
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "isula-build", &mut std::io::stdout());
}
