//! The build driver's connections to the host: RUN through the sandbox, and image lookup
//! that pulls what the store lacks. Both the CLI and the compatibility server build with these.

use crate::build::driver::{ImageResolver, RunExecutor, RunRequest};
use crate::config::Settings;
use crate::storage::{FindError, Store};

/// RUN executor backed by the built-in sandbox (or the configured OCI runtime).
pub struct SandboxExecutor;

impl RunExecutor for SandboxExecutor {
    fn run(&self, req: &RunRequest) -> Result<i32, String> {
        let spec = crate::sandbox::RunSpec {
            lower_dirs: req.lower_dirs.clone(),
            upper_dir: req.upper_dir.clone(),
            work_dir: req.work_dir.clone(),
            args: req.args.clone(),
            env: req.env.clone(),
            cwd: req.cwd.clone(),
            user: req.user.clone(),
            hostname: req.hostname.clone(),
            cap_add: req.cap_add.clone(),
            runtime: req.runtime.clone(),
            bundle_dir: req.bundle_dir.clone(),
        };
        crate::sandbox::run(&spec).map_err(|e| e.to_string())
    }
}

/// Resolves `FROM`/`COPY --from` images from the store, pulling those it lacks.
/// `log` receives the `Pulling NAME` line before a pull starts.
pub struct PullingResolver<'a> {
    pub settings: &'a Settings,
    pub log: &'a dyn Fn(&str),
}

impl ImageResolver for PullingResolver<'_> {
    fn resolve(&self, store: &Store, reference: &str) -> Result<String, String> {
        let ix = store.index().map_err(|e| e.to_string())?;
        match ix.find(reference) {
            Ok(img) => return Ok(img.id.clone()),
            Err(e @ FindError::Ambiguous { .. }) => return Err(e.to_string()),
            Err(_) => {}
        }
        (self.log)(&format!("Pulling {reference}"));
        crate::registry::pull::pull(store, self.settings, reference, &|_| {})
            .map(|p| p.id)
            .map_err(|e| {
                format!("image {reference:?} is not in the local store and pulling it failed: {e}")
            })
    }
}
