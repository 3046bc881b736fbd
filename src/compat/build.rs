//! Build and Status. A Build RPC validates the request (decrypting build args when the
//! client encrypted them), then runs the build in a worker child process
//! ([`crate::compat::worker`]) and returns the image ID. The worker's log goes, line by
//! line, to the Status stream of the same build ID, which upstream's client reads
//! concurrently and prints as is.

use crate::build::parser::MAX_DOCKERFILE_SIZE;
use crate::compat::backend::Backend;
use crate::compat::error::CompatError;
use crate::compat::proto::{BuildRequest, BuildResponse, StatusRequest, StatusResponse};
use crate::compat::worker::{WorkerJob, WorkerResult, WORKER_ARG};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Lines of a build's log held for its Status reader; beyond this, while nobody reads,
/// lines are dropped rather than stalling the build.
const STATUS_BUFFER: usize = 4096;
/// Upstream's limit on concurrent builds.
pub const MAX_BUILDS: usize = 100;

/// The log channel of one build ID, created by whichever of Build and Status comes first.
struct Slot {
    tx: mpsc::Sender<String>,
    rx: Option<mpsc::Receiver<String>>,
    started: bool,
}

impl Slot {
    fn new() -> Slot {
        let (tx, rx) = mpsc::channel(STATUS_BUFFER);
        Slot {
            tx,
            rx: Some(rx),
            started: false,
        }
    }
}

#[derive(Default)]
struct State {
    slots: HashMap<String, Slot>,
    /// entity ID → build ID: one build of the same Dockerfile and static time at a time.
    entities: HashMap<String, String>,
    /// build ID → worker process (group leader).
    workers: HashMap<String, Pid>,
}

/// The builds of one server.
#[derive(Default)]
pub struct Builds {
    state: Mutex<State>,
    closing: AtomicBool,
}

impl Builds {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuse new builds and kill every running worker's process group; returns the
    /// workers killed.
    pub fn cancel_all(&self) -> Vec<Pid> {
        self.closing.store(true, Ordering::SeqCst);
        let st = self.state();
        for (id, pid) in &st.workers {
            tracing::info!("cancelling build {id}");
            let _ = killpg(*pid, Signal::SIGKILL);
        }
        st.workers.values().copied().collect()
    }

    /// Number of builds whose worker is still registered (it is removed once reaped).
    pub fn running(&self) -> usize {
        self.state().workers.len()
    }

    /// The receiving end of build `id`'s log, for its (single) Status reader.
    fn take_status(&self, id: &str) -> Result<mpsc::Receiver<String>, CompatError> {
        let mut st = self.state();
        let slot = st.slots.entry(id.to_string()).or_insert_with(Slot::new);
        slot.rx.take().ok_or_else(|| {
            CompatError::Invalid(format!("status of build job {id} is already being read"))
        })
    }

    /// Drop the log channel of a build that never started (its Status reader left, or its
    /// Build was refused): a waiting Status stream ends.
    fn forget_unstarted(&self, id: &str) {
        let mut st = self.state();
        if st.slots.get(id).is_some_and(|s| !s.started) {
            st.slots.remove(id);
        }
    }

    /// Register a starting build; the guard undoes it.
    fn start(
        self: &Arc<Self>,
        id: &str,
        entity: &str,
    ) -> Result<(mpsc::Sender<String>, Registration), CompatError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(CompatError::Invalid(
                "isula-builder is shutting down".into(),
            ));
        }
        let mut st = self.state();
        if st.workers.len() >= MAX_BUILDS {
            return Err(CompatError::Invalid(format!(
                "too many builds running (at most {MAX_BUILDS})"
            )));
        }
        if !entity.is_empty() {
            if let Some(other) = st.entities.get(entity) {
                // Upstream's wording.
                return Err(CompatError::Invalid(format!(
                    "the dockerfile is already on building with static build mode by buildID: {other}"
                )));
            }
        }
        let slot = st.slots.entry(id.to_string()).or_insert_with(Slot::new);
        if slot.started {
            return Err(CompatError::Invalid(format!(
                "build job {id} is already running"
            )));
        }
        slot.started = true;
        let tx = slot.tx.clone();
        if !entity.is_empty() {
            st.entities.insert(entity.to_string(), id.to_string());
        }
        Ok((
            tx,
            Registration {
                builds: self.clone(),
                id: id.to_string(),
                entity: entity.to_string(),
                worker: None,
            },
        ))
    }
}

/// A registered build. Dropped when the Build RPC ends, or when its future is dropped
/// (client gone, server stopping): then a still-running worker's group is killed.
struct Registration {
    builds: Arc<Builds>,
    id: String,
    entity: String,
    worker: Option<Pid>,
}

impl Registration {
    fn set_worker(&mut self, pid: Pid) {
        self.worker = Some(pid);
        self.builds.state().workers.insert(self.id.clone(), pid);
    }
    /// The worker was reaped: nothing left to kill.
    fn worker_done(&mut self) {
        self.worker = None;
        self.builds.state().workers.remove(&self.id);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(pid) = self.worker.take() {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        let mut st = self.builds.state();
        st.workers.remove(&self.id);
        // Dropping the slot drops its sender: the Status stream ends after the last line.
        st.slots.remove(&self.id);
        if !self.entity.is_empty() {
            st.entities.remove(&self.entity);
        }
    }
}

/// Status: the log lines of build `buildID`, each newline-terminated (the client prints
/// them as they come). Waits for the build to start, as upstream does.
pub fn status(
    b: &Backend,
    req: StatusRequest,
) -> Result<ReceiverStream<Result<StatusResponse, Status>>, Status> {
    let mut rx = b.builds.take_status(&req.build_id)?;
    let (tx, out) = mpsc::channel(64);
    let builds = b.builds.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(content) => {
                        if tx.send(Ok(StatusResponse { content })).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                // The client went away (e.g. its Build failed before starting).
                _ = tx.closed() => break,
            }
        }
        builds.forget_unstarted(&req.build_id);
    });
    Ok(ReceiverStream::new(out))
}

