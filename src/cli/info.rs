//! `info`.

use crate::cli::output::format_size;
use crate::cli::{open_store, CliError};
use crate::config::Settings;

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Print memory info in human readable format, use powers of 1024
    #[arg(short = 'H', long = "human-readable")]
    pub human_readable: bool,
    /// Print this process's memory info
    #[arg(short = 'V', long)]
    pub verbose: bool,
}

pub fn run(settings: &Settings, args: InfoArgs) -> Result<(), CliError> {
    // Opening the store creates the data root, so Backing Filesystem describes it.
    open_store(settings)?;
    let info = crate::system::info(settings, args.verbose);
    let mem = |v: u64| {
        if args.human_readable {
            format_size(v as f64, 1024.0)
        } else {
            v.to_string()
        }
    };
    println!("General:");
    println!("  MemTotal:     {}", mem(info.memory.mem_total));
    println!("  MemFree:      {}", mem(info.memory.mem_free));
    println!("  SwapTotal:    {}", mem(info.memory.swap_total));
    println!("  SwapFree:     {}", mem(info.memory.swap_free));
    println!("  OCI Runtime:  {}", info.oci_runtime);
    println!("  DataRoot:     {}", info.data_root);
    println!("  RunRoot:      {}", info.run_root);
    println!("  Builders:     {}", info.builders);
    println!("  Experimental: {}", info.experimental);
    println!("Store:");
    println!("  Storage Driver:     {}", info.storage_driver);
    println!("  Backing Filesystem: {}", info.backing_fs);
    println!("Registry:");
    println!("  Search Registries:");
    for r in &info.search_registries {
        println!("    {r}");
    }
    println!("  Insecure Registries:");
    for r in &info.insecure_registries {
        println!("    {r}");
    }
    if let Some(p) = &info.process {
        println!("Runtime:");
        println!("  VmSize:   {}", mem(p.vm_size));
        println!("  VmRSS:    {}", mem(p.vm_rss));
        println!("  VmHWM:    {}", mem(p.vm_hwm));
        println!("  VmData:   {}", mem(p.vm_data));
        println!("  Threads:  {}", p.threads);
    }
    Ok(())
}
