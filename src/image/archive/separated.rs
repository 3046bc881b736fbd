//! Separated images (upstream's `save -b/-l/-d`, `load -d/-b/-l`): each app image is split
//! into a base, an optional lib and an app package, so hosts that already hold the base
//! (and lib) only need the small app package.
//!
//! ```text
//! <dest>/
//!   manifest                        {"app:tag": {"app": ..., "appHash": ..., "base": ..., ...}}
//!   <app>_<tag>_base_image.tar.gz   <layer-id>/layer.tar for the base image's layers
//!   <app>_<tag>_lib_image.tar.gz    the lib image's layers above the base (optional)
//!   <app>_<tag>_app_image.tar.gz    the app's own layers, its config, manifest.json, repositories
//! ```
//!
//! Put back together, the three packages form one docker-archive. Hashes are the sha256 of
//! each `.tar.gz` file (hex, as upstream), computed while writing and checked while
//! reading. A base or lib shared by several apps is written once.

use crate::compression;
use crate::digest::{Digest, HashingWriter};
use crate::image::archive::docker_archive::{
    self, ManifestEntry, Repositories, MANIFEST_JSON, REPOSITORIES,
};
use crate::image::archive::{ArchiveError, ArchiveIndex, TarOut};
use crate::image::error::ImageError;
use crate::image::import::open_source;
use crate::image::load::{self, LoadError, Loaded, Progress, MAX_LOAD_SIZE};
use crate::image::reference::{split_repo_tag, Reference};
use crate::image::save::{layer_dir_name, select, write_docker_layer, Selected};
use crate::storage::{LayerMeta, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest";
pub const BASE_SUFFIX: &str = "_base_image.tar.gz";
pub const LIB_SUFFIX: &str = "_lib_image.tar.gz";
pub const APP_SUFFIX: &str = "_app_image.tar.gz";
/// Largest `manifest` and rename file read.
const MAX_SMALL_FILE: u64 = 1024 * 1024;

/// One app's entry in `<dest>/manifest` (upstream's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarballInfo {
    #[serde(rename = "app", default)]
    pub app_tar_name: String,
    #[serde(rename = "appHash", default)]
    pub app_hash: String,
    #[serde(rename = "appLayers", default)]
    pub app_layers: Option<Vec<String>>,
    #[serde(rename = "lib", default)]
    pub lib_tar_name: String,
    #[serde(rename = "libHash", default)]
    pub lib_hash: String,
    #[serde(rename = "libImageName", default)]
    pub lib_image_name: String,
    #[serde(rename = "libLayers", default)]
    pub lib_layers: Option<Vec<String>>,
    #[serde(rename = "base", default)]
    pub base_tar_name: String,
    #[serde(rename = "baseHash", default)]
    pub base_hash: String,
    #[serde(rename = "baseImageName", default)]
    pub base_image_name: String,
    #[serde(rename = "baseLayer", default)]
    pub base_layer: String,
}

/// An entry of the `-r` rename file.
#[derive(Debug, Clone, Deserialize)]
struct Rename {
    name: String,
    rename: String,
}

/// Options of a separated save.
#[derive(Debug, Clone)]
pub struct SaveSeparated {
    pub apps: Vec<String>,
    pub base: String,
    pub lib: Option<String>,
    pub rename: Option<PathBuf>,
    pub dest: PathBuf,
}

/// Options of a separated load.
#[derive(Debug, Clone)]
pub struct LoadSeparated {
    pub app: String,
    pub dir: PathBuf,
    pub base: Option<PathBuf>,
    pub lib: Option<PathBuf>,
    pub skip_check: bool,
}

fn invalid(s: impl Into<String>) -> ImageError {
    ImageError::Invalid(s.into())
}

/// A package name from a manifest or rename file must be a plain file name in the directory.
fn plain_file_name(n: &str, what: &str) -> Result<(), ImageError> {
    if n.is_empty() || n == "." || n == ".." || n.contains('/') || n.contains('\0') {
        return Err(invalid(format!(
            "invalid {what} file name {n:?}: it must be a plain file name"
        )));
    }
    Ok(())
}

