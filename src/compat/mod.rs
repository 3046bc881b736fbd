//! The `isula-builder` compatibility server: the same binary, started under the name
//! `isula-builder` (a symlink or argv[0]), serves upstream isula-build's gRPC service
//! `isula.build.v1.Control` on a unix socket, so upstream `isula-build` clients and
//! `isula-build.service` setups keep working. Every RPC runs through the library calls the
//! `isula-build` command line makes.
//!
//! | file | concern |
//! | --- | --- |
//! | `flags.rs` | the daemon's flags and their resolution with the config files |
//! | `server.rs` | start-up, the runtime, signals and shutdown |
//! | `socket.rs` | the one-server lock, the socket (0660, root:group), the group |
//! | `notify.rs` | `sd_notify` readiness |
//! | `crypto.rs` | the RSA key pair clients encrypt passwords and build args with |
//! | `backend.rs` | the `Control` service: shared state, RPC → handler |
//! | `build.rs` | Build and Status |
//! | `worker.rs` | the per-build child process |
//! | `images.rs` | List, Tag, Remove, Import, Load, Save |
//! | `registry.rs` | Pull, Push, Login, Logout |
//! | `system.rs` | Version, Info, HealthCheck |
//! | `manifest.rs` | ManifestCreate, ManifestAnnotate, ManifestInspect, ManifestPush |
//! | `proto.rs` | code generated from `proto/control.proto` |

pub mod backend;
pub mod build;
pub mod crypto;
pub mod error;
pub mod flags;
pub mod images;
pub mod manifest;
pub mod notify;
pub mod proto;
pub mod registry;
pub mod server;
pub mod socket;
pub mod system;
pub mod worker;

pub use error::CompatError;
pub use worker::{is_worker_invocation, worker_main};

use clap::Parser;
use std::process::ExitCode;

/// The program name that selects the server.
pub const SERVER_NAME: &str = "isula-builder";

/// Whether `argv0` (a path or a name) names the server.
pub fn is_server_name(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == SERVER_NAME)
}

/// The server's `main`: parse the daemon flags and serve until SIGTERM/SIGINT. Errors are
/// one line on stderr, exit status 1.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let args = match flags::ServerArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if args.version {
        println!(
            "{SERVER_NAME} version {}, build {}",
            crate::system::VERSION.version,
            crate::system::VERSION.git_commit
        );
        return ExitCode::SUCCESS;
    }
    let res = args
        .resolve()
        .map_err(CompatError::from)
        .and_then(server::run);
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error::one_line(&e.to_string()));
            ExitCode::from(1)
        }
    }
}
