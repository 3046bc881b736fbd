//! The `Control` service: shared state and the mapping of each RPC onto its handler in
//! `build`, `images`, `registry`, `system` and `manifest`. Library work is blocking, so it
//! runs on tokio's blocking pool; streamed RPCs send their lines from there as they come.

use crate::compat::build::Builds;
use crate::compat::crypto::ServerKey;
use crate::compat::error::{status, CompatError};
use crate::compat::proto::control_server::Control;
use crate::compat::proto::*;
use crate::compat::{build, images, manifest, registry, system};
use crate::config::Settings;
use crate::storage::Store;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// State shared by every RPC.
#[derive(Clone)]
pub struct Backend {
    pub settings: Arc<Settings>,
    pub key: Arc<ServerKey>,
    pub builds: Arc<Builds>,
}

/// A stream of responses fed from a blocking task.
pub type LineStream<T> = ReceiverStream<Result<T, Status>>;

pub fn open_store(settings: &Settings) -> Result<Store, CompatError> {
    Ok(Store::open(&settings.dataroot, &settings.runroot)?)
}

/// Run `f` on the blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CompatError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Status::from),
        Err(e) => Err(status(format!("internal error: {e}"))),
    }
}

/// Run `work` on the blocking pool; every line it emits becomes one response (`wrap`), and
/// an error ends the stream with that error. A client that goes away stops receiving; the
/// work itself runs to its end (the store stays consistent either way).
pub fn stream_blocking<T, F>(wrap: fn(String) -> T, work: F) -> LineStream<T>
where
    T: Send + 'static,
    F: FnOnce(&(dyn Fn(String) + Sync)) -> Result<(), CompatError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        let emit = |line: String| {
            let _ = tx.blocking_send(Ok(wrap(line)));
        };
        if let Err(e) = work(&emit) {
            tracing::error!("{e}");
            let _ = tx.blocking_send(Err(e.into()));
        }
    });
    ReceiverStream::new(rx)
}

fn log_request(what: &str) {
    tracing::info!("{what} received");
}

#[tonic::async_trait]
impl Control for Backend {
    async fn build(&self, r: Request<BuildRequest>) -> Result<Response<BuildResponse>, Status> {
        build::build(self, r.into_inner()).await.map(Response::new)
    }

    type StatusStream = LineStream<StatusResponse>;
    async fn status(
        &self,
        r: Request<StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        log_request("StatusRequest");
        build::status(self, r.into_inner()).map(Response::new)
    }

    async fn list(&self, r: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        log_request("ListRequest");
        images::list(self, r.into_inner()).await.map(Response::new)
    }

    async fn version(&self, _: Request<()>) -> Result<Response<VersionResponse>, Status> {
        log_request("VersionRequest");
        Ok(Response::new(system::version()))
    }

    type PushStream = LineStream<PushResponse>;
    async fn push(&self, r: Request<PushRequest>) -> Result<Response<Self::PushStream>, Status> {
        log_request("PushRequest");
        Ok(Response::new(registry::push(self, r.into_inner())))
    }

    type PullStream = LineStream<PullResponse>;
    async fn pull(&self, r: Request<PullRequest>) -> Result<Response<Self::PullStream>, Status> {
        log_request("PullRequest");
        Ok(Response::new(registry::pull(self, r.into_inner())))
    }

    type RemoveStream = LineStream<RemoveResponse>;
    async fn remove(
        &self,
        r: Request<RemoveRequest>,
    ) -> Result<Response<Self::RemoveStream>, Status> {
        log_request("RemoveRequest");
        Ok(Response::new(images::remove(self, r.into_inner())))
    }

    async fn health_check(&self, _: Request<()>) -> Result<Response<HealthCheckResponse>, Status> {
        log_request("HealthCheckRequest");
        Ok(Response::new(system::health_check()))
    }

    async fn login(&self, r: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        log_request("LoginRequest");
        registry::login(self, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn logout(&self, r: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        log_request("LogoutRequest");
        registry::logout(self, r.into_inner())
            .await
            .map(Response::new)
    }

    type LoadStream = LineStream<LoadResponse>;
    async fn load(&self, r: Request<LoadRequest>) -> Result<Response<Self::LoadStream>, Status> {
        log_request("LoadRequest");
        Ok(Response::new(images::load(self, r.into_inner())))
    }

    type ImportStream = LineStream<ImportResponse>;
    async fn import(
        &self,
        r: Request<ImportRequest>,
    ) -> Result<Response<Self::ImportStream>, Status> {
        log_request("ImportRequest");
        Ok(Response::new(images::import(self, r.into_inner())))
    }

    async fn tag(&self, r: Request<TagRequest>) -> Result<Response<()>, Status> {
        log_request("TagRequest");
        images::tag(self, r.into_inner()).await.map(Response::new)
    }

    type SaveStream = LineStream<SaveResponse>;
    async fn save(&self, r: Request<SaveRequest>) -> Result<Response<Self::SaveStream>, Status> {
        log_request("SaveRequest");
        Ok(Response::new(images::save(self, r.into_inner())))
    }

    async fn info(&self, r: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        log_request("InfoRequest");
        system::info(self, r.into_inner()).await.map(Response::new)
    }

    async fn manifest_create(
        &self,
        r: Request<ManifestCreateRequest>,
    ) -> Result<Response<ManifestCreateResponse>, Status> {
        log_request("ManifestCreateRequest");
        manifest::create(self, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn manifest_annotate(
        &self,
        r: Request<ManifestAnnotateRequest>,
    ) -> Result<Response<()>, Status> {
        log_request("ManifestAnnotateRequest");
        manifest::annotate(self, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn manifest_inspect(
        &self,
        r: Request<ManifestInspectRequest>,
    ) -> Result<Response<ManifestInspectResponse>, Status> {
        log_request("ManifestInspectRequest");
        manifest::inspect(self, r.into_inner())
            .await
            .map(Response::new)
    }

    type ManifestPushStream = LineStream<ManifestPushResponse>;
    async fn manifest_push(
        &self,
        r: Request<ManifestPushRequest>,
    ) -> Result<Response<Self::ManifestPushStream>, Status> {
        log_request("ManifestPushRequest");
        Ok(Response::new(manifest::push(self, r.into_inner())))
    }
}
