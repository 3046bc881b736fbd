//! List, Tag, Remove, Import, Load and Save: the store-side image RPCs, each through the
//! library calls `ctr-img images|tag|rm|import|load|save` make.

use crate::compat::backend::{blocking, open_store, stream_blocking, Backend, LineStream};
use crate::compat::error::CompatError;
use crate::compat::proto::{
    list_response::ImageInfo, ImportRequest, ImportResponse, ListRequest, ListResponse,
    LoadRequest, LoadResponse, RemoveRequest, RemoveResponse, SaveRequest, SaveResponse,
    TagRequest,
};
use crate::display::{format_size, local_time};
use crate::image::archive::separated::{self, LoadSeparated, SaveSeparated};
use crate::image::load::Progress;
use crate::image::manage::{self, RemoveEvent, RemoveTarget};
use crate::image::save::Format;
use std::path::{Path, PathBuf};
use tonic::Status;

/// Upstream's `List`: one row per name, created as local "YYYY-MM-DD HH:MM:SS", size in
/// powers of 1000.
pub async fn list(b: &Backend, req: ListRequest) -> Result<ListResponse, Status> {
    let settings = b.settings.clone();
    blocking(move || {
        let store = open_store(&settings)?;
        let filter = Some(req.image_name.as_str()).filter(|f| !f.is_empty());
        let rows = manage::list(&store, filter)?;
        Ok(ListResponse {
            images: rows
                .into_iter()
                .map(|r| ImageInfo {
                    repository: r.repository,
                    tag: r.tag,
                    id: r.id,
                    created: local_time(&r.created),
                    size: format_size(r.size as f64, 1000.0),
                })
                .collect(),
        })
    })
    .await
}

pub async fn tag(b: &Backend, req: TagRequest) -> Result<(), Status> {
    let settings = b.settings.clone();
    blocking(move || {
        let store = open_store(&settings)?;
        manage::tag(&store, &req.image, &req.tag)?;
        Ok(())
    })
    .await
}

/// Upstream's argument rules (its client checks them too).
fn remove_target(req: RemoveRequest) -> Result<RemoveTarget, CompatError> {
    let inv = |m: &str| Err(CompatError::Invalid(m.to_string()));
    match (req.image_id.is_empty(), req.all, req.prune) {
        (false, true, _) => inv("imageID/name is not allowed when using --all"),
        (false, _, true) => inv("imageID/name is not allowed when using --prune"),
        (false, false, false) => Ok(RemoveTarget::Images(req.image_id)),
        (true, true, true) => inv("--prune is not allowed when using --all"),
        (true, true, false) => Ok(RemoveTarget::All),
        (true, false, true) => Ok(RemoveTarget::Untagged),
        (true, false, false) => inv("imageID/name must be specified"),
    }
}

/// One message per event (the lines `ctr-img rm` prints); a failure on one image does not
/// stop the others, and the stream then ends with upstream's error.
pub fn remove(b: &Backend, req: RemoveRequest) -> LineStream<RemoveResponse> {
    let settings = b.settings.clone();
    stream_blocking(
        |layer_message| RemoveResponse { layer_message },
        move |emit| {
            let target = remove_target(req)?;
            let store = open_store(&settings)?;
            let (events, ok) = manage::remove(&store, &target)?;
            for e in events {
                emit(match e {
                    RemoveEvent::Untagged(n) => format!("Untagged: {n}"),
                    RemoveEvent::Deleted(id) => format!("Deleted: {id}"),
                    RemoveEvent::Failed(msg) => msg,
                });
            }
            if !ok {
                return Err(CompatError::Invalid(
                    "remove one or more images failed".into(),
                ));
            }
            Ok(())
        },
    )
}

pub fn import(b: &Backend, req: ImportRequest) -> LineStream<ImportResponse> {
    let settings = b.settings.clone();
    stream_blocking(
        |log| ImportResponse { log },
        move |emit| {
            if req.source.is_empty() {
                return Err(CompatError::Invalid(
                    "import source path should not be empty".into(),
                ));
            }
            let store = open_store(&settings)?;
            let done = crate::image::import::import(
                &store,
                &settings.policy,
                Path::new(&req.source),
                &req.reference,
                &mut |_| {},
            )?;
            emit(format!("Import success with image id: {:?}\n", done.id));
            Ok(())
        },
    )
}

