//! `version`.

use crate::system::VERSION;

pub fn run() {
    let built = VERSION
        .build_time_epoch
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%a %b %e %H:%M:%S %Y")
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into());
    let (arch, _) = crate::image::config::host_platform();
    println!("Version:       {}", VERSION.version);
    println!("Rust Version:  {}", VERSION.rustc);
    println!("Git Commit:    {}", VERSION.git_commit);
    println!("Built:         {built}");
    println!("OS/Arch:       linux/{arch}");
}
