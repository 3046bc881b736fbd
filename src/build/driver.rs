//! The build driver: executes a [`StagePlan`] against the store.
//!
//! Each stage gets a work area in the build's scratch dir: an overlay of its base layers plus a
//! fresh upper dir, mounted (in the build's private mount namespace) for COPY/ADD/WORKDIR, and
//! handed to the RUN executor for RUN (unmounted meanwhile: one upper dir, one mount at a time).
//! At the end of a stage the upper dir is committed as one layer (upstream's layout); an empty
//! change adds no layer. Stage results are layers in the store, leased until the build ends.

use crate::build::copy::{self, CopyError, Overrides, Source, SourceTree};
use crate::build::dockerignore::IgnoreMatcher;
use crate::build::error::ParseError;
use crate::build::instructions::{CommandForm, Instruction, Step};
use crate::build::metadata;
use crate::build::parser::{parse_dockerfile, MAX_DOCKERFILE_SIZE};
use crate::build::stages::{plan_stages, BuildArgs, StageBase, StageScope};
use crate::build::userdb;
use crate::digest::Digest;
use crate::image::config::{
    host_platform, Descriptor, History, ImageConfig, Manifest, RootFs, MEDIA_TYPE_DOCKER_CONFIG,
    MEDIA_TYPE_DOCKER_MANIFEST,
};
use crate::image::reference::Reference;
use crate::lock;
use crate::storage::layer::{self, LayerMeta};
use crate::storage::overlay::{self, OverlayMount};
use crate::storage::pack::{PackOptions, Timestamps};
use crate::storage::{fsutil, ImageRecord, Lease, Store, StoreError, WorkDir};
use std::io::Read;
use std::path::{Path, PathBuf};

/// OCI media types used with `--format oci`.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The PATH a RUN gets when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("Dockerfile:{line}: {instruction}: {message}")]
    Step {
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
}

fn step_err(step: &Step, message: impl std::fmt::Display) -> BuildError {
    BuildError::Step {
        line: step.line,
        instruction: step.keyword.to_uppercase(),
        message: message.to_string(),
    }
}

/// Image format of the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Docker,
    Oci,
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone)]
pub enum DockerfileSource {
    /// A file (absolute, or relative to the current directory).
    Path(PathBuf),
    /// Text already read (`-f -`).
    Text(String),
}

/// Everything a build needs besides the store.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context_dir: PathBuf,
    pub dockerfile: DockerfileSource,
    pub build_args: BuildArgs,
    /// Names for the result (`name` means `name:latest`).
    pub tags: Vec<String>,
    pub target: Option<String>,
    /// `--build-static build-time=...`: every timestamp becomes this (seconds since the epoch).
    pub static_time: Option<i64>,
    /// `SOURCE_DATE_EPOCH`: created times become this and file times are clamped to it.
    pub source_date_epoch: Option<i64>,
    /// Proxy variables from the caller's environment, given to RUN when `--proxy` is on.
    pub proxy_env: Vec<(String, String)>,
    pub cap_add: Vec<String>,
    pub format: ImageFormat,
    /// OCI runtime for RUN (`None`: the built-in sandbox).
    pub runtime: Option<String>,
}

/// One RUN step for the executor.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Overlay lower dirs, top-most first.
    pub lower_dirs: Vec<PathBuf>,
    pub upper_dir: PathBuf,
    pub work_dir: PathBuf,
    pub bundle_dir: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub hostname: String,
    pub cap_add: Vec<String>,
    pub runtime: Option<String>,
}

/// Runs RUN steps. The CLI provides the sandbox; returns the command's exit code.
pub trait RunExecutor {
    fn run(&self, req: &RunRequest) -> Result<i32, String>;
}

/// Resolves (and if needed fetches) a base image by reference; returns its image ID.
pub trait ImageResolver {
    fn resolve(&self, store: &Store, reference: &str) -> Result<String, String>;
}

/// Resolves only from the local store.
pub struct LocalOnly;

impl ImageResolver for LocalOnly {
    fn resolve(&self, store: &Store, reference: &str) -> Result<String, String> {
        let ix = store.index().map_err(|e| e.to_string())?;
        ix.find(reference)
            .map(|i| i.id.clone())
            .map_err(|e| e.to_string())
    }
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    pub image_id: String,
    pub names: Vec<String>,
}