/// `Copying blob` lines for save and load, as the containers/image reporter upstream uses.
fn layer_line(p: Progress, emit: &(dyn Fn(String) + Sync)) {
    match p {
        Progress::Layer { id, .. } => emit(format!("Copying blob {id}\n")),
        Progress::LayerExists { id } => {
            emit(format!("Copying blob {id} skipped: already exists\n"))
        }
        Progress::Bytes(_) | Progress::LayerDone => {}
    }
}

fn non_empty(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

pub fn load(b: &Backend, req: LoadRequest) -> LineStream<LoadResponse> {
    let settings = b.settings.clone();
    stream_blocking(
        |log| LoadResponse { log },
        move |emit| {
            let store = open_store(&settings)?;
            let loaded = match req.sep.filter(|s| s.enabled) {
                Some(sep) => {
                    if sep.app.is_empty() {
                        return Err(CompatError::Invalid(
                            "app image name(-i) should not be empty".into(),
                        ));
                    }
                    if sep.dir.is_empty() {
                        return Err(CompatError::Invalid(
                            "image tarball directory should not be empty".into(),
                        ));
                    }
                    let opts = LoadSeparated {
                        app: sep.app,
                        dir: PathBuf::from(sep.dir),
                        base: non_empty(sep.base).map(PathBuf::from),
                        lib: non_empty(sep.lib).map(PathBuf::from),
                        skip_check: sep.skip_check,
                    };
                    separated::load(&store, &settings.policy, &opts, &mut |p| {
                        layer_line(p, emit)
                    })?
                }
                None => {
                    if req.path.is_empty() {
                        return Err(CompatError::Invalid(
                            "tarball path should not be empty".into(),
                        ));
                    }
                    crate::image::load::load(
                        &store,
                        &settings.policy,
                        Path::new(&req.path),
                        &mut |p| layer_line(p, emit),
                    )?
                }
            };
            for l in loaded {
                emit(format!("Loaded image as {}\n", l.id));
            }
            Ok(())
        },
    )
}

pub fn save(b: &Backend, req: SaveRequest) -> LineStream<SaveResponse> {
    let settings = b.settings.clone();
    stream_blocking(
        |log| SaveResponse { log },
        move |emit| {
            if req.images.is_empty() {
                return Err(CompatError::Invalid(
                    "save accepts at least one image".into(),
                ));
            }
            let store = open_store(&settings)?;
            if let Some(sep) = req.sep.filter(|s| s.enabled) {
                let base = non_empty(sep.base).ok_or_else(|| {
                    CompatError::Invalid("base image name(-b) must be provided".into())
                })?;
                let opts = SaveSeparated {
                    apps: req.images,
                    base,
                    lib: non_empty(sep.lib),
                    rename: non_empty(sep.rename).map(PathBuf::from),
                    dest: PathBuf::from(non_empty(sep.dest).unwrap_or_else(|| "Images".into())),
                };
                separated::save(&store, &opts, &mut |p| layer_line(p, emit))?;
                return Ok(());
            }
            // Upstream's formats: "docker" (docker-archive) and "oci" (oci-archive).
            let format = match req.format.as_str() {
                "docker" | "" => Format::DockerArchive,
                "oci" => Format::Oci,
                _ => {
                    return Err(CompatError::Invalid(
                        "check save options failed: wrong image format provided".into(),
                    ))
                }
            };
            if req.path.is_empty() {
                return Err(CompatError::Invalid(
                    "output path(-o) should not be empty".into(),
                ));
            }
            if format == Format::Oci && req.images.len() >= 2 {
                return Err(CompatError::Invalid(
                    "oci image format now only supports saving single image".into(),
                ));
            }
            crate::image::save::save(
                &store,
                &req.images,
                Path::new(&req.path),
                format,
                &mut |p| layer_line(p, emit),
            )?;
            Ok(())
        },
    )
}