fn read_small_file(path: &Path, what: &str) -> Result<Vec<u8>, ImageError> {
    let (mut f, _) = open_source(path, MAX_SMALL_FILE, what)?;
    let mut b = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut b).map_err(|e| ImageError::Source {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(b)
}

/// `<last path component of the repository>_<tag><suffix>`, as upstream names packages.
fn tar_name(name_tag: &str, suffix: &str) -> String {
    let (repo, tag) = split_repo_tag(name_tag);
    let short = repo.rsplit('/').next().unwrap_or(repo);
    format!("{short}_{}{suffix}", tag.unwrap_or("latest"))
}

/// The dest dir: created when missing; an existing one must be an empty directory.
fn prepare_dest(dest: &Path) -> Result<bool, ImageError> {
    crate::privilege::as_caller(|| prepare_dest_as_caller(dest))
}

fn prepare_dest_as_caller(dest: &Path) -> Result<bool, ImageError> {
    match std::fs::symlink_metadata(dest) {
        Err(_) => {
            std::fs::create_dir_all(dest).map_err(|e| ImageError::Source {
                path: dest.to_path_buf(),
                reason: e.to_string(),
            })?;
            Ok(true)
        }
        Ok(md) if md.is_dir() => {
            let empty = std::fs::read_dir(dest)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(invalid(format!(
                    "dest path already exist: {:?}, try to remove or rename it",
                    dest.display().to_string()
                )));
            }
            Ok(false)
        }
        Ok(_) => Err(invalid(format!(
            "dest path already exist: {:?}, try to remove or rename it",
            dest.display().to_string()
        ))),
    }
}

/// Removes what a failed save wrote.
struct Cleanup {
    dest: PathBuf,
    created_dir: bool,
    files: Vec<PathBuf>,
    done: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        crate::privilege::as_caller(|| {
            for f in &self.files {
                let _ = std::fs::remove_file(f);
            }
            if self.created_dir {
                let _ = std::fs::remove_dir(&self.dest);
            }
        });
    }
}

/// Create a new file in the user's dest dir (with their rights when installed setuid).
fn create_package_file(path: &Path) -> Result<std::fs::File, ImageError> {
    crate::privilege::as_caller(|| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    })
    .map_err(|e| invalid(format!("create {:?}: {e}", path.display().to_string())))
}

/// A gzip-compressed tar package being written; its sha256 is computed on the way.
struct Package {
    tar: TarOut<flate2::write::GzEncoder<HashingWriter<BufWriter<std::fs::File>>>>,
}

impl Package {
    fn create(path: &Path, cleanup: &mut Cleanup) -> Result<Package, ImageError> {
        let f = create_package_file(path)?;
        cleanup.files.push(path.to_path_buf());
        let w = HashingWriter::new(BufWriter::with_capacity(1 << 20, f));
        Ok(Package {
            tar: TarOut::new(compression::gzip_writer(w)),
        })
    }

    fn finish(self) -> Result<String, ImageError> {
        let e = |e: std::io::Error| ImageError::Save(e.to_string());
        let gz = self.tar.finish().map_err(e)?;
        let hw = gz.finish().map_err(e)?;
        let (digest, _, bw) = hw.finish();
        let f = bw.into_inner().map_err(|x| e(x.into_error()))?;
        f.sync_all().map_err(e)?;
        Ok(digest.hex().to_string())
    }
}

