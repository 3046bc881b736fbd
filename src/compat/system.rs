//! Version, Info and HealthCheck.

use crate::compat::backend::{blocking, open_store, Backend};
use crate::compat::proto::{
    health_check_response::ServingStatus, HealthCheckResponse, InfoRequest, InfoResponse, MemData,
    MemStat, RegistryData, StorageData, VersionResponse,
};
use crate::system::VERSION;
use tonic::Status;

pub fn version() -> VersionResponse {
    let (arch, _) = crate::image::config::host_platform();
    VersionResponse {
        version: VERSION.version.to_string(),
        // Upstream's field holds the Go version; ours holds the Rust compiler's.
        go_version: VERSION.rustc.to_string(),
        git_commit: VERSION.git_commit.to_string(),
        build_time: crate::system::build_time_local(),
        os_arch: format!("linux/{arch}"),
    }
}

pub fn health_check() -> HealthCheckResponse {
    HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    }
}

/// What `info` shows. Upstream's Go-runtime fields carry this process's figures instead:
/// `goRoutines` the server's thread count; with `verbose`, `memStat` has `memSys` = VmSize,
/// `heapSys` = VmData, `heapAlloc` = `heapInUse` = VmRSS (heapIdle and heapReleased 0).
pub async fn info(b: &Backend, req: InfoRequest) -> Result<InfoResponse, Status> {
    let settings = b.settings.clone();
    blocking(move || {
        // Opening the store creates the data root, so the backing filesystem describes it.
        open_store(&settings)?;
        let info = crate::system::info(&settings, req.verbose);
        let me = crate::system::process_memory();
        let i64_of = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Ok(InfoResponse {
            mem_info: Some(MemData {
                mem_total: i64_of(info.memory.mem_total),
                mem_free: i64_of(info.memory.mem_free),
                swap_total: i64_of(info.memory.swap_total),
                swap_free: i64_of(info.memory.swap_free),
            }),
            storage_info: Some(StorageData {
                storage_driver: info.storage_driver,
                storage_backing_fs: info.backing_fs,
            }),
            registry_info: Some(RegistryData {
                registries_search: info.search_registries,
                registries_insecure: info.insecure_registries,
                registries_block: settings.registries.blocked.clone(),
            }),
            data_root: info.data_root,
            run_root: info.run_root,
            oci_runtime: info.oci_runtime,
            builder_num: i64::try_from(info.builders).unwrap_or(i64::MAX),
            go_routines: i64_of(me.threads),
            mem_stat: info.process.map(|p| MemStat {
                mem_sys: p.vm_size,
                heap_sys: p.vm_data,
                heap_alloc: p.vm_rss,
                heap_in_use: p.vm_rss,
                heap_idle: 0,
                heap_released: 0,
            }),
            experimental: info.experimental,
        })
    })
    .await
}