/// Check a request and turn it into a worker job (upstream's rules and messages).
fn job_of(b: &Backend, req: &BuildRequest) -> Result<WorkerJob, CompatError> {
    if req.build_id.is_empty() {
        return Err(CompatError::Invalid("build ID should not be empty".into()));
    }
    if !req.build_type.is_empty() && req.build_type != "ctr-img" {
        return Err(CompatError::Invalid(format!(
            "build type {:?} is not supported",
            req.build_type
        )));
    }
    let context_dir = PathBuf::from(&req.context_dir);
    if !context_dir.is_absolute() {
        return Err(CompatError::Invalid(format!(
            "context directory path {:?} should be an absolute path",
            req.context_dir
        )));
    }
    if req.file_content.len() > MAX_DOCKERFILE_SIZE {
        return Err(CompatError::Invalid(
            "Dockerfile is larger than the 1 MiB limit".into(),
        ));
    }
    let oci = match req.format.as_str() {
        "" | "docker" => false,
        "oci" => true,
        _ => return Err(CompatError::Invalid("wrong image format provided".into())),
    };
    let cap_add = crate::sandbox::validate_caps(&req.cap_add_list)
        .map_err(|e| CompatError::Invalid(e.to_string()))?;
    let mut build_args = Vec::new();
    for a in &req.build_args {
        let plain = if req.encrypted {
            b.key.decrypt(a)?
        } else {
            a.clone()
        };
        // As upstream's server: KEY=VALUE; an argument without `=` has no value to give.
        if let Some((k, v)) = plain.split_once('=') {
            if !k.is_empty() {
                build_args.push((k.to_string(), v.to_string()));
            }
        }
    }
    let static_time = req
        .build_static
        .as_ref()
        .and_then(|s| s.build_time.as_ref())
        .map(|t| t.seconds);
    Ok(WorkerJob {
        settings: (*b.settings).clone(),
        context_dir,
        dockerfile: req.file_content.clone(),
        build_args,
        tags: Some(req.additional_tag.clone())
            .filter(|t| !t.is_empty())
            .into_iter()
            .collect(),
        static_time,
        proxy_env: if req.proxy {
            crate::build::job::proxy_env()
        } else {
            Vec::new()
        },
        cap_add,
        oci,
        output: Some(req.output.clone()).filter(|o| !o.is_empty()),
        iidfile: Some(PathBuf::from(&req.iidfile)).filter(|p| !p.as_os_str().is_empty()),
    })
}

/// The executable workers are started from: this very binary.
fn self_exe() -> &'static Path {
    Path::new("/proc/self/exe")
}

pub async fn build(b: &Backend, req: BuildRequest) -> Result<BuildResponse, Status> {
    tracing::info!(build_id = %req.build_id, "BuildRequest received");
    let job = match job_of(b, &req) {
        Ok(j) => j,
        Err(e) => {
            // A Status reader already waiting for this build gets an empty log.
            b.builds.forget_unstarted(&req.build_id);
            return Err(e.into());
        }
    };
    let (log, mut reg) = b.builds.start(&req.build_id, &req.entity_id)?;
    let job_text =
        serde_json::to_vec(&job).map_err(|e| CompatError::Internal(format!("encode job: {e}")))?;
    let mut child = tokio::process::Command::new(self_exe())
        .arg0("isula-build")
        .arg(WORKER_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CompatError::Internal(format!("start build worker: {e}")))?;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw)
        .ok_or_else(|| CompatError::Internal("build worker has no pid".into()))?;
    reg.set_worker(pid);
    let (Some(mut stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(CompatError::Internal("build worker pipes missing".into()).into());
    };
    let feed = async move {
        let r = stdin.write_all(&job_text).await;
        drop(stdin);
        r
    };
    let pump = async {
        let mut lines = BufReader::new(stderr).lines();
        let mut dropped = 0usize;
        while let Ok(Some(line)) = lines.next_line().await {
            match log.try_send(format!("{line}\n")) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
            }
        }
        if dropped > 0 {
            tracing::warn!(
                "build {}: {dropped} log lines dropped (no Status reader)",
                req.build_id
            );
        }
    };
    let result = async move {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf).await;
        buf
    };
    let (fed, (), result) = tokio::join!(feed, pump, result);
    let status = child.wait().await;
    reg.worker_done();
    let closing = b.builds.closing.load(Ordering::SeqCst);
    let outcome: WorkerResult = serde_json::from_slice(&result).unwrap_or_default();
    match (outcome.image_id, outcome.error) {
        (Some(image_id), _) => {
            tracing::info!(build_id = %req.build_id, "build success with image id: {image_id}");
            Ok(BuildResponse { image_id })
        }
        (None, Some(e)) => {
            tracing::error!(build_id = %req.build_id, "build failed: {e}");
            Err(CompatError::Build(e).into())
        }
        (None, None) if closing => {
            Err(CompatError::Build("build cancelled: isula-builder is shutting down".into()).into())
        }
        (None, None) => {
            let how = match (&fed, &status) {
                (Err(e), _) => format!("job not delivered: {e}"),
                (_, Ok(s)) => s.to_string(),
                (_, Err(e)) => e.to_string(),
            };
            Err(CompatError::Build(format!("build worker died: {how}")).into())
        }
    }
}
