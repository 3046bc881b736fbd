//! Pull, Push, Login and Logout: the registry RPCs, through the library calls of
//! `ctr-img pull|push`, `login` and `logout`. Login passwords arrive RSA-encrypted.

use crate::compat::backend::{blocking, open_store, stream_blocking, Backend, LineStream};
use crate::compat::error::CompatError;
use crate::compat::proto::{
    LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, PullRequest, PullResponse,
    PushRequest, PushResponse,
};
use crate::registry::client::BlobOutcome;
use crate::registry::credentials::{self, Credentials};
use crate::registry::media::Format;
use crate::registry::pull::Progress;
use crate::registry::push::{PushOptions, PushProgress};
use tonic::Status;

/// Streams `Copying blob ...` lines as containers/image's reporter does upstream; the
/// client prints `Pull success with image: NAME` itself when the stream ends cleanly.
pub fn pull(b: &Backend, req: PullRequest) -> LineStream<PullResponse> {
    let settings = b.settings.clone();
    stream_blocking(
        |response| PullResponse { response },
        move |emit| {
            if req.image_name.is_empty() {
                return Err(CompatError::Invalid(
                    "pull requires exactly one argument".into(),
                ));
            }
            let store = open_store(&settings)?;
            let on = |p: Progress<'_>| match p {
                Progress::Resolved { name } => emit(format!("Pulling {name}\n")),
                Progress::Present => emit("Image is up to date\n".into()),
                Progress::LayerStart { digest, .. } => emit(format!("Copying blob {digest}\n")),
                Progress::LayerExists { digest } => {
                    emit(format!("Copying blob {digest} skipped: already exists\n"))
                }
                Progress::LayerBytes { .. } | Progress::LayerDone { .. } => {}
            };
            let pulled = crate::registry::pull::pull(&store, &settings, &req.image_name, &on)
                .map_err(|e| {
                    CompatError::Invalid(format!(
                        "copying source image {} failed: {e}",
                        req.image_name
                    ))
                })?;
            emit(format!("Image ID: {}\n", pulled.id));
            Ok(())
        },
    )
}

pub fn push(b: &Backend, req: PushRequest) -> LineStream<PushResponse> {
    let settings = b.settings.clone();
    stream_blocking(
        |response| PushResponse { response },
        move |emit| {
            let format: Format = match req.format.as_str() {
                "" => Format::Docker,
                f => f.parse().map_err(CompatError::Invalid)?,
            };
            if req.image_name.is_empty() {
                return Err(CompatError::Invalid(
                    "push requires exactly one argument".into(),
                ));
            }
            let store = open_store(&settings)?;
            let on = |p: PushProgress<'_>| match p {
                PushProgress::BlobStart { digest, .. } => emit(format!("Copying blob {digest}\n")),
                PushProgress::BlobDone { digest, outcome } => match outcome {
                    BlobOutcome::Exists => {
                        emit(format!("Copying blob {digest} skipped: already exists\n"))
                    }
                    BlobOutcome::Mounted => emit(format!("Copying blob {digest} mounted\n")),
                    BlobOutcome::Uploaded => {}
                },
                PushProgress::ManifestDone { .. } => {
                    emit("Writing manifest to image destination\n".into())
                }
            };
            let reference = crate::storage::index::with_default_tag(&req.image_name);
            let opts = PushOptions {
                format,
                chunk_size: None,
            };
            crate::registry::push::push(&store, &settings, &reference, &reference, opts, &on)
                .map_err(|e| {
                    CompatError::Invalid(format!(
                        "push image {:?} of format \"docker\" failed: {e}",
                        req.image_name
                    ))
                })?;
            Ok(())
        },
    )
}

/// Upstream's messages.
const LOGIN_SUCCESS: &str = "Login Succeeded";
const LOGIN_WITH_AUTH_FILE: &str = "Login Succeed with AuthFile";
const TRY_AUTH_DIRECTLY: &str =
    "Failed to authenticate existing credentials, try to use auth directly";

/// Upstream's flow: with only a server, try the saved credentials (the client retries
/// with a user name and password when the error says they failed); otherwise decrypt the
/// password, check it against the registry and save it.
pub async fn login(b: &Backend, req: LoginRequest) -> Result<LoginResponse, Status> {
    let settings = b.settings.clone();
    let key = b.key.clone();
    blocking(move || {
        let content = |s: &str| LoginResponse {
            content: s.to_string(),
        };
        let with_auth_file = req.password.is_empty() && req.username.is_empty();
        if req.server.is_empty() {
            return Err(CompatError::Invalid("empty server address".into()));
        }
        let server = credentials::normalize_server(&req.server)?;
        if with_auth_file {
            let saved = credentials::lookup(&settings.config_dir, &server)?
                .filter(|c| !c.password.is_empty() && !c.username.is_empty());
            let Some(saved) = saved else {
                return Err(CompatError::Invalid(format!(
                    "failed to read auth file: {TRY_AUTH_DIRECTLY}"
                )));
            };
            return match credentials::verify(&settings, &server, &saved) {
                Ok(()) => Ok(content(LOGIN_WITH_AUTH_FILE)),
                Err(e) => Err(CompatError::Invalid(format!("{TRY_AUTH_DIRECTLY}: {e}"))),
            };
        }
        if req.password.is_empty() {
            return Err(CompatError::Invalid("empty auth info".into()));
        }
        let password = key.decrypt(&req.password)?;
        let creds = Credentials {
            username: req.username.clone(),
            password,
        };
        credentials::verify(&settings, &server, &creds)?;
        credentials::store(&settings.config_dir, &server, &creds)?;
        tracing::info!(
            "Success login server: {server} with username: {}",
            req.username
        );
        Ok(content(LOGIN_SUCCESS))
    })
    .await
}

pub async fn logout(b: &Backend, req: LogoutRequest) -> Result<LogoutResponse, Status> {
    let settings = b.settings.clone();
    blocking(move || {
        let result = |s: String| LogoutResponse { result: s };
        if req.all {
            credentials::remove_all(&settings.config_dir)?;
            return Ok(result("Removed authentications".into()));
        }
        if req.server.is_empty() {
            return Err(CompatError::Invalid("empty server address".into()));
        }
        let server = credentials::normalize_server(&req.server)?;
        if credentials::remove(&settings.config_dir, &server)? {
            Ok(result(format!("Removed authentication for {server}")))
        } else {
            // Upstream returns containers/image's ErrNotLoggedIn.
            Err(CompatError::Invalid("not logged in".into()))
        }
    })
    .await
}
