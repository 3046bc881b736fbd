//! Starting and stopping the server: settings, the one-server lock, the key pair, the
//! socket, readiness notification, the gRPC service, and a clean shutdown on SIGTERM or
//! SIGINT (stop accepting, kill running builds, let other requests finish for a short
//! while, remove the socket and the public key).

use crate::compat::backend::Backend;
use crate::compat::build::Builds;
use crate::compat::crypto::{ServerKey, PUBLIC_KEY_FILE};
use crate::compat::error::CompatError;
use crate::compat::flags::ServerConfig;
use crate::compat::proto::control_server::ControlServer;
use crate::compat::{notify, socket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long requests still running at shutdown may take to finish (builds are killed at
/// once; this is for pulls, pushes, loads…).
const GRACE: Duration = Duration::from_secs(10);

/// Removes a file when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::new(format!("isula_build={level}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Give the config directory to root:`gid`, as upstream does, so the group can read the
/// public key. Created (0750) when missing.
fn prepare_config_dir(dir: &Path, gid: u32) -> Result<(), CompatError> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|e| CompatError::io("create config directory", dir, e))?;
    }
    std::os::unix::fs::chown(dir, Some(0), Some(gid))
        .map_err(|e| CompatError::io("chown config directory", dir, e))
}

/// Run the server until SIGTERM or SIGINT.
pub fn run(cfg: ServerConfig) -> Result<(), CompatError> {
    init_logging(&cfg.settings.log_level);
    let s = &cfg.settings;
    // Everything up to the runtime happens while single-threaded (the socket's umask).
    let gid = socket::group_gid(&cfg.group).map_err(|e| CompatError::Socket(e.to_string()))?;
    socket::create_private_dir(&s.dataroot)?;
    let lock = socket::lock_runroot(&s.runroot)?;
    // Opening the store checks the data root and creates its layout.
    crate::storage::Store::open(&s.dataroot, &s.runroot)?;
    prepare_config_dir(&s.config_dir, gid)?;
    let key = ServerKey::generate()?;
    let key_path = s.config_dir.join(PUBLIC_KEY_FILE);
    key.write_public(&key_path, Some(gid))?;
    let _key_file = RemoveOnDrop(key_path);
    let (listener, socket_path) = socket::listen(&cfg.socket, gid)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| CompatError::Socket(e.to_string()))?;
    tracing::debug!("server starts with {cfg:?}");

    let backend = Backend {
        settings: Arc::new(cfg.settings.clone()),
        key: Arc::new(key),
        builds: Arc::new(Builds::default()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("isula-builder")
        .build()
        .map_err(|e| CompatError::Internal(format!("start runtime: {e}")))?;
    let res = runtime.block_on(serve(backend, listener, &socket_path.path));
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(socket_path);
    tracing::info!("isula-builder stopped");
    drop(lock);
    res
}

async fn serve(
    backend: Backend,
    listener: std::os::unix::net::UnixListener,
    path: &Path,
) -> Result<(), CompatError> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = tokio::net::UnixListener::from_std(listener)
        .map_err(|e| CompatError::Socket(e.to_string()))?;
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CompatError::Internal(format!("install SIGTERM handler: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| CompatError::Internal(format!("install SIGINT handler: {e}")))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let builds = backend.builds.clone();
    let killed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let killed_w = killed.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "terminated",
            _ = int.recv() => "interrupt",
        };
        tracing::info!("Signal {name} received and exit");
        let pids = builds.cancel_all();
        if let Ok(mut k) = killed_w.lock() {
            k.extend(pids);
        }
        let _ = stop_tx.send(true);
    });
    let mut stop_serving = stop_rx.clone();
    let server = tonic::transport::Server::builder()
        .add_service(ControlServer::new(backend))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop_serving.wait_for(|s| *s).await;
        });
    tokio::pin!(server);
    match notify::ready() {
        Ok(true) => tracing::debug!("notified the service manager: READY=1"),
        Ok(false) => {}
        Err(e) => tracing::warn!("sd_notify READY=1 failed: {e}"),
    }
    tracing::info!("isula-builder is listening on {}", path.display());
    let mut stopped = stop_rx.clone();
    let res = tokio::select! {
        r = &mut server => r.map_err(|e| CompatError::Internal(format!("serve: {e}"))),
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(GRACE).await;
        } => {
            tracing::warn!("requests still running after {GRACE:?}: stopping anyway");
            Ok(())
        }
    };
    let _ = notify::stopping();
    let pids = killed.lock().map(|k| k.clone()).unwrap_or_default();
    wait_gone(&pids, Duration::from_secs(10)).await;
    res
}

/// Wait until the processes `pids` (killed build workers) have exited, so their mount
/// namespaces, and the mounts in them, are gone before the server exits.
async fn wait_gone(pids: &[nix::unistd::Pid], limit: Duration) {
    let deadline = Instant::now() + limit;
    for pid in pids {
        while alive(*pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Alive: exists and is not a zombie (a zombie holds no namespaces any more).
fn alive(pid: nix::unistd::Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
