//! Where blobs are known to exist remotely: `<dataroot>/registry/blob-sources.json`, a
//! small cache (digest → `registry/repository` list) written after pulls and pushes, so a
//! push can ask the registry to mount a blob from another repository instead of uploading
//! it. Losing an update to a concurrent writer only costs an upload.

use crate::digest::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILE: &str = "registry/blob-sources.json";
const MAX_REPOS_PER_BLOB: usize = 8;
const MAX_BLOBS: usize = 20_000;
const MAX_FILE: u64 = 16 * 1024 * 1024;

fn path(dataroot: &Path) -> PathBuf {
    dataroot.join(FILE)
}

fn load(dataroot: &Path) -> BTreeMap<String, Vec<String>> {
    let p = path(dataroot);
    match std::fs::metadata(&p) {
        Ok(md) if md.len() <= MAX_FILE => {}
        _ => return BTreeMap::new(),
    }
    std::fs::read(&p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Repositories (`registry/repository`) known to hold `d`.
pub fn lookup(dataroot: &Path, d: &Digest) -> Vec<String> {
    load(dataroot).remove(&d.to_string()).unwrap_or_default()
}

/// Record that `full_repo` holds every digest of `digests`. Best effort.
pub fn record(dataroot: &Path, full_repo: &str, digests: &[Digest]) {
    let mut m = load(dataroot);
    for d in digests {
        let v = m.entry(d.to_string()).or_default();
        v.retain(|r| r != full_repo);
        v.insert(0, full_repo.to_string());
        v.truncate(MAX_REPOS_PER_BLOB);
    }
    while m.len() > MAX_BLOBS {
        let Some(k) = m.keys().next().cloned() else {
            break;
        };
        m.remove(&k);
    }
    let p = path(dataroot);
    let Some(dir) = p.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(bytes) = serde_json::to_vec(&m) else {
        return;
    };
    let tmp = dir.join(format!(
        "blob-sources-{}.tmp",
        crate::storage::fsutil::random_hex(6)
    ));
    if let Err(e) = crate::storage::fsutil::write_atomic(&tmp, &p, &bytes) {
        tracing::debug!("blob source cache not written: {e}");
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_looks_up() {
        let t = tempfile::tempdir().unwrap();
        let d = Digest::of(b"x");
        assert!(lookup(t.path(), &d).is_empty());
        record(t.path(), "r/a", std::slice::from_ref(&d));
        record(t.path(), "r/b", std::slice::from_ref(&d));
        assert_eq!(
            lookup(t.path(), &d),
            vec!["r/b".to_string(), "r/a".to_string()]
        );
    }
}
