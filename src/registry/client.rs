//! A client for one registry: scheme selection (HTTPS, plain HTTP only for insecure
//! registries), authentication with retry on 401, redirects followed by hand (credentials
//! only to the registry's own host), and the API v2 calls pull and push need.

use crate::config::Settings;
use crate::digest::Digest;
use crate::registry::auth::{self, Challenge, TokenCache};
use crate::registry::credentials::{self, Credentials};
use crate::registry::media;
use crate::registry::name::{listed, ManifestRef};
use crate::registry::{describe, tls, RegistryError, MAX_MANIFEST_SIZE};
use reqwest::blocking::{Body, Client, Response};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, StatusCode, Url};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 8;

/// A connected registry.
pub struct RegistryClient {
    registry: String,
    base: Url,
    /// Requests without a body (read timeout applies).
    http: Client,
    /// Requests with a body (uploads: no limit on the whole request).
    upload: Client,
    read_timeout: Option<std::time::Duration>,
    /// The client certificate from certs.d, if any (for error hints).
    client_cert: Option<std::path::PathBuf>,
    creds: Option<Credentials>,
    challenge: Mutex<Challenge>,
    tokens: Mutex<TokenCache>,
}

/// A request body: `len` bytes read from `reader`.
pub struct Upload {
    reader: Box<dyn Read + Send>,
    len: u64,
}

impl Upload {
    pub fn new(reader: impl Read + Send + 'static, len: u64) -> Upload {
        Upload {
            reader: Box::new(reader),
            len,
        }
    }

    pub fn bytes(b: Vec<u8>) -> Upload {
        let len = b.len() as u64;
        Upload::new(std::io::Cursor::new(b), len)
    }
}

/// A request body that can be made again (for the retry after a 401).
pub type BodyFn<'a> = &'a (dyn Fn() -> Result<Upload, RegistryError> + Sync);

/// A body that remembers when the HTTP client last took bytes from it. The kernel ends a
/// connection whose sent data stays unread for the read timeout (`TCP_USER_TIMEOUT`, see
/// [`tls::build_client`]), but reqwest then only reports that it could not send the
/// body; an upload that failed after going undrained that long failed for that reason.
struct Drained {
    inner: Box<dyn Read + Send>,
    reads: Arc<Mutex<ReadTimes>>,
}

/// When a body was last read, and how long it had waited for that read.
#[derive(Clone, Copy)]
struct ReadTimes {
    last: Instant,
    wait_before_last: Duration,
}

impl ReadTimes {
    /// How long the body went unread: reqwest reads one more chunk when the connection
    /// fails, so the wait before the last read counts too.
    fn stalled_for(&self) -> Duration {
        self.last.elapsed().max(self.wait_before_last)
    }
}

impl Read for Drained {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        {
            let mut t = self.reads.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            t.wait_before_last = now.duration_since(t.last);
            t.last = now;
        }
        self.inner.read(buf)
    }
}

/// What happened to a blob a push needed at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    Exists,
    Mounted,
    Uploaded,
}

/// Scope string for a repository.
pub fn scope(repo: &str, push: bool) -> String {
    format!(
        "repository:{repo}:{}",
        if push { "pull,push" } else { "pull" }
    )
}

fn is_tls_problem(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "ssl",
        "corrupt message",
        "handshake",
        "unknownissuer",
    ]
    .iter()
    .any(|k| r.contains(k))
}

/// One line of what a registry said in its error body (`{"errors":[{code,message}]}`).
fn error_detail(resp: Response) -> String {
    let mut body = Vec::new();
    let _ = resp.take(64 * 1024).read_to_end(&mut body);
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        errors: Vec<E>,
    }
    let Ok(es) = serde_json::from_slice::<Es>(&body) else {
        return String::new();
    };
    let s: Vec<String> = es
        .errors
        .iter()
        .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
        .collect();
    let mut s = s.join("; ");
    s.retain(|c| !c.is_control());
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    if s.is_empty() {
        s
    } else {
        format!(": {s}")
    }
}

fn read_limited(mut resp: Response, limit: u64, what: &str) -> Result<Vec<u8>, RegistryError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut body = Vec::new();
    (&mut resp)
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| RegistryError::Network(format!("{what}: {e}")))?;
    if body.len() as u64 > limit {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    Ok(body)
}

