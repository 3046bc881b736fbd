//! Facts about the host and this process, for `info` and `version`.

use crate::config::Settings;
use crate::storage::fsutil;

/// Memory figures from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HostMemory {
    pub mem_total: u64,
    pub mem_free: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

/// This process's memory from `/proc/self/status`, in bytes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProcessMemory {
    pub vm_size: u64,
    pub vm_rss: u64,
    pub vm_hwm: u64,
    pub vm_data: u64,
    pub threads: u64,
}

/// Everything `info` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Info {
    pub memory: HostMemory,
    pub oci_runtime: String,
    pub data_root: String,
    pub run_root: String,
    pub builders: usize,
    pub experimental: bool,
    pub storage_driver: String,
    pub backing_fs: String,
    pub search_registries: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub process: Option<ProcessMemory>,
}

fn kib_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
}

pub fn host_memory() -> HostMemory {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    HostMemory {
        mem_total: kib_field(&text, "MemTotal") * 1024,
        mem_free: kib_field(&text, "MemFree") * 1024,
        swap_total: kib_field(&text, "SwapTotal") * 1024,
        swap_free: kib_field(&text, "SwapFree") * 1024,
    }
}

pub fn process_memory() -> ProcessMemory {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    ProcessMemory {
        vm_size: kib_field(&text, "VmSize") * 1024,
        vm_rss: kib_field(&text, "VmRSS") * 1024,
        vm_hwm: kib_field(&text, "VmHWM") * 1024,
        vm_data: kib_field(&text, "VmData") * 1024,
        threads: kib_field(&text, "Threads"),
    }
}

/// Gather `info`. The data root must exist (open the store first).
pub fn info(settings: &Settings, verbose: bool) -> Info {
    Info {
        memory: host_memory(),
        oci_runtime: if settings.runtime.is_empty() {
            "built-in sandbox".to_string()
        } else {
            settings.runtime.clone()
        },
        data_root: settings.dataroot.display().to_string(),
        run_root: settings.runroot.display().to_string(),
        builders: crate::lock::count_running_builds(&settings.runroot),
        experimental: settings.experimental,
        storage_driver: settings.storage_driver.clone(),
        backing_fs: fsutil::backing_fs(&settings.dataroot),
        search_registries: settings.registries.search.clone(),
        insecure_registries: settings.registries.insecure.clone(),
        process: verbose.then(process_memory),
    }
}

/// Build facts recorded at compile time.
pub struct VersionInfo {
    pub version: &'static str,
    pub rustc: &'static str,
    pub git_commit: &'static str,
    pub build_time_epoch: &'static str,
}

pub const VERSION: VersionInfo = VersionInfo {
    version: env!("CARGO_PKG_VERSION"),
    rustc: env!("ISULA_BUILD_RUSTC_VERSION"),
    git_commit: env!("ISULA_BUILD_GIT_COMMIT"),
    build_time_epoch: env!("ISULA_BUILD_BUILD_TIME"),
};

/// When this binary was built, as Go's `time.ANSIC` in local time ("unknown" when not recorded).
pub fn build_time_local() -> String {
    VERSION
        .build_time_epoch
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%a %b %e %H:%M:%S %Y")
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn meminfo_fields_parse() {
        let t = "MemTotal:       24000000 kB\nMemFree:  100 kB\nSwapTotal: 0 kB\n";
        assert_eq!(super::kib_field(t, "MemTotal"), 24_000_000);
        assert_eq!(super::kib_field(t, "MemFree"), 100);
        assert_eq!(super::kib_field(t, "Nope"), 0);
    }
}