/// A finished stage (or a base image): layers and config.
#[derive(Debug, Clone)]
struct StageResult {
    layers: Vec<Digest>,
    /// Changes of stages that are only `COPY --from` sources, not committed to the store:
    /// their overlay upper dirs in the build's work dir, bottom first, on top of `layers`.
    pending: Vec<PathBuf>,
    config: ImageConfig,
}

/// A `COPY --from` source kept mounted for the rest of the build.
struct FromMount {
    key: String,
    dir: PathBuf,
    _mount: Option<OverlayMount>,
}

/// Read a file the user named (Dockerfile, .dockerignore): with their rights when setuid.
fn read_limited(path: &Path, what: &str) -> Result<String, BuildError> {
    let f = crate::privilege::as_caller(|| std::fs::File::open(path))
        .map_err(|e| BuildError::Input(format!("read {what} {}: {e}", path.display())))?;
    let mut buf = String::new();
    f.take(MAX_DOCKERFILE_SIZE as u64 + 1)
        .read_to_string(&mut buf)
        .map_err(|e| BuildError::Input(format!("read {what} {}: {e}", path.display())))?;
    if buf.len() > MAX_DOCKERFILE_SIZE {
        return Err(BuildError::Input(format!(
            "{what} {} is larger than the 1 MiB limit",
            path.display()
        )));
    }
    Ok(buf)
}

/// The files COPY/ADD heredocs provide: (name, content), expanded unless the delimiter was
/// quoted.
fn heredoc_sources(
    scope: &StageScope<'_>,
    heredocs: &[crate::build::parser::Heredoc],
    step: &Step,
) -> Result<Vec<(String, String)>, BuildError> {
    heredocs
        .iter()
        .map(|h| {
            let content = if h.expand {
                scope.expand(&h.content).map_err(|e| step_err(step, e))?
            } else {
                h.content.clone()
            };
            Ok((h.name.clone(), content))
        })
        .collect()
}

fn created_string(t: Option<i64>) -> String {
    match t.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        Some(d) => d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => crate::image::config::now_rfc3339(),
    }
}

struct Driver<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    exec: &'a dyn RunExecutor,
    resolver: &'a dyn ImageResolver,
    log: &'a mut dyn FnMut(&str),
    ws: WorkDir,
    leases: Vec<Lease>,
    from_mounts: Vec<FromMount>,
    step_no: usize,
    build_id: String,
    created: String,
    pack: PackOptions,
}