fn host_port(u: &Url) -> Option<(String, u16)> {
    Some((
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?,
    ))
}

impl RegistryClient {
    /// Connect to `registry` (host[:port] as written in image names): pick the scheme,
    /// learn how it authenticates. Credentials come from `creds`, or else from
    /// `auth.json` in the config directory.
    pub fn connect(
        settings: &Settings,
        registry: &str,
        api_host: &str,
        creds: Option<Credentials>,
    ) -> Result<RegistryClient, RegistryError> {
        if listed(&settings.registries.blocked, registry) {
            return Err(RegistryError::Blocked(registry.to_string()));
        }
        let insecure = listed(&settings.registries.insecure, registry);
        let certs_root = settings.config_dir.join(tls::CERTS_DIR);
        let read_timeout = tls::read_timeout()?;
        let clients = tls::build_clients(&certs_root, registry, insecure, read_timeout)?;
        let creds = match creds {
            Some(c) => Some(c),
            None => credentials::lookup(&settings.config_dir, registry)?,
        };
        let parse = |scheme: &str| {
            Url::parse(&format!("{scheme}://{api_host}/"))
                .map_err(|e| RegistryError::invalid(format!("registry {registry:?}"), e))
        };
        let mut client = RegistryClient {
            registry: registry.to_string(),
            base: parse("https")?,
            http: clients.fetch,
            upload: clients.upload,
            read_timeout,
            client_cert: clients.client_cert,
            creds,
            challenge: Mutex::new(Challenge::Anonymous),
            tokens: Mutex::new(TokenCache::default()),
        };
        match client.ping() {
            Ok(()) => Ok(client),
            Err(RegistryError::Unreachable { .. } | RegistryError::Tls { .. }) if insecure => {
                tracing::debug!("registry {registry}: HTTPS failed, trying plain HTTP (insecure)");
                client.base = parse("http")?;
                client.ping()?;
                Ok(client)
            }
            Err(e) => Err(e),
        }
    }

    /// The registry as named in image references.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// True when the client carries credentials.
    pub fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    /// The inactivity limit of this client's reads, if any.
    pub fn read_timeout(&self) -> Option<std::time::Duration> {
        self.read_timeout
    }

    /// The error for a registry that stayed silent longer than the read timeout.
    pub fn timeout_error(&self, what: &str) -> RegistryError {
        RegistryError::Timeout {
            host: self.registry.clone(),
            what: what.to_string(),
            secs: self.read_timeout.map(|d| d.as_secs_f64()).unwrap_or(0.0),
        }
    }

    fn network_error(&self, e: &reqwest::Error, what: &str) -> RegistryError {
        if e.is_timeout() {
            return self.timeout_error(what);
        }
        let reason = describe(e);
        if is_tls_problem(&reason) {
            RegistryError::Tls {
                host: self.registry.clone(),
                hint: tls::hint(&self.registry, &reason, self.client_cert.as_deref()),
                reason,
            }
        } else {
            RegistryError::Unreachable {
                host: self.registry.clone(),
                reason,
            }
        }
    }

    /// `GET /v2/`: reachability and the auth challenge. Under TLS 1.3 a registry that
    /// refuses a (missing) client certificate may close the connection before its alert
    /// is read: a closed connection is retried once, and then named as a possible cause.
    fn ping(&self) -> Result<(), RegistryError> {
        // How a connection the server dropped mid-handshake shows (hyper's wording varies
        // with when the close is noticed: before, while or after the request is sent).
        let dropped = |reason: &str| {
            [
                "connection closed",
                "stream closed",
                "broken pipe",
                "connection reset",
            ]
            .iter()
            .any(|k| reason.contains(k))
        };
        let closed = |e: &RegistryError| {
            matches!(e, RegistryError::Unreachable { reason, .. } if dropped(reason))
                && self.base.scheme() == "https"
        };
        match self.ping_once() {
            Err(e) if closed(&e) => match self.ping_once() {
                Err(RegistryError::Unreachable { host, reason })
                    if dropped(&reason) && self.client_cert.is_none() =>
                {
                    Err(RegistryError::Unreachable {
                        reason: format!(
                            "{reason} (if it requires a client certificate, put NAME.cert and NAME.key in certs.d/{host}/)"
                        ),
                        host,
                    })
                }
                r => r,
            },
            r => r,
        }
    }

