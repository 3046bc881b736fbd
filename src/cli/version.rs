//! `version`.

use crate::system::VERSION;

pub fn run() {
    let built = crate::system::build_time_local();
    let (arch, _) = crate::image::config::host_platform();
    println!("Version:       {}", VERSION.version);
    println!("Rust Version:  {}", VERSION.rustc);
    println!("Git Commit:    {}", VERSION.git_commit);
    println!("Built:         {built}");
    println!("OS/Arch:       linux/{arch}");
}