impl Driver<'_> {
    fn say(&mut self, s: &str) {
        (self.log)(s);
    }

    fn step_line(&mut self, text: &str) {
        self.step_no += 1;
        let line = format!("STEP {:2}: {text}", self.step_no);
        self.say(&line);
    }

    /// Load a stored image as a stage base, leasing its layers.
    fn load_image(&mut self, id: &str) -> Result<StageResult, BuildError> {
        let _read = self.store.read_lock()?;
        let ix = self.store.index()?;
        let rec = ix
            .get(id)
            .ok_or_else(|| BuildError::Input(format!("image {id} vanished from the store")))?;
        let layers = rec.layers.clone();
        let digest = rec
            .config_digest()
            .map_err(|e| BuildError::Input(e.to_string()))?;
        let bytes = self.store.read_blob(&digest)?;
        let config: ImageConfig = serde_json::from_slice(&bytes)
            .map_err(|e| BuildError::Input(format!("image {id}: config does not parse: {e}")))?;
        self.leases.push(self.store.lease(&layers)?);
        Ok(StageResult {
            layers,
            pending: vec![],
            config,
        })
    }

    fn resolve_image(&mut self, reference: &str, step: &Step) -> Result<StageResult, BuildError> {
        let id = self
            .resolver
            .resolve(self.store, reference)
            .map_err(|e| step_err(step, e))?;
        self.load_image(&id)
    }

    /// The overlay lower dirs of a stage result (top first): its pending upper dirs, then its
    /// layers, unpacking any layer used for the first time (the build leases all of them).
    fn lower_dirs(&self, res: &StageResult) -> Result<Vec<PathBuf>, BuildError> {
        let mut dirs: Vec<PathBuf> = res.pending.iter().rev().cloned().collect();
        for l in res.layers.iter().rev() {
            dirs.push(self.store.unpacked_layer(l)?);
        }
        Ok(dirs)
    }

    /// A read-only view of a stage result or image for `COPY --from`.
    fn mount_from(&mut self, key: &str, res: &StageResult) -> Result<PathBuf, BuildError> {
        if let Some(m) = self.from_mounts.iter().find(|m| m.key == key) {
            return Ok(m.dir.clone());
        }
        let n = self.from_mounts.len();
        let base = self.ws.child(&format!("from-{n}"));
        let (upper, work, merged) = (base.join("upper"), base.join("work"), base.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(|e| StoreError::io(d, e))?;
        }
        let mount = overlay::mount_overlay(&self.lower_dirs(res)?, &upper, &work, &merged)
            .map_err(|e| BuildError::Input(e.to_string()))?;
        self.from_mounts.push(FromMount {
            key: key.to_string(),
            dir: merged.clone(),
            _mount: Some(mount),
        });
        Ok(merged)
    }

    fn run_build(&mut self) -> Result<Built, BuildError> {
        let opts = self.opts;
        let text = match &opts.dockerfile {
            DockerfileSource::Text(t) => {
                if t.len() > MAX_DOCKERFILE_SIZE {
                    return Err(BuildError::Input(
                        "Dockerfile is larger than the 1 MiB limit".into(),
                    ));
                }
                t.clone()
            }
            DockerfileSource::Path(p) => read_limited(p, "Dockerfile")?,
        };
        let df = parse_dockerfile(&text)?;
        let plan = plan_stages(&df, &opts.build_args, opts.target.as_deref())?;
        for a in &plan.unused_build_args {
            tracing::warn!("build arg {a} was not consumed by the Dockerfile");
        }
        let ignore_path = opts.context_dir.join(".dockerignore");
        let ignore = if crate::privilege::as_caller(|| ignore_path.exists()) {
            let t = read_limited(&ignore_path, ".dockerignore")?;
            IgnoreMatcher::from_dockerignore(&t)
                .map_err(|e| BuildError::Input(format!(".dockerignore: {e}")))?
        } else {
            IgnoreMatcher::default()
        };
        let context = SourceTree::context(&opts.context_dir, ignore)
            .map_err(|e| BuildError::Input(e.to_string()))?;

        // The target and the stages it is built FROM (transitively) become layers in the
        // store; a stage used only by `COPY --from` keeps its changes in its upper dir.
        let mut commits = vec![false; plan.stages.len()];
        let mut at = Some(plan.target);
        while let Some(i) = at {
            if std::mem::replace(&mut commits[i], true) {
                break;
            }
            at = match plan.stages[i].base {
                StageBase::Stage(b) => Some(b),
                _ => None,
            };
        }
        let mut results: Vec<Option<StageResult>> = vec![None; plan.stages.len()];
        for &si in &plan.order {
            let stage = &plan.stages[si];
            let base = match &stage.base {
                StageBase::Scratch => {
                    self.step_line(&stage.from.original);
                    let (arch, variant) = host_platform();
                    StageResult {
                        layers: vec![],
                        pending: vec![],
                        config: ImageConfig {
                            architecture: arch.into(),
                            variant: variant.map(str::to_string),
                            os: "linux".into(),
                            rootfs: RootFs {
                                kind: "layers".into(),
                                diff_ids: vec![],
                            },
                            ..Default::default()
                        },
                    }
                }
                StageBase::Stage(i) => {
                    self.step_line(&stage.from.original);
                    results[*i]
                        .clone()
                        .ok_or_else(|| step_err(&stage.from, format!("stage {i} was not built")))?
                }
                StageBase::Image(r) => {
                    self.step_line(&stage.from.original);
                    self.resolve_image(r, &stage.from)?
                }
            };
            let res = self.run_stage(si, &plan, base, &context, &results, commits[si])?;
            results[si] = Some(res);
        }
        let fin = results[plan.target]
            .take()
            .ok_or_else(|| BuildError::Input("target stage was not built".into()))?;
        if !fin.pending.is_empty() {
            return Err(BuildError::Input(
                "internal: the target stage has uncommitted changes".into(),
            ));
        }
        self.publish_image(fin)
    }

    fn run_stage(
        &mut self,
        si: usize,
        plan: &crate::build::stages::StagePlan,
        base: StageResult,
        context: &SourceTree,
        results: &[Option<StageResult>],
        commit: bool,
    ) -> Result<StageResult, BuildError> {
        let stage = &plan.stages[si];
        let mut config = base.config.clone();
        let triggers = config.config.on_build.take().unwrap_or_default();
        // History of the base must match its layers; keep it as is.
        let base_env: Vec<(String, String)> = config
            .config
            .env
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect();
        let mut scope = StageScope::for_stage(plan, &self.opts.build_args, &base_env);

        let dir = self.ws.child(&format!("stage-{si}"));
        let (upper, work, merged, bundle) = (
            dir.join("upper"),
            dir.join("work"),
            dir.join("merged"),
            dir.join("bundle"),
        );
        for d in [&upper, &work, &merged, &bundle] {
            std::fs::create_dir_all(d).map_err(|e| StoreError::io(d, e))?;
        }
        let lowers = self.lower_dirs(&base)?;
        let mut mount = Some(
            overlay::mount_overlay(&lowers, &upper, &work, &merged)
                .map_err(|e| BuildError::Input(e.to_string()))?,
        );
        let mut history: Vec<History> = Vec::new();
        let mut layer_step: Option<usize> = None;
        let mut cmd_set = false;

        // ONBUILD triggers of the base run first.
        let mut steps: Vec<Step> = Vec::new();
        if !triggers.is_empty() {
            steps.extend(crate::build::instructions::parse_onbuild_triggers(
                &triggers,
            )?);
        }
        steps.extend(stage.steps.iter().cloned());

        for raw in &steps {
            self.step_line(&raw.original);
            let step = scope.process(raw)?;
            let mut changes_fs = false;
            let mut created_by = format!("/bin/sh -c #(nop) {}", raw.original);
            match &step.instruction {
                Instruction::From(_) => return Err(step_err(&step, "FROM inside a stage")),
                Instruction::Arg(_) => continue,
                Instruction::Env(kvs) => {
                    let env = config.config.env.get_or_insert_with(Vec::new);
                    for kv in kvs {
                        metadata::set_env(env, &kv.key, &kv.value);
                    }
                }
                Instruction::Label(kvs) => {
                    let labels = config.config.labels.get_or_insert_with(Default::default);
                    for kv in kvs {
                        labels.insert(kv.key.clone(), kv.value.clone());
                    }
                }
                Instruction::Maintainer(m) => config.author = Some(m.clone()),
                Instruction::Cmd(c) => {
                    let shell = config
                        .config
                        .shell
                        .clone()
                        .unwrap_or_else(metadata::default_shell);
                    config.config.cmd = Some(metadata::command_argv(c, &shell));
                    cmd_set = true;
                }
                Instruction::Entrypoint(c) => {
                    let shell = config
                        .config
                        .shell
                        .clone()
                        .unwrap_or_else(metadata::default_shell);
                    config.config.entrypoint = Some(metadata::command_argv(c, &shell));
                    if !cmd_set {
                        config.config.cmd = None;
                    }
                }
                Instruction::Shell(s) => config.config.shell = Some(s.clone()),
                Instruction::User(u) => config.config.user = u.clone(),
                Instruction::StopSignal(s) => config.config.stop_signal = s.clone(),
                Instruction::Expose(ports) => {
                    let keys = metadata::expose_keys(ports).map_err(|e| step_err(&step, e))?;
                    metadata::add_to_set(&mut config.config.exposed_ports, keys);
                }
                Instruction::Volume(v) => {
                    metadata::add_to_set(&mut config.config.volumes, v.iter().cloned())
                }
                Instruction::Healthcheck(h) => {
                    config.config.healthcheck = Some(metadata::health_config(h))
                }
                Instruction::Onbuild { expression, .. } => {
                    config
                        .config
                        .on_build
                        .get_or_insert_with(Vec::new)
                        .push(expression.clone());
                }
                Instruction::Workdir(w) => {
                    let wd = metadata::join_workdir(&config.config.working_dir, w);
                    let rel = wd.trim_start_matches('/');
                    if !rel.is_empty() {
                        let root = pathrs::Root::open(&merged).map_err(|e| step_err(&step, e))?;
                        root.mkdir_all(rel, &std::os::unix::fs::PermissionsExt::from_mode(0o755))
                            .map_err(|e| step_err(&step, format!("create {wd}: {e}")))?;
                    }
                    config.config.working_dir = wd;
                    changes_fs = true;
                }
                Instruction::Copy(c) => {
                    if !c.exclude.is_empty() || c.parents {
                        return Err(step_err(
                            &step,
                            "COPY --exclude and --parents are not supported yet",
                        ));
                    }
                    let ov =
                        self.overrides(&step, &merged, c.chown.as_deref(), c.chmod.as_deref())?;
                    let inline = heredoc_sources(&scope, &c.heredocs, &step)?;
                    let tree_dir = match &c.from {
                        Some(from) => Some(self.copy_from_dir(from, plan, results, &step)?),
                        None => None,
                    };
                    let tree = match &tree_dir {
                        Some(d) => Some(SourceTree::rootfs(d).map_err(|e| step_err(&step, e))?),
                        None => None,
                    };
                    let tree_ref = tree.as_ref().unwrap_or(context);
                    let dest = self.dest_path(&config, &c.dest);
                    self.copy(
                        &step, tree_ref, &c.sources, &inline, &dest, ov, &merged, false,
                    )?;
                    created_by = format!("/bin/sh -c #(nop) {}", raw.original);
                    changes_fs = true;
                }
                Instruction::Add(a) => {
                    if !a.exclude.is_empty() || a.checksum.is_some() {
                        return Err(step_err(
                            &step,
                            "ADD --exclude and --checksum are not supported yet",
                        ));
                    }
                    if let Some(u) = a.sources.iter().find(|s| s.contains("://")) {
                        return Err(step_err(&step, format!("source can not be a URL for ADD: {u} (remote ADD is not supported)")));
                    }
                    let ov =
                        self.overrides(&step, &merged, a.chown.as_deref(), a.chmod.as_deref())?;
                    let inline = heredoc_sources(&scope, &a.heredocs, &step)?;
                    let dest = self.dest_path(&config, &a.dest);
                    self.copy(
                        &step,
                        context,
                        &a.sources,
                        &inline,
                        &dest,
                        ov,
                        &merged,
                        a.unpack != Some(false),
                    )?;
                    changes_fs = true;
                }
                Instruction::Run(r) => {
                    if !r.mounts.is_empty() {
                        return Err(step_err(&step, "RUN --mount is not supported yet"));
                    }
                    if let Some(n) = r
                        .network
                        .as_deref()
                        .filter(|n| !matches!(*n, "host" | "default"))
                    {
                        return Err(step_err(
                            &step,
                            format!(
                                "RUN --network={n} is not supported: RUN uses the host network"
                            ),
                        ));
                    }
                    if let Some(sec) = r.security.as_deref().filter(|s| *s != "sandbox") {
                        return Err(step_err(
                            &step,
                            format!("RUN --security={sec} is not supported"),
                        ));
                    }
                    let shell = config
                        .config
                        .shell
                        .clone()
                        .unwrap_or_else(metadata::default_shell);
                    let args = match (&r.command, r.heredocs.first()) {
                        (CommandForm::Shell(s), Some(h)) if s.trim_start().starts_with("<<") && r.heredocs.len() == 1 => {
                            let mut v = shell.clone();
                            v.push(h.content.clone());
                            v
                        }
                        (_, Some(_)) => {
                            return Err(step_err(&step, "only the form `RUN <<EOF` (a script given to the shell) is supported for RUN heredocs"))
                        }
                        (form, None) => metadata::command_argv(form, &shell),
                    };
                    let shown = match &r.command {
                        CommandForm::Shell(s) => s.clone(),
                        CommandForm::Exec(v) => format!(
                            "[{}]",
                            v.iter()
                                .map(|a| format!("{a:?}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    };
                    let code = self.run_step(
                        &step,
                        &config,
                        &scope,
                        args.clone(),
                        &lowers,
                        &upper,
                        &work,
                        &bundle,
                        &mut mount,
                        &merged,
                    )?;
                    if code != 0 {
                        return Err(BuildError::RunFailed {
                            command: shown,
                            code,
                        });
                    }
                    let args_prefix: Vec<String> = scope
                        .declared_args()
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    created_by = if args_prefix.is_empty() {
                        args.join(" ")
                    } else {
                        format!(
                            "|{} {} {}",
                            args_prefix.len(),
                            args_prefix.join(" "),
                            args.join(" ")
                        )
                    };
                    changes_fs = true;
                }
            }
            history.push(History {
                created: Some(self.created.clone()),
                created_by: Some(created_by),
                empty_layer: true,
                ..Default::default()
            });
            if changes_fs {
                layer_step = Some(history.len() - 1);
            }
        }
        // ENV from the scope is authoritative for the config (values already expanded).
        if let Some(m) = mount.take() {
            m.unmount().map_err(|e| BuildError::Input(e.to_string()))?;
        }
        let mut layers = base.layers.clone();
        let mut pending = base.pending.clone();
        let empty =
            crate::storage::pack::is_empty_dir(&upper).map_err(|e| StoreError::io(&upper, e))?;
        if !empty && !commit {
            pending.push(upper);
        } else if !empty {
            if !pending.is_empty() {
                return Err(BuildError::Input(
                    "internal: a committed stage stands on an uncommitted one".into(),
                ));
            }
            let parent = layers.last().cloned();
            let staged = layer::stage_layer_from_dir(&self.ws, &upper, parent.as_ref(), self.pack)?;
            fsutil::syncfs(self.ws.path()).map_err(|e| StoreError::io(self.ws.path(), e))?;
            let mut tx = self.store.begin()?;
            tx.publish_layer(&staged)?;
            // Lease before the commit's sweep can see an unreferenced layer.
            self.leases.push(
                self.store
                    .lease(std::slice::from_ref(&staged.meta.chain_id))?,
            );
            tx.commit()?;
            config.rootfs.diff_ids.push(staged.meta.diff_id.clone());
            layers.push(staged.meta.chain_id.clone());
            match layer_step {
                Some(i) => history[i].empty_layer = false,
                None => {
                    if let Some(last) = history.last_mut() {
                        last.empty_layer = false;
                    } else {
                        history.push(History {
                            created: Some(self.created.clone()),
                            created_by: Some("isula-build stage commit".into()),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        config.history.extend(history);
        config.created = Some(self.created.clone());
        if config.rootfs.kind.is_empty() {
            config.rootfs.kind = "layers".into();
        }
        Ok(StageResult {
            layers,
            pending,
            config,
        })
    }

    fn overrides(
        &self,
        step: &Step,
        rootfs: &Path,
        chown: Option<&str>,
        chmod: Option<&str>,
    ) -> Result<Overrides, BuildError> {
        let owner = match chown {
            Some(spec) if !spec.is_empty() => {
                let ids = userdb::resolve(rootfs, spec).map_err(|e| step_err(step, e))?;
                Some((ids.uid, ids.gid))
            }
            _ => None,
        };
        let mode = match chmod {
            Some(m) if !m.is_empty() => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|v| *v <= 0o7777)
                    .ok_or_else(|| {
                        step_err(
                            step,
                            format!("invalid chmod value {m:?}: expected octal permission bits"),
                        )
                    })?,
            ),
            _ => None,
        };
        Ok(Overrides { owner, mode })
    }

    fn dest_path(&self, config: &ImageConfig, dest: &str) -> String {
        if dest.starts_with('/') {
            return dest.to_string();
        }
        let wd = if config.config.working_dir.is_empty() {
            "/"
        } else {
            &config.config.working_dir
        };
        let mut joined = metadata::join_workdir(wd, dest);
        if (dest.ends_with('/') || dest == "." || dest.ends_with("/.")) && !joined.ends_with('/') {
            joined.push('/');
        }
        joined
    }

    fn copy_from_dir(
        &mut self,
        from: &str,
        plan: &crate::build::stages::StagePlan,
        results: &[Option<StageResult>],
        step: &Step,
    ) -> Result<PathBuf, BuildError> {
        let lower = from.to_ascii_lowercase();
        let idx = plan
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                from.parse::<usize>()
                    .ok()
                    .filter(|i| *i < plan.stages.len())
            });
        match idx {
            Some(i) => {
                let res = results[i].clone().ok_or_else(|| {
                    step_err(step, format!("stage {from} is not built before this step"))
                })?;
                self.mount_from(&format!("stage:{i}"), &res)
            }
            None => {
                let res = self.resolve_image(from, step)?;
                self.mount_from(&format!("image:{from}"), &res)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        step: &Step,
        tree: &SourceTree,
        sources: &[String],
        inline: &[(String, String)],
        dest: &str,
        ov: Overrides,
        rootfs: &Path,
        add: bool,
    ) -> Result<(), BuildError> {
        let ce = |e: CopyError| step_err(step, e);
        let mut selected = Vec::new();
        let path_sources: Vec<String> = sources
            .iter()
            .filter(|s| !s.starts_with("<<") || inline.is_empty())
            .cloned()
            .collect();
        if !path_sources.is_empty() {
            selected = copy::select_sources(tree, &path_sources).map_err(ce)?;
        }
        for (name, content) in inline {
            selected.push(Source::Inline {
                name: name.clone(),
                content: content.clone().into_bytes(),
            });
        }
        let dest_rel = copy::clean_source(dest).map_err(ce)?;
        let dest_is_dir = copy::is_dir_in(rootfs, &dest_rel);
        if add {
            // Local archives are extracted into the destination directory.
            let mut rest = Vec::new();
            for s in selected {
                match &s {
                    Source::Path { rel, is_dir: false } => {
                        if !copy::add_archive(tree, rel, rootfs, &dest_rel).map_err(ce)? {
                            rest.push(s);
                        }
                    }
                    _ => rest.push(s),
                }
            }
            if rest.is_empty() {
                return Ok(());
            }
            selected = rest;
        }
        let plan = copy::plan_copy(selected, dest, dest_is_dir).map_err(ce)?;
        copy::copy_into(tree, &plan, ov, rootfs).map_err(ce)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_step(
        &mut self,
        step: &Step,
        config: &ImageConfig,
        scope: &StageScope<'_>,
        args: Vec<String>,
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        bundle: &Path,
        mount: &mut Option<OverlayMount>,
        merged: &Path,
    ) -> Result<i32, BuildError> {
        let mut env: Vec<String> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for v in scope.run_env() {
            names.push(v.name.clone());
            env.push(format!("{}={}", v.name, v.value));
        }
        for (k, v) in &self.opts.proxy_env {
            if !names.contains(k) {
                names.push(k.clone());
                env.push(format!("{k}={v}"));
            }
        }
        if !names.iter().any(|n| n == "PATH") {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let cwd = if config.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            config.config.working_dir.clone()
        };
        if let Some(m) = mount.take() {
            m.unmount().map_err(|e| BuildError::Input(e.to_string()))?;
        }
        let req = RunRequest {
            lower_dirs: lowers.to_vec(),
            upper_dir: upper.to_path_buf(),
            work_dir: work.to_path_buf(),
            bundle_dir: bundle.to_path_buf(),
            args,
            env,
            cwd,
            user: config.config.user.clone(),
            hostname: self.build_id[..12.min(self.build_id.len())].to_string(),
            cap_add: self.opts.cap_add.clone(),
            runtime: self.opts.runtime.clone(),
        };
        let res = self.exec.run(&req).map_err(|e| step_err(step, e));
        *mount = Some(
            overlay::mount_overlay(lowers, upper, work, merged)
                .map_err(|e| BuildError::Input(e.to_string()))?,
        );
        res
    }

    fn publish_image(&mut self, fin: StageResult) -> Result<Built, BuildError> {
        let names: Vec<String> = self
            .opts
            .tags
            .iter()
            .map(|t| Reference::parse_tagged_name(t).map(|r| r.to_string()))
            .collect::<Result<_, _>>()
            .map_err(|e| BuildError::Input(e.to_string()))?;
        let config_bytes =
            serde_json::to_vec(&fin.config).map_err(|e| BuildError::Input(e.to_string()))?;
        let (config_path, config_digest) = self.ws.stage_blob(&config_bytes)?;
        let metas: Vec<LayerMeta> = fin
            .layers
            .iter()
            .map(|l| self.store.layer_meta(l))
            .collect::<Result<_, _>>()?;
        let oci = self.opts.format == ImageFormat::Oci;
        let manifest = Manifest {
            schema_version: 2,
            media_type: if oci {
                MEDIA_TYPE_OCI_MANIFEST
            } else {
                MEDIA_TYPE_DOCKER_MANIFEST
            }
            .into(),
            config: Descriptor {
                media_type: if oci {
                    MEDIA_TYPE_OCI_CONFIG
                } else {
                    MEDIA_TYPE_DOCKER_CONFIG
                }
                .into(),
                size: config_bytes.len() as u64,
                digest: config_digest.clone(),
            },
            layers: metas
                .iter()
                .map(|m| Descriptor {
                    media_type: layer::layer_media_type(oci, m.compression()).to_string(),
                    size: m.blob_size,
                    digest: m.blob.clone(),
                })
                .collect(),
        };
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| BuildError::Input(e.to_string()))?;
        let (manifest_path, manifest_digest) = self.ws.stage_blob(&manifest_bytes)?;
        let id = config_digest.hex().to_string();
        let mut tx = self.store.begin()?;
        // Every layer must still be there (leased since the stage published or loaded it).
        for l in &fin.layers {
            if !self.store.layer_dir(l).exists() {
                return Err(StoreError::MissingLayer(l.clone()).into());
            }
        }
        tx.publish_blob(&config_path, &config_digest)?;
        tx.publish_blob(&manifest_path, &manifest_digest)?;
        let mut all_names = tx
            .index
            .get(&id)
            .map(|r| r.names.clone())
            .unwrap_or_default();
        for n in &names {
            if !all_names.contains(n) {
                all_names.push(n.clone());
            }
        }
        tx.index.put(ImageRecord {
            id: id.clone(),
            names: all_names,
            layers: fin.layers.clone(),
            manifest: manifest_digest,
            created: fin
                .config
                .created
                .clone()
                .unwrap_or_else(|| self.created.clone()),
            size: metas.iter().map(|m| m.size).sum(),
        });
        tx.commit()?;
        Ok(Built {
            image_id: id,
            names,
        })
    }
}

/// Build an image. `log` receives the `STEP n: ...` lines; RUN output goes straight to the
/// caller's stdout/stderr through the executor. The caller must already be in a private
/// mount namespace ([`overlay::enter_private_mount_namespace`]).
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    exec: &dyn RunExecutor,
    resolver: &dyn ImageResolver,
    log: &mut dyn FnMut(&str),
) -> Result<Built, BuildError> {
    if !opts.context_dir.is_dir() {
        return Err(BuildError::Input(format!(
            "context directory path {:?} should be a directory",
            opts.context_dir.display().to_string()
        )));
    }
    let build_id = fsutil::random_hex(32);
    let _marker = lock::lock(
        &lock::build_marker_path(store.runroot(), &build_id),
        lock::Mode::Exclusive,
    )
    .map_err(StoreError::from)?;
    let ws = store.workspace("build")?;
    let time = opts.static_time.or(opts.source_date_epoch);
    let timestamps = match (opts.static_time, opts.source_date_epoch) {
        (Some(t), _) => Timestamps::Fixed(t),
        (None, Some(t)) => Timestamps::Clamp(t),
        (None, None) => Timestamps::Keep,
    };
    let mut d = Driver {
        store,
        opts,
        exec,
        resolver,
        log,
        ws,
        leases: Vec::new(),
        from_mounts: Vec::new(),
        step_no: 0,
        build_id: if opts.static_time.is_some() {
            "0".repeat(32)
        } else {
            build_id.clone()
        },
        created: created_string(time),
        pack: PackOptions { timestamps },
    };
    let res = d.run_build();
    // Unmount before the work dir is removed.
    d.from_mounts.clear();
    if res.is_err() {
        // Layers published by stages of a failed build are garbage now: release them and
        // sweep, so a failed build leaves the store as it found it.
        d.leases.clear();
        if let Ok(tx) = store.begin() {
            let _ = tx.commit();
        }
    }
    let _ = std::fs::remove_file(lock::build_marker_path(store.runroot(), &build_id));
    res
}

/// Parse upstream's `--build-static` value: `build-time=YYYY-MM-DD HH:MM:SS` (UTC).
pub fn parse_build_static(v: &str) -> Result<i64, String> {
    let (k, val) = v
        .split_once('=')
        .ok_or_else(|| format!("invalid build-static value {v:?}"))?;
    if k.trim() != "build-time" {
        return Err(format!("option {:?} not support by build-static", k.trim()));
    }
    let val = val.trim().trim_matches('"');
    chrono::NaiveDateTime::parse_from_str(val, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc().timestamp())
        .map_err(|e| format!("invalid build-time {val:?}: {e} (expected \"YYYY-MM-DD HH:MM:SS\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_static_values() {
        assert_eq!(
            parse_build_static("build-time=2020-06-30 15:05:05").unwrap(),
            1593529505
        );
        assert!(parse_build_static("build-time=yesterday").is_err());
        assert!(parse_build_static("other=1").is_err());
    }
}