    fn ping_once(&self) -> Result<(), RegistryError> {
        let url = self.url("/v2/")?;
        let resp = self
            .http
            .get(url)
            .send()
            .map_err(|e| self.network_error(&e, "GET /v2/"))?;
        match resp.status() {
            s if s.is_success() => {
                *self.lock_challenge() = Challenge::Anonymous;
                Ok(())
            }
            StatusCode::UNAUTHORIZED => {
                let ch = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(auth::parse_challenge)
                    .ok_or_else(|| RegistryError::Unauthorized {
                        host: self.registry.clone(),
                        reason: "unsupported authentication scheme".into(),
                    })?;
                *self.lock_challenge() = ch;
                Ok(())
            }
            s => Err(RegistryError::Status {
                host: self.registry.clone(),
                method: "GET".into(),
                path: "/v2/".into(),
                status: s.as_u16(),
                detail: " (not a Docker Registry API v2 endpoint?)".into(),
            }),
        }
    }

    fn lock_challenge(&self) -> std::sync::MutexGuard<'_, Challenge> {
        self.challenge.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base
            .join(path)
            .map_err(|e| RegistryError::invalid(format!("registry path {path:?}"), e))
    }

    /// Check the credentials: for Basic, a `GET /v2/` with them; for Bearer, a token
    /// request with them (no scope, as `docker login` does).
    pub fn check_login(&self) -> Result<(), RegistryError> {
        let ch = self.lock_challenge().clone();
        let unauthorized = |reason: &str| RegistryError::Unauthorized {
            host: self.registry.clone(),
            reason: reason.to_string(),
        };
        match ch {
            Challenge::Anonymous => Ok(()),
            Challenge::Basic => {
                let Some(c) = &self.creds else {
                    return Err(unauthorized("credentials required"));
                };
                let resp = self
                    .http
                    .get(self.url("/v2/")?)
                    .header(AUTHORIZATION, c.basic_header())
                    .send()
                    .map_err(|e| self.network_error(&e, "GET /v2/"))?;
                if resp.status().is_success() {
                    Ok(())
                } else if resp.status() == StatusCode::UNAUTHORIZED {
                    Err(unauthorized("wrong user name or password"))
                } else {
                    Err(RegistryError::Status {
                        host: self.registry.clone(),
                        method: "GET".into(),
                        path: "/v2/".into(),
                        status: resp.status().as_u16(),
                        detail: String::new(),
                    })
                }
            }
            Challenge::Bearer { realm, service, .. } => {
                if self.creds.is_none() {
                    return Err(unauthorized("credentials required"));
                }
                auth::fetch_token(
                    &self.http,
                    &self.registry,
                    &realm,
                    service.as_deref(),
                    &[],
                    self.creds.as_ref(),
                )
                .map(|_| ())
                .map_err(|e| match e {
                    RegistryError::Unauthorized { .. } => {
                        unauthorized("wrong user name or password")
                    }
                    other => other,
                })
            }
        }
    }

    /// The Authorization header for a request needing `scopes`, fetching a token if need be.
    fn auth_header(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        let ch = self.lock_challenge().clone();
        match ch {
            Challenge::Anonymous => Ok(None),
            Challenge::Basic => Ok(self.creds.as_ref().map(Credentials::basic_header)),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut all: Vec<String> = scopes.to_vec();
                if let Some(s) = scope {
                    if !all.contains(&s) {
                        all.push(s);
                    }
                }
                all.sort();
                let key = all.join(" ");
                if let Some(t) = self.lock_tokens().get(&key) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let (t, life) = auth::fetch_token(
                    &self.http,
                    &self.registry,
                    &realm,
                    service.as_deref(),
                    &all,
                    self.creds.as_ref(),
                )?;
                self.lock_tokens().put(key, t.clone(), life);
                Ok(Some(format!("Bearer {t}")))
            }
        }
    }

    fn forget_tokens(&self, scopes: &[String]) {
        let mut all = scopes.to_vec();
        if let Challenge::Bearer { scope: Some(s), .. } = &*self.lock_challenge() {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        all.sort();
        self.lock_tokens().forget(&all.join(" "));
    }

    /// Send a request to `target` (a path on the registry, or an absolute URL it gave us),
    /// authenticating for `scopes`. Retries once after a 401 with a fresh challenge/token;
    /// follows redirects of GET and HEAD, without credentials when the host changes.
    pub fn send(
        &self,
        method: Method,
        target: &str,
        scopes: &[String],
        headers: HeaderMap,
        body: Option<BodyFn<'_>>,
    ) -> Result<Response, RegistryError> {
        let mut url = self.url(target)?;
        let home = host_port(&self.base);
        let mut retried_auth = false;
        let mut redirects = 0;
        loop {
            let same_host = host_port(&url) == home && url.scheme() == self.base.scheme();
            let http = if body.is_some() {
                &self.upload
            } else {
                &self.http
            };
            let mut rb = http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if same_host {
                if let Some(h) = self.auth_header(scopes)? {
                    rb = rb.header(AUTHORIZATION, h);
                }
            }
            let mut drained = None;
            if let Some(b) = body {
                let up = b()?;
                let reads = Arc::new(Mutex::new(ReadTimes {
                    last: Instant::now(),
                    wait_before_last: Duration::ZERO,
                }));
                drained = Some(reads.clone());
                let inner = up.reader;
                rb = rb.body(Body::sized(Drained { inner, reads }, up.len));
            }
            let resp = rb.send().map_err(|e| {
                let what = format!("{method} {}", url.path());
                let stalled = drained
                    .as_ref()
                    .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()).stalled_for());
                match (stalled, self.read_timeout) {
                    (Some(stalled), Some(limit)) if stalled >= limit && !e.is_timeout() => {
                        self.timeout_error(&format!("{what}, which the registry stopped reading"))
                    }
                    _ => self.network_error(&e, &what),
                }
            })?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && same_host {
                if retried_auth {
                    return Err(RegistryError::Unauthorized {
                        host: self.registry.clone(),
                        reason: if self.creds.is_some() {
                            "the credentials were refused (run login again?)".into()
                        } else {
                            "authentication required (run login first)".into()
                        },
                    });
                }
                retried_auth = true;
                let ch = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(auth::parse_challenge);
                self.forget_tokens(scopes);
                if let Some(ch) = ch {
                    *self.lock_challenge() = ch;
                }
                continue;
            }
            if status == StatusCode::FORBIDDEN && same_host {
                return Err(RegistryError::Denied {
                    host: self.registry.clone(),
                    what: url.path().to_string(),
                });
            }
            if status.is_redirection() && (method == Method::GET || method == Method::HEAD) {
                let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                    return Ok(resp);
                };
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(RegistryError::Other(format!(
                        "registry {}: too many redirects for {}",
                        self.registry,
                        url.path()
                    )));
                }
                let next = url.join(loc).map_err(|e| {
                    RegistryError::invalid(format!("registry {} redirect", self.registry), e)
                })?;
                if next.scheme() != "https" && next.scheme() != "http" {
                    return Err(RegistryError::invalid(
                        format!("registry {} redirect", self.registry),
                        "not an http(s) URL",
                    ));
                }
                if host_port(&next) != home {
                    tracing::debug!(
                        "registry {}: redirected to another host, sending no credentials",
                        self.registry
                    );
                }
                url = next;
                continue;
            }
            return Ok(resp);
        }
    }

    fn status_error(&self, method: &str, path: &str, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        RegistryError::Status {
            host: self.registry.clone(),
            method: method.to_string(),
            path: path.to_string(),
            status,
            detail: error_detail(resp),
        }
    }

    /// Fetch a manifest (image manifest, list or index), at most 4 MiB, verifying it
    /// against the digest when fetched by digest. Returns bytes, media type, digest.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &ManifestRef,
        display: &str,
    ) -> Result<(Vec<u8>, String, media::Fetched, Digest), RegistryError> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            media::MANIFEST_ACCEPT.parse().expect("static header"),
        );
        let resp = self.send(Method::GET, &path, &[scope(repo, false)], h, None)?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::NotFound {
                    what: format!("manifest {display}"),
                })
            }
            _ => return Err(self.status_error("GET", &path, resp)),
        }
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let what = format!("manifest {display}");
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE, &what)?;
        let digest = Digest::of(&bytes);
        if let ManifestRef::Digest(want) = reference {
            if *want != digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        let (mt, fetched) =
            media::parse_manifest(&ct, &bytes).map_err(|r| RegistryError::invalid(&what, r))?;
        Ok((bytes, mt, fetched, digest))
    }

    /// Does the repository have this manifest? (`HEAD` by digest.)
    pub fn has_manifest(&self, repo: &str, d: &Digest, push: bool) -> Result<bool, RegistryError> {
        let path = format!("/v2/{repo}/manifests/{d}");
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            media::MANIFEST_ACCEPT.parse().expect("static header"),
        );
        let resp = self.send(Method::HEAD, &path, &[scope(repo, push)], h, None)?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error("HEAD", &path, resp)),
        }
    }

    /// Start reading a blob. The caller verifies size and digest while reading.
    pub fn get_blob(&self, repo: &str, d: &Digest) -> Result<Response, RegistryError> {
        let path = format!("/v2/{repo}/blobs/{d}");
        let resp = self.send(
            Method::GET,
            &path,
            &[scope(repo, false)],
            HeaderMap::new(),
            None,
        )?;
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                what: format!("blob {d} in {}/{repo}", self.registry),
            }),
            _ => Err(self.status_error("GET", &path, resp)),
        }
    }

    /// Start reading a blob from byte `offset` on (`Range: bytes=offset-`). The registry
    /// may answer 206 with the rest or 200 with the whole blob: the caller looks at the
    /// status (and `Content-Range`).
    pub fn get_blob_from(
        &self,
        repo: &str,
        d: &Digest,
        offset: u64,
    ) -> Result<Response, RegistryError> {
        if offset == 0 {
            return self.get_blob(repo, d);
        }
        let path = format!("/v2/{repo}/blobs/{d}");
        let mut h = HeaderMap::new();
        h.insert(
            RANGE,
            format!("bytes={offset}-")
                .parse()
                .expect("digits are a valid header"),
        );
        let resp = self.send(Method::GET, &path, &[scope(repo, false)], h, None)?;
        match resp.status() {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => Ok(resp),
            // The range is not satisfiable: start again from the first byte.
            StatusCode::RANGE_NOT_SATISFIABLE => self.get_blob(repo, d),
            StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                what: format!("blob {d} in {}/{repo}", self.registry),
            }),
            _ => Err(self.status_error("GET", &path, resp)),
        }
    }

    /// Does the repository have this blob? (`HEAD`.)
    pub fn has_blob(&self, repo: &str, d: &Digest) -> Result<bool, RegistryError> {
        let path = format!("/v2/{repo}/blobs/{d}");
        let resp = self.send(
            Method::HEAD,
            &path,
            &[scope(repo, true)],
            HeaderMap::new(),
            None,
        )?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error("HEAD", &path, resp)),
        }
    }

    /// Make `d` (of `size` bytes) exist in `repo`: skip it when the registry has it, mount
    /// it from `mount_from` (another repository of this registry) when offered, otherwise
    /// upload `body`: in one PUT, or in PATCH chunks of `chunk` bytes when given.
    pub fn ensure_blob(
        &self,
        repo: &str,
        d: &Digest,
        size: u64,
        mount_from: &[String],
        body: &(dyn Fn(u64, u64) -> Result<Upload, RegistryError> + Sync),
        chunk: Option<u64>,
    ) -> Result<BlobOutcome, RegistryError> {
        if self.has_blob(repo, d)? {
            return Ok(BlobOutcome::Exists);
        }
        let mut location = None;
        for from in mount_from.iter().filter(|f| f.as_str() != repo) {
            let path = format!("/v2/{repo}/blobs/uploads/?mount={d}&from={from}");
            let scopes = [scope(repo, true), scope(from, false)];
            let resp = self.send(Method::POST, &path, &scopes, HeaderMap::new(), None)?;
            match resp.status() {
                StatusCode::CREATED => return Ok(BlobOutcome::Mounted),
                StatusCode::ACCEPTED => {
                    location = Some(self.location(&resp, &path)?);
                    break;
                }
                _ => {
                    tracing::debug!("mount of {d} from {from} refused: {}", resp.status());
                }
            }
        }
        let start = match location {
            Some(l) => l,
            None => {
                let path = format!("/v2/{repo}/blobs/uploads/");
                let resp = self.send(
                    Method::POST,
                    &path,
                    &[scope(repo, true)],
                    HeaderMap::new(),
                    None,
                )?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(self.status_error("POST", &path, resp));
                }
                self.location(&resp, &path)?
            }
        };
        let scopes = [scope(repo, true)];
        let mut loc = start;
        if let Some(chunk) = chunk.filter(|c| *c > 0 && *c < size) {
            let mut off = 0u64;
            while off < size {
                let n = chunk.min(size - off);
                let mut h = HeaderMap::new();
                h.insert(
                    CONTENT_TYPE,
                    "application/octet-stream".parse().expect("static header"),
                );
                h.insert(
                    "Content-Range",
                    format!("{}-{}", off, off + n - 1)
                        .parse()
                        .expect("digits are a valid header"),
                );
                let (o, len) = (off, n);
                let mk = move || body(o, len);
                let resp = self.send(Method::PATCH, &loc, &scopes, h, Some(&mk))?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(self.status_error("PATCH", "blob upload", resp));
                }
                loc = self.location(&resp, "blob upload")?;
                off += n;
            }
            let target = with_digest(&loc, d)?;
            let h = HeaderMap::new();
            let empty = || Ok(Upload::bytes(Vec::new()));
            let resp = self.send(Method::PUT, &target, &scopes, h, Some(&empty))?;
            return self.finish_upload(resp, d);
        }
        let target = with_digest(&loc, d)?;
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            "application/octet-stream".parse().expect("static header"),
        );
        let mk = || body(0, size);
        let resp = self.send(Method::PUT, &target, &scopes, h, Some(&mk))?;
        self.finish_upload(resp, d)
    }

    fn finish_upload(&self, resp: Response, d: &Digest) -> Result<BlobOutcome, RegistryError> {
        match resp.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => {
                Ok(BlobOutcome::Uploaded)
            }
            StatusCode::BAD_REQUEST => {
                let detail = error_detail(resp);
                Err(RegistryError::Other(format!(
                    "registry {}: upload of {d} refused{detail}",
                    self.registry
                )))
            }
            _ => Err(self.status_error("PUT", "blob upload", resp)),
        }
    }

    fn location(&self, resp: &Response, what: &str) -> Result<String, RegistryError> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                RegistryError::invalid(
                    format!("registry {}: {what}", self.registry),
                    "no Location in the reply",
                )
            })?;
        let url = self.base.join(loc).map_err(|e| {
            RegistryError::invalid(format!("registry {}: upload location", self.registry), e)
        })?;
        if host_port(&url) != host_port(&self.base) {
            return Err(RegistryError::invalid(
                format!("registry {}: upload location", self.registry),
                "points to another host",
            ));
        }
        Ok(url.to_string())
    }

    /// Upload a manifest under `reference` (a tag or its digest); returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            media_type
                .parse()
                .map_err(|_| RegistryError::invalid("manifest media type", media_type))?,
        );
        let owned = bytes.to_vec();
        let mk = || Ok(Upload::bytes(owned.clone()));
        let resp = self.send(Method::PUT, &path, &[scope(repo, true)], h, Some(&mk))?;
        if !resp.status().is_success() {
            return Err(self.status_error("PUT", &path, resp));
        }
        Ok(Digest::of(bytes))
    }
}

fn with_digest(loc: &str, d: &Digest) -> Result<String, RegistryError> {
    let mut u = Url::parse(loc).map_err(|e| RegistryError::invalid("upload location", e))?;
    u.query_pairs_mut().append_pair("digest", &d.to_string());
    Ok(u.to_string())
}