fn write_layers(
    store: &Store,
    pkg: &mut Package,
    metas: &[LayerMeta],
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<String>, ImageError> {
    let mut ids = Vec::new();
    for (i, m) in metas.iter().enumerate() {
        progress(Progress::Layer {
            n: i + 1,
            total: metas.len(),
            id: m.diff_id.short(),
            size: m.size,
        });
        write_docker_layer(store, m, &mut pkg.tar, &mut |b| {
            progress(Progress::Bytes(b))
        })?;
        progress(Progress::LayerDone);
        ids.push(layer_dir_name(m));
    }
    Ok(ids)
}

fn is_prefix(short: &Selected, long: &Selected) -> bool {
    short.layers.len() < long.layers.len()
        && short
            .record
            .layers
            .iter()
            .zip(&long.record.layers)
            .all(|(a, b)| a == b)
}

/// Save apps as separated base / lib / app packages in `opts.dest`.
pub fn save(
    store: &Store,
    opts: &SaveSeparated,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    for n in std::iter::once(&opts.base)
        .chain(opts.lib.iter())
        .chain(opts.apps.iter())
    {
        let ix = store.index()?;
        let rec = ix
            .find(n)
            .map_err(|e| invalid(format!("find local image {n:?} failed: {e}")))?;
        if rec.id.starts_with(n.strip_prefix("sha256:").unwrap_or(n)) {
            return Err(invalid(format!(
                "using image ID {n:?} as image name to save separated image is not allowed"
            )));
        }
    }
    let renames: Vec<Rename> = match &opts.rename {
        None => Vec::new(),
        Some(p) => {
            let b = read_small_file(p, "rename file")?;
            let r: Vec<Rename> = serde_json::from_slice(&b)
                .map_err(|e| invalid(format!("check rename file failed: {e}")))?;
            for x in &r {
                plain_file_name(&x.rename, "renamed package")?;
            }
            r
        }
    };
    let rename = |n: String| -> String {
        renames
            .iter()
            .find(|r| r.name == n)
            .map(|r| r.rename.clone())
            .unwrap_or(n)
    };

    let mut names: Vec<String> = vec![opts.base.clone()];
    names.extend(opts.lib.iter().cloned());
    let parts = select(store, &names)?;
    let base = parts
        .images
        .first()
        .ok_or_else(|| invalid("base image not found"))?
        .clone();
    let lib = if opts.lib.is_some() {
        Some(
            parts
                .images
                .get(1)
                .ok_or_else(|| invalid("base and lib images are the same"))?
                .clone(),
        )
    } else {
        None
    };
    let apps_sel = select(store, &opts.apps)?;
    let mut apps: Vec<(String, &Selected)> = Vec::new();
    for s in &apps_sel.images {
        for t in &s.tags {
            if !apps.iter().any(|(n, _)| n == t) {
                apps.push((t.clone(), s));
            }
        }
    }
    apps.sort_by(|a, b| a.0.cmp(&b.0));
    // Check every app before writing anything.
    for (name, app) in &apps {
        if !is_prefix(&base, app) {
            return Err(invalid(format!(
                "base image {} is not the base of app image {name}: the app's layers do not start with the base's",
                opts.base
            )));
        }
        if let Some(l) = &lib {
            if !is_prefix(&base, l) || !is_prefix(l, app) {
                return Err(invalid(format!(
                    "lib image {} does not sit between base image {} and app image {name}",
                    opts.lib.as_deref().unwrap_or(""),
                    opts.base
                )));
            }
        }
    }

    let created_dir = prepare_dest(&opts.dest)?;
    let mut cleanup = Cleanup {
        dest: opts.dest.clone(),
        created_dir,
        files: Vec::new(),
        done: false,
    };
    let mut written_base: Option<(String, String)> = None;
    let mut written_lib: Option<(String, String)> = None;
    let mut manifest: BTreeMap<String, TarballInfo> = BTreeMap::new();
    let nbase = base.layers.len();
    let nlib = lib.as_ref().map(|l| l.layers.len()).unwrap_or(nbase);
    for (name, app) in &apps {
        let mut info = TarballInfo {
            base_image_name: opts.base.clone(),
            base_layer: layer_dir_name(&base.layers[0]),
            ..Default::default()
        };
        let (bn, bh) = match &written_base {
            Some(x) => x.clone(),
            None => {
                let n = rename(tar_name(name, BASE_SUFFIX));
                let mut pkg = Package::create(&opts.dest.join(&n), &mut cleanup)?;
                write_layers(store, &mut pkg, &app.layers[..nbase], progress)?;
                let h = pkg.finish()?;
                written_base = Some((n.clone(), h.clone()));
                (n, h)
            }
        };
        info.base_tar_name = bn;
        info.base_hash = bh;
        if lib.is_some() {
            let (ln, lh) = match &written_lib {
                Some(x) => x.clone(),
                None => {
                    let n = rename(tar_name(name, LIB_SUFFIX));
                    let mut pkg = Package::create(&opts.dest.join(&n), &mut cleanup)?;
                    write_layers(store, &mut pkg, &app.layers[nbase..nlib], progress)?;
                    let h = pkg.finish()?;
                    written_lib = Some((n.clone(), h.clone()));
                    (n, h)
                }
            };
            info.lib_tar_name = ln;
            info.lib_hash = lh;
            info.lib_image_name = opts.lib.clone().unwrap_or_default();
            info.lib_layers = Some(app.layers[nbase..nlib].iter().map(layer_dir_name).collect());
        }
        let an = rename(tar_name(name, APP_SUFFIX));
        let mut pkg = Package::create(&opts.dest.join(&an), &mut cleanup)?;
        let app_ids = write_layers(store, &mut pkg, &app.layers[nlib..], progress)?;
        let config_name = format!("{}.json", app.record.id);
        let e = |e: std::io::Error| ImageError::Save(e.to_string());
        pkg.tar.file(&config_name, &app.config).map_err(e)?;
        let entry = vec![ManifestEntry {
            config: config_name,
            repo_tags: Some(vec![name.clone()]),
            layers: app
                .layers
                .iter()
                .map(|m| format!("{}/layer.tar", layer_dir_name(m)))
                .collect(),
        }];
        let mj = serde_json::to_vec(&entry).map_err(|x| ImageError::Save(x.to_string()))?;
        pkg.tar.file(MANIFEST_JSON, &mj).map_err(e)?;
        let (repo, tag) = split_repo_tag(name);
        let mut repos = Repositories::new();
        if let Some(top) = app.layers.last() {
            repos
                .entry(repo.to_string())
                .or_default()
                .insert(tag.unwrap_or("latest").to_string(), layer_dir_name(top));
        }
        let rj = serde_json::to_vec(&repos).map_err(|x| ImageError::Save(x.to_string()))?;
        pkg.tar.file(REPOSITORIES, &rj).map_err(e)?;
        info.app_hash = pkg.finish()?;
        info.app_tar_name = an;
        info.app_layers = Some(app_ids);
        manifest.insert(name.clone(), info);
    }
    let mb = serde_json::to_vec(&manifest).map_err(|x| ImageError::Save(x.to_string()))?;
    let mpath = opts.dest.join(MANIFEST_FILE);
    let mut f = create_package_file(&mpath)?;
    cleanup.files.push(mpath.clone());
    f.write_all(&mb)
        .and_then(|_| f.sync_all())
        .map_err(|e| ImageError::Save(e.to_string()))?;
    cleanup.done = true;
    Ok(())
}

/// Load an app image from separated packages.
pub fn load(
    store: &Store,
    policy: &crate::policy::Policy,
    opts: &LoadSeparated,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Loaded>, ImageError> {
    let app = Reference::parse_tagged_name(&opts.app)?.to_string();
    // Its tarballs are docker-archives, all in (or named next to) this directory.
    load::check_file_policy(policy, crate::policy::DOCKER_ARCHIVE, &opts.dir)?;
    let mpath = opts.dir.join(MANIFEST_FILE);
    let mb = read_small_file(&mpath, "separated image manifest")?;
    let manifest: BTreeMap<String, TarballInfo> = serde_json::from_slice(&mb)
        .map_err(|e| invalid(format!("load manifest file failed: {e}")))?;
    let info = manifest
        .get(&app)
        .ok_or_else(|| invalid(format!("failed to find app image {app}")))?;
    if info.app_tar_name.is_empty() {
        return Err(invalid(format!("app image {app} tarball can not be empty")));
    }
    if info.base_tar_name.is_empty() && opts.base.is_none() {
        return Err(invalid(format!(
            "base image {} tarball can not be empty",
            info.base_image_name
        )));
    }
    let in_dir = |n: &str, what: &str| -> Result<PathBuf, ImageError> {
        plain_file_name(n, what)?;
        Ok(opts.dir.join(n))
    };
    let base_path = match &opts.base {
        Some(p) => p.clone(),
        None => in_dir(&info.base_tar_name, "base package")?,
    };
    let lib_path = match &opts.lib {
        Some(p) => Some(p.clone()),
        None if !info.lib_tar_name.is_empty() => Some(in_dir(&info.lib_tar_name, "lib package")?),
        None => None,
    };
    let app_path = in_dir(&info.app_tar_name, "app package")?;

    let ws = store.workspace("load-separated")?;
    let mut files = Vec::new();
    let mut parts: Vec<(&str, &PathBuf, &str)> = vec![("base", &base_path, &info.base_hash)];
    if let Some(l) = &lib_path {
        parts.push(("lib", l, &info.lib_hash));
    }
    parts.push(("app", &app_path, &info.app_hash));
    for (what, path, want) in parts {
        let (file, _) = open_source(path, MAX_LOAD_SIZE, &format!("{what} image tarball"))?;
        let (spooled, digest) =
            load::spool(&ws, file, &format!("{what}.tar"), true).map_err(|e| {
                invalid(format!(
                    "unpack {what} image tarball {:?} failed: {e}",
                    path.display().to_string()
                ))
            })?;
        let got = digest
            .map(|d: Digest| d.hex().to_string())
            .unwrap_or_default();
        if !opts.skip_check && got != *want {
            return Err(invalid(format!(
                "check sum for file {:?} failed: got {got}, want {want}",
                path.display().to_string()
            )));
        }
        files.push(spooled);
    }
    let ix =
        ArchiveIndex::scan(files).map_err(|e| invalid(format!("separated image {app}: {e}")))?;
    let plans = docker_archive::plan(&ix).map_err(|e| match e {
        ArchiveError::Missing { what, name } if what == "layer" => invalid(format!(
            "layer {name:?} of {app} is in none of the base, lib and app tarballs: the base or lib image does not match what {app} was built on"
        )),
        other => invalid(format!("separated image {app}: {other}")),
    })?;
    load::load_plans(store, &ws, &ix, plans, progress).map_err(|e| match e {
        LoadError::Image(i) => i,
        other => invalid(format!("separated image {app}: {other}")),
    })
}
