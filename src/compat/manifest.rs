//! ManifestCreate, ManifestAnnotate, ManifestInspect and ManifestPush (experimental, as
//! upstream: refused unless the server runs with experimental features).

use crate::compat::backend::{blocking, open_store, stream_blocking, Backend, LineStream};
use crate::compat::error::CompatError;
use crate::compat::proto::{
    ManifestAnnotateRequest, ManifestCreateRequest, ManifestCreateResponse, ManifestInspectRequest,
    ManifestInspectResponse, ManifestPushRequest, ManifestPushResponse,
};
use crate::config::Settings;
use crate::registry::manifest_list::{self, Annotation};
use tonic::Status;

fn experimental(settings: &Settings) -> Result<(), CompatError> {
    if settings.experimental {
        Ok(())
    } else {
        // Upstream's wording.
        Err(CompatError::Invalid(
            "please enable experimental to use manifest feature".into(),
        ))
    }
}

pub async fn create(
    b: &Backend,
    req: ManifestCreateRequest,
) -> Result<ManifestCreateResponse, Status> {
    let settings = b.settings.clone();
    blocking(move || {
        experimental(&settings)?;
        if req.manifest_list.is_empty() {
            return Err(CompatError::Invalid(
                "please specify a name to manifest list".into(),
            ));
        }
        let store = open_store(&settings)?;
        let image_id =
            manifest_list::create(&store, &settings, &req.manifest_list, &req.manifests)?;
        Ok(ManifestCreateResponse { image_id })
    })
    .await
}

pub async fn annotate(b: &Backend, req: ManifestAnnotateRequest) -> Result<(), Status> {
    let settings = b.settings.clone();
    blocking(move || {
        experimental(&settings)?;
        let store = open_store(&settings)?;
        let some = |s: String| Some(s).filter(|s| !s.is_empty());
        let ann = Annotation {
            arch: some(req.arch),
            os: some(req.os),
            os_features: req.os_features,
            variant: some(req.variant),
        };
        manifest_list::annotate(&store, &req.manifest_list, &req.manifest, &ann)?;
        Ok(())
    })
    .await
}

pub async fn inspect(
    b: &Backend,
    req: ManifestInspectRequest,
) -> Result<ManifestInspectResponse, Status> {
    let settings = b.settings.clone();
    blocking(move || {
        experimental(&settings)?;
        if req.manifest_list.is_empty() {
            return Err(CompatError::Invalid(
                "please specify the manifest list name".into(),
            ));
        }
        let store = open_store(&settings)?;
        let l = manifest_list::load(&store, &req.manifest_list)?;
        let data = manifest_list::to_pretty_json(&l.list)?.into_bytes();
        Ok(ManifestInspectResponse { data })
    })
    .await
}

/// The client prints `Push manifest list NAME succeed` itself when the stream ends cleanly.
pub fn push(b: &Backend, req: ManifestPushRequest) -> LineStream<ManifestPushResponse> {
    let settings = b.settings.clone();
    stream_blocking(
        |result| ManifestPushResponse { result },
        move |emit| {
            experimental(&settings)?;
            let store = open_store(&settings)?;
            let digest = manifest_list::push(&store, &settings, &req.manifest_list, &req.dest)
                .map_err(|e| {
                    CompatError::Invalid(format!(
                        "push manifest {} to {} failed: {e}",
                        req.manifest_list, req.dest
                    ))
                })?;
            emit(format!(
                "Writing manifest list {digest} to image destination\n"
            ));
            Ok(())
        },
    )
}
