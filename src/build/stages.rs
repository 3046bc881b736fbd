//! The stage graph and ARG/ENV scoping.
//!
//! [`plan_stages`] turns a parsed Dockerfile into a [`StagePlan`]: the stages in file order
//! with their base (scratch, an image, or an earlier stage), their steps and dependencies, the
//! target stage and which stages it does not need (skippable).
//!
//! Scoping rules (BuildKit's):
//! * ARGs before the first FROM are *global*: usable in FROM lines only, unless a stage
//!   re-declares them (`ARG NAME` without a default then takes the global value).
//! * `--build-arg` values override ARG defaults, and only reach declared ARGs, except the
//!   predefined proxy ARGs ([`PROXY_ARGS`]), which are usable without declaration and are
//!   flagged so the driver keeps them out of the image config and history.
//! * ENV always wins over an ARG of the same name.
//!
//! [`StageScope`] applies these rules while the driver walks a stage, and expands the fields of
//! each instruction that BuildKit expands: ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
//! VOLUME, WORKDIR, ARG defaults and `RUN --mount`. RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and
//! ONBUILD are left for the shell (or the child build) to expand.

use std::collections::{BTreeMap, HashMap};

use super::error::{ErrorKind, ParseError};
use super::instructions::{parse_instructions, ArgDecl, Instruction, KeyValue, Step};
use super::parser::Dockerfile;
use super::shell_words::{ShellWords, Vars};

/// ARGs every Dockerfile may use without declaring them.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether `name` is one of the predefined proxy ARGs.
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
}

/// `--build-arg` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildArgs {
    values: BTreeMap<String, String>,
}

impl BuildArgs {
    /// No build args.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (a later value for the same name wins).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// The value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// All names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for BuildArgs {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut b = BuildArgs::new();
        for (k, v) in iter {
            b.insert(k, v);
        }
        b
    }
}

/// A global (before the first FROM) ARG after applying build args and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalArg {
    /// The name.
    pub name: String,
    /// The value, or `None` when declared without a default and not given as a build arg.
    pub value: Option<String>,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageBase {
    /// `FROM scratch`.
    Scratch,
    /// An image reference (global ARGs already expanded), to resolve from the store or pull.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position in the Dockerfile (0-based); also how `COPY --from=<n>` names it.
    pub index: usize,
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    /// What it starts from.
    pub base: StageBase,
    /// `FROM --platform`, expanded with the global ARGs; `None` when absent or empty.
    pub platform: Option<String>,
    /// The FROM step itself.
    pub from: Step,
    /// The stage's steps after FROM, unexpanded.
    pub steps: Vec<Step>,
    /// Earlier stages this one needs (base, `COPY --from`, `RUN --mount=from=`), sorted, unique.
    pub deps: Vec<usize>,
    /// Images that `COPY --from` or `RUN --mount=from=` refer to, as written after expansion.
    pub image_deps: Vec<String>,
    /// Whether the target needs this stage; `false` means the driver may skip it.
    pub needed: bool,
}

/// What the build driver executes.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    /// The escape character of the Dockerfile (for expansion).
    pub escape: char,
    /// Global ARGs in order of first declaration.
    pub global_args: Vec<GlobalArg>,
    /// The global ARGs that have a value, by name (what FROM lines and re-declarations see).
    pub global_env: HashMap<String, String>,
    /// All stages in file order.
    pub stages: Vec<Stage>,
    /// Index of the target stage (the last one unless `--target` says otherwise).
    pub target: usize,
    /// Indexes of the stages to build, in an order that respects dependencies.
    pub order: Vec<usize>,
    /// Indexes of the stages the target does not need.
    pub skipped: Vec<usize>,
    /// Build args that no ARG in a needed stage (or the global scope) declares and that are not
    /// predefined; Docker warns about these.
    pub unused_build_args: Vec<String>,
}

fn stage_err(step: &Step, msg: String) -> ParseError {
    step.error(ErrorKind::Stage(msg))
}

fn expand_err(step: &Step, e: impl std::fmt::Display) -> ParseError {
    step.error(ErrorKind::Expansion(e.to_string()))
}

/// Builds the stage plan for `df` with `build_args`, aiming at `target` (a stage name, matched
/// case-insensitively, or a stage index; `None` for the last stage).
pub fn plan_stages(
    df: &Dockerfile,
    build_args: &BuildArgs,
    target: Option<&str>,
) -> Result<StagePlan, ParseError> {
    let steps = parse_instructions(df)?;
    let shell = ShellWords::new(df.escape);

    // Global ARGs: `global_args` in order of first declaration, `meta_env` their values.
    let mut global_args: Vec<GlobalArg> = Vec::new();
    let mut global_index: HashMap<String, usize> = HashMap::new();
    let mut meta_env: HashMap<String, String> = HashMap::new();
    let mut iter = steps.into_iter().peekable();
    while let Some(step) = iter.next_if(|s| !matches!(s.instruction, Instruction::From(_))) {
        let Instruction::Arg(decls) = &step.instruction else {
            return Err(stage_err(
                &step,
                format!(
                    "{} before the first FROM: only ARG may come before FROM",
                    step.keyword.to_uppercase()
                ),
            ));
        };
        for decl in decls {
            let value = match (build_args.get(&decl.name), &decl.default) {
                (Some(v), _) => Some(v.to_string()),
                (None, Some(d)) => Some(
                    shell
                        .expand_word(d, &meta_env)
                        .map_err(|e| expand_err(&step, e))?,
                ),
                (None, None) => None,
            };
            match &value {
                Some(v) => meta_env.insert(decl.name.clone(), v.clone()),
                None => meta_env.remove(&decl.name),
            };
            let arg = GlobalArg {
                name: decl.name.clone(),
                value,
            };
            match global_index.get(&decl.name) {
                Some(&i) => global_args[i] = arg,
                None => {
                    global_index.insert(decl.name.clone(), global_args.len());
                    global_args.push(arg);
                }
            }
        }
    }

    // Split into stages.
    let mut raw: Vec<(Step, Vec<Step>)> = Vec::new();
    for step in iter {
        if matches!(step.instruction, Instruction::From(_)) {
            raw.push((step, Vec::new()));
        } else if let Some((_, body)) = raw.last_mut() {
            body.push(step);
        }
    }
    if raw.is_empty() {
        return Err(ParseError::bare(ErrorKind::Stage(
            "the Dockerfile has no FROM instruction".into(),
        )));
    }

    // Names, checked for duplicates up front so references to later stages can be recognised.
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, (from, _)) in raw.iter().enumerate() {
        if let Instruction::From(f) = &from.instruction {
            if let Some(name) = &f.name {
                if let Some(&prev) = by_name.get(name) {
                    return Err(stage_err(
                        from,
                        format!(
                            "duplicate stage name {name:?}, first defined on line {}",
                            raw[prev].0.line
                        ),
                    ));
                }
                by_name.insert(name.clone(), i);
            }
        }
    }

    let mut stages = Vec::with_capacity(raw.len());
    let mut declared_anywhere: Vec<Vec<String>> = Vec::with_capacity(raw.len());
    for (index, (from_step, body)) in raw.into_iter().enumerate() {
        let Instruction::From(from) = &from_step.instruction else {
            continue;
        };
        let image = shell
            .expand_word(&from.image, &meta_env)
            .map_err(|e| expand_err(&from_step, e))?;
        if image.is_empty() {
            return Err(stage_err(
                &from_step,
                format!("base name ({}) should not be blank", from.image),
            ));
        }
        let platform = match &from.platform {
            Some(p) => Some(
                shell
                    .expand_word(p, &meta_env)
                    .map_err(|e| expand_err(&from_step, e))?,
            ),
            None => None,
        }
        .filter(|p| !p.is_empty());
        let lower = image.to_ascii_lowercase();
        let base = match by_name.get(&lower) {
            Some(&i) if i < index => StageBase::Stage(i),
            Some(&i) if i > index => {
                return Err(stage_err(
                    &from_step,
                    format!(
                        "FROM {image} refers to stage {i}, defined later; a stage may only \
                         build on an earlier one"
                    ),
                ))
            }
            _ if lower == "scratch" => StageBase::Scratch,
            _ => StageBase::Image(image),
        };

        let mut deps: Vec<usize> = Vec::new();
        if let StageBase::Stage(i) = base {
            deps.push(i);
        }
        let mut image_deps = Vec::new();
        let mut scope = StageScope::new(df.escape, &meta_env, build_args, &[]);
        let mut declared = Vec::new();
        for step in &body {
            let mut refs: Vec<String> = Vec::new();
            match &step.instruction {
                Instruction::Copy(c) => {
                    if let Some(f) = &c.from {
                        refs.push(scope.expand(f).map_err(|e| expand_err(step, e))?);
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        let m = scope.expand(m).map_err(|e| expand_err(step, e))?;
                        if let Some(f) = mount_from(&m) {
                            refs.push(f);
                        }
                    }
                }
                Instruction::Arg(decls) => declared.extend(decls.iter().map(|d| d.name.clone())),
                _ => {}
            }
            for r in refs {
                match resolve_ref(&r, index, &by_name) {
                    Ok(Some(i)) => deps.push(i),
                    Ok(None) => image_deps.push(r),
                    Err(msg) => return Err(stage_err(step, msg)),
                }
            }
            // Keep ARG/ENV state so later `--from=$VAR` see earlier declarations. Failures
            // here are reported by the driver when it expands the step for real.
            let _ = scope.apply(step);
        }
        deps.sort_unstable();
        deps.dedup();
        declared_anywhere.push(declared);
        stages.push(Stage {
            index,
            name: from.name.clone(),
            base,
            platform,
            from: from_step.clone(),
            steps: body,
            deps,
            image_deps,
            needed: false,
        });
    }

    let target = match target {
        None => stages.len() - 1,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            match by_name.get(&lower) {
                Some(&i) => i,
                None => match t.parse::<usize>() {
                    Ok(i) if i < stages.len() => i,
                    _ => {
                        return Err(ParseError::bare(ErrorKind::Stage(format!(
                            "target stage {t:?} could not be found"
                        ))))
                    }
                },
            }
        }
    };
    stages[target].needed = true;
    for i in (0..=target).rev() {
        if stages[i].needed {
            for d in stages[i].deps.clone() {
                stages[d].needed = true;
            }
        }
    }
    let order: Vec<usize> = stages
        .iter()
        .filter(|s| s.needed)
        .map(|s| s.index)
        .collect();
    let skipped: Vec<usize> = stages
        .iter()
        .filter(|s| !s.needed)
        .map(|s| s.index)
        .collect();

    let mut used: std::collections::HashSet<&str> =
        global_args.iter().map(|g| g.name.as_str()).collect();
    for &i in &order {
        used.extend(declared_anywhere[i].iter().map(String::as_str));
    }
    let unused_build_args = build_args
        .names()
        .filter(|n| !used.contains(n) && !is_proxy_arg(n))
        .map(str::to_string)
        .collect();

    Ok(StagePlan {
        escape: df.escape,
        global_args,
        global_env: meta_env,
        stages,
        target,
        order,
        skipped,
        unused_build_args,
    })
}

/// The `from=` option of a `RUN --mount` specification.
fn mount_from(spec: &str) -> Option<String> {
    spec.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("from")).then(|| v.trim().to_string())
    })
}

/// Resolves a `--from` value seen in stage `current`: `Ok(Some(i))` for an earlier stage,
/// `Ok(None)` for an image reference.
fn resolve_ref(
    r: &str,
    current: usize,
    by_name: &HashMap<String, usize>,
) -> Result<Option<usize>, String> {
    if r.is_empty() {
        return Err("--from must not be empty".into());
    }
    let lower = r.to_ascii_lowercase();
    if let Some(&i) = by_name.get(&lower) {
        return match i.cmp(&current) {
            std::cmp::Ordering::Less => Ok(Some(i)),
            std::cmp::Ordering::Equal => {
                Err(format!("circular dependency: stage {r:?} refers to itself"))
            }
            std::cmp::Ordering::Greater => Err(format!(
                "--from={r} refers to a stage defined later; a stage may only refer to an \
                 earlier one"
            )),
        };
    }
    if !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()) {
        return match r.parse::<usize>() {
            Ok(i) if i < current => Ok(Some(i)),
            Ok(i) if i == current => Err(format!(
                "circular dependency: --from={i} refers to the current stage"
            )),
            _ => Err(format!(
                "--from={r} refers to a stage that is not defined before this one"
            )),
        };
    }
    Ok(None)
}

/// One variable of a RUN step's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunVar {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// An undeclared predefined proxy ARG: give it to the process, but never write it into the
    /// image config or history.
    pub proxy: bool,
    /// Comes from an ARG (not ENV): part of the RUN environment but not of the image config.
    pub from_arg: bool,
}

/// ARG and ENV state while a stage is built. Lookups and updates are O(1) (hash indexes), so
/// a stage with many ARG/ENV lines stays linear.
#[derive(Debug, Clone)]
pub struct StageScope<'a> {
    shell: ShellWords,
    globals: &'a HashMap<String, String>,
    build_args: &'a BuildArgs,
    /// Declared ARGs in order of first declaration; `None` = declared without value.
    args: Vec<(String, Option<String>)>,
    arg_index: HashMap<String, usize>,
    /// ENV in order of first definition; values replaced in place.
    env: Vec<(String, String)>,
    env_index: HashMap<String, usize>,
}

impl Vars for StageScope<'_> {
    fn get_var(&self, name: &str) -> Option<&str> {
        if let Some(&i) = self.env_index.get(name) {
            return Some(&self.env[i].1);
        }
        if let Some(&i) = self.arg_index.get(name) {
            return self.args[i].1.as_deref();
        }
        if is_proxy_arg(name) {
            return self.build_args.get(name);
        }
        None
    }
}

impl<'a> StageScope<'a> {
    /// A scope for a stage: `globals` are the global ARG values ([`StagePlan::global_env`]),
    /// `base_env` the base image's environment (`NAME=value` pairs from its config, or the
    /// parent stage's final ENV).
    pub fn new(
        escape: char,
        globals: &'a HashMap<String, String>,
        build_args: &'a BuildArgs,
        base_env: &[(String, String)],
    ) -> Self {
        let mut scope = StageScope {
            shell: ShellWords::new(escape),
            globals,
            build_args,
            args: Vec::new(),
            arg_index: HashMap::new(),
            env: Vec::new(),
            env_index: HashMap::new(),
        };
        for (k, v) in base_env {
            scope.set_env(k.clone(), v.clone());
        }
        scope
    }

    /// A scope for a stage of `plan`.
    pub fn for_stage(
        plan: &'a StagePlan,
        build_args: &'a BuildArgs,
        base_env: &[(String, String)],
    ) -> Self {
        StageScope::new(plan.escape, &plan.global_env, build_args, base_env)
    }

    /// Expands one word in this scope.
    pub fn expand(&self, word: &str) -> Result<String, super::shell_words::ExpandError> {
        self.shell.expand_word(word, self)
    }

    /// Expands and splits one word in this scope.
    pub fn expand_split(&self, word: &str) -> Result<Vec<String>, super::shell_words::ExpandError> {
        self.shell.expand_words(word, self)
    }

    /// Declares an ARG whose default (if any) is already expanded.
    fn declare(&mut self, name: &str, expanded_default: Option<String>) {
        let value = match (self.build_args.get(name), expanded_default) {
            (Some(v), _) => Some(v.to_string()),
            (None, Some(d)) => Some(d),
            (None, None) => self.globals.get(name).cloned(),
        };
        match self.arg_index.get(name) {
            Some(&i) => self.args[i].1 = value,
            None => {
                self.arg_index.insert(name.to_string(), self.args.len());
                self.args.push((name.to_string(), value));
            }
        }
    }

    fn set_env(&mut self, key: String, value: String) {
        match self.env_index.get(&key) {
            Some(&i) => self.env[i].1 = value,
            None => {
                self.env_index.insert(key.clone(), self.env.len());
                self.env.push((key, value));
            }
        }
    }

    /// Expands `step` (see [`StageScope::expand_step`]) and records its effect on the scope
    /// (ARG and ENV steps); returns the expanded step. This is the call the build driver makes
    /// for every step of a stage, in order.
    pub fn process(&mut self, step: &Step) -> Result<Step, ParseError> {
        let expanded = self.expand_step(step)?;
        match &expanded.instruction {
            Instruction::Arg(decls) => {
                for d in decls {
                    self.declare(&d.name, d.default.clone());
                }
            }
            Instruction::Env(kvs) => {
                for kv in kvs {
                    self.set_env(kv.key.clone(), kv.value.clone());
                }
            }
            _ => {}
        }
        Ok(expanded)
    }

    /// Records the effect of an *unexpanded* ARG or ENV step, as [`StageScope::process`] does,
    /// without returning the expanded step. All values of one line are expanded against the
    /// scope as it was before the line, as BuildKit does.
    pub fn apply(&mut self, step: &Step) -> Result<(), ParseError> {
        self.process(step).map(|_| ())
    }

    /// The ENV list for the image config, in order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// ARG names declared so far with their values (for history lines such as
    /// `|1 VERSION=2 /bin/sh -c ...`); undeclared proxy args are never included.
    pub fn declared_args(&self) -> Vec<(String, String)> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// The environment of a RUN step: declared ARGs, then undeclared proxy build args, then
    /// ENV (which wins over an ARG of the same name).
    pub fn run_env(&self) -> Vec<RunVar> {
        let mut out: Vec<RunVar> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut put = |name: &str, value: &str, proxy: bool, from_arg: bool| {
            let var = RunVar {
                name: name.to_string(),
                value: value.to_string(),
                proxy,
                from_arg,
            };
            match index.get(name) {
                Some(&i) => out[i] = var,
                None => {
                    index.insert(name.to_string(), out.len());
                    out.push(var);
                }
            }
        };
        for (k, v) in self.declared_args() {
            put(&k, &v, false, true);
        }
        for name in PROXY_ARGS {
            let declared = self.arg_index.contains_key(name);
            if let (false, Some(v)) = (declared, self.build_args.get(name)) {
                put(name, v, true, true);
            }
        }
        for (k, v) in &self.env {
            put(k, v, false, false);
        }
        out
    }

    /// A copy of the *unexpanded* `step` with the fields BuildKit expands replaced by their
    /// expansion against the current scope (see the module documentation); other steps are
    /// returned unchanged. This does not change the scope; see [`StageScope::process`].
    pub fn expand_step(&self, step: &Step) -> Result<Step, ParseError> {
        let ex = |w: &String| self.expand(w).map_err(|e| expand_err(step, e));
        let ex_opt = |w: &Option<String>| w.as_ref().map(ex).transpose();
        let instruction = match &step.instruction {
            Instruction::Env(kvs) => Instruction::Env(
                kvs.iter()
                    .map(|kv| {
                        Ok(KeyValue {
                            key: ex(&kv.key)?,
                            value: ex(&kv.value)?,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            Instruction::Label(kvs) => Instruction::Label(
                kvs.iter()
                    .map(|kv| {
                        Ok(KeyValue {
                            key: ex(&kv.key)?,
                            value: ex(&kv.value)?,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            Instruction::Arg(decls) => Instruction::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: ex(&d.name)?,
                            default: ex_opt(&d.default)?,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            Instruction::Workdir(w) => Instruction::Workdir(ex(w)?),
            Instruction::User(u) => Instruction::User(ex(u)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(ex(s)?),
            Instruction::Volume(vs) => {
                Instruction::Volume(vs.iter().map(ex).collect::<Result<_, _>>()?)
            }
            Instruction::Expose(ps) => {
                let mut out = Vec::new();
                for p in ps {
                    out.extend(self.expand_split(p).map_err(|e| expand_err(step, e))?);
                }
                Instruction::Expose(out)
            }
            Instruction::Copy(c) => {
                let mut c = c.clone();
                c.sources = c.sources.iter().map(ex).collect::<Result<_, _>>()?;
                c.dest = ex(&c.dest)?;
                c.from = ex_opt(&c.from)?;
                c.chown = ex_opt(&c.chown)?;
                c.chmod = ex_opt(&c.chmod)?;
                c.exclude = c.exclude.iter().map(ex).collect::<Result<_, _>>()?;
                Instruction::Copy(c)
            }
            Instruction::Add(a) => {
                let mut a = a.clone();
                a.sources = a.sources.iter().map(ex).collect::<Result<_, _>>()?;
                a.dest = ex(&a.dest)?;
                a.chown = ex_opt(&a.chown)?;
                a.chmod = ex_opt(&a.chmod)?;
                a.checksum = ex_opt(&a.checksum)?;
                a.exclude = a.exclude.iter().map(ex).collect::<Result<_, _>>()?;
                Instruction::Add(a)
            }
            Instruction::Run(r) => {
                let mut r = r.clone();
                r.mounts = r.mounts.iter().map(ex).collect::<Result<_, _>>()?;
                Instruction::Run(r)
            }
            other => other.clone(),
        };
        Ok(Step {
            instruction,
            ..step.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::parser::parse_dockerfile;

    fn plan(
        text: &str,
        args: &[(&str, &str)],
        target: Option<&str>,
    ) -> Result<StagePlan, ParseError> {
        let df = parse_dockerfile(text).map_err(|e| panic!("syntax: {e}"))?;
        plan_stages(&df, &args.iter().copied().collect(), target)
    }

    const MULTI: &str = "ARG BASE=alpine\nARG TAG\n\
        FROM ${BASE}:${TAG:-3} AS Build\nRUN make\n\
        FROM scratch AS unused\nCOPY --from=build /a /a\n\
        FROM build AS 2nd\nARG TAG\nCOPY --from=0 /x /x\nCOPY --from=busybox /bin/sh /sh\n";

    #[test]
    fn graph_and_target() {
        let p = plan(MULTI, &[("TAG", "3.19"), ("EXTRA", "1")], None).unwrap();
        assert_eq!(p.stages.len(), 3);
        assert_eq!(p.stages[0].base, StageBase::Image("alpine:3.19".into()));
        assert_eq!(p.stages[0].name.as_deref(), Some("build"));
        assert_eq!(p.stages[1].base, StageBase::Scratch);
        assert_eq!(p.stages[1].deps, vec![0]);
        assert_eq!(p.stages[2].base, StageBase::Stage(0));
        assert_eq!(p.stages[2].image_deps, vec!["busybox".to_string()]);
        assert_eq!(p.target, 2);
        assert_eq!(p.order, vec![0, 2]);
        assert_eq!(p.skipped, vec![1]);
        assert_eq!(p.unused_build_args, vec!["EXTRA".to_string()]);
        let p = plan(MULTI, &[], Some("UNUSED")).unwrap();
        assert_eq!(p.stages[0].base, StageBase::Image("alpine:3".into()));
        assert_eq!((p.target, p.order.clone()), (1, vec![0, 1]));
        assert!(plan(MULTI, &[], Some("nope")).is_err());
        assert_eq!(plan(MULTI, &[], Some("0")).unwrap().order, vec![0]);
    }

    #[test]
    fn bad_graphs() {
        let cases = [
            "FROM a AS x\nFROM b AS X\n",
            "FROM a AS x\nCOPY --from=x a b\n",
            "FROM a AS x\nCOPY --from=y a b\nFROM b AS y\n",
            "FROM y AS x\nFROM b AS y\n",
            "FROM a\nCOPY --from=1 a b\nFROM b\n",
            "FROM a\nCOPY --from=0 a b\n",
            "ENV A=1\nFROM a\n",
            "ARG A\n",
            "ARG X=\nFROM $X\n",
        ];
        for c in cases {
            assert!(plan(c, &[], None).is_err(), "{c}");
        }
        let e = plan(
            "FROM a AS x\nRUN --mount=type=bind,from=x,target=/m ls\n",
            &[],
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("Dockerfile:2: RUN: circular"),
            "{e}"
        );
        // The stage's own name in its FROM is an image.
        let p = plan("FROM node AS node\n", &[], None).unwrap();
        assert_eq!(p.stages[0].base, StageBase::Image("node".into()));
    }

    #[test]
    fn scoping() {
        let text = "ARG V=1\nARG G=g\nFROM img:$V\nARG V\nARG L=$V-local\nENV E=$L G2=${G:-none}\n\
                    WORKDIR /w/$E\nRUN echo\n";
        let p = plan(text, &[("HTTP_PROXY", "http://p"), ("L", "over")], None).unwrap();
        assert_eq!(p.stages[0].base, StageBase::Image("img:1".into()));
        let ba: BuildArgs = [("HTTP_PROXY", "http://p"), ("L", "over")]
            .into_iter()
            .collect();
        let mut scope = StageScope::for_stage(&p, &ba, &[("PATH".into(), "/bin".into())]);
        for s in &p.stages[0].steps {
            let s = scope.process(s).unwrap();
            if let Instruction::Workdir(w) = &s.instruction {
                assert_eq!(w, "/w/over");
            }
        }
        // The global G is not visible without re-declaration.
        assert_eq!(
            scope.env(),
            &[
                ("PATH".to_string(), "/bin".to_string()),
                ("E".to_string(), "over".to_string()),
                ("G2".to_string(), "none".to_string())
            ]
        );
        let env = scope.run_env();
        let proxy = env.iter().find(|v| v.name == "HTTP_PROXY").unwrap();
        assert!(proxy.proxy);
        assert!(env
            .iter()
            .any(|v| v.name == "V" && v.value == "1" && !v.proxy));
        assert!(!scope.declared_args().iter().any(|(k, _)| k == "HTTP_PROXY"));
        assert_eq!(scope.expand("$HTTP_PROXY").unwrap(), "http://p");
    }

    #[test]
    fn env_wins_and_env_line_semantics() {
        let text = "FROM a\nENV A=env\nARG A=arg\nENV B=1 C=$B\nRUN x\n";
        let p = plan(text, &[], None).unwrap();
        let ba = BuildArgs::new();
        let mut scope = StageScope::for_stage(&p, &ba, &[]);
        for s in &p.stages[0].steps {
            scope.apply(s).unwrap();
        }
        assert_eq!(scope.expand("$A").unwrap(), "env");
        assert_eq!(scope.expand("[$C]").unwrap(), "[]");
        let env = scope.run_env();
        assert!(env
            .iter()
            .any(|v| v.name == "A" && v.value == "env" && !v.from_arg));
        // Values are expanded exactly once.
        let p = plan("FROM a\nENV Q='$x\"y'\nARG A=1 B=$A\nARG C=$A\n", &[], None).unwrap();
        let mut scope = StageScope::for_stage(&p, &ba, &[]);
        let expanded = scope.process(&p.stages[0].steps[0]).unwrap();
        assert_eq!(scope.env()[0].1, "$x\"y");
        let Instruction::Env(kvs) = &expanded.instruction else {
            panic!("not ENV")
        };
        assert_eq!(kvs[0].value, "$x\"y");
        scope.process(&p.stages[0].steps[1]).unwrap();
        scope.process(&p.stages[0].steps[2]).unwrap();
        // B was expanded before A was declared; C after.
        assert_eq!(
            scope.declared_args(),
            vec![
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), String::new()),
                ("C".to_string(), "1".to_string())
            ]
        );
    }

    #[test]
    fn many_args_and_envs_stay_linear() {
        let mut text = String::new();
        for i in 0..12_000usize {
            text.push_str(&format!("ARG G{i}=${{G{}:-x}}\n", i.saturating_sub(1)));
        }
        text.push_str("FROM img:$G11999\n");
        for i in 0..12_000usize {
            text.push_str(&format!(
                "ENV E{i}=${{E{}:-y}}\nARG A{i}\n",
                i.saturating_sub(1)
            ));
        }
        let p = plan(&text, &[], None).unwrap();
        assert_eq!(p.global_args.len(), 12_000);
        assert_eq!(p.stages[0].base, StageBase::Image("img:x".into()));
        let ba = BuildArgs::new();
        let mut scope = StageScope::for_stage(&p, &ba, &[]);
        for s in &p.stages[0].steps {
            scope.apply(s).unwrap();
        }
        assert_eq!(scope.env().len(), 12_000);
        assert_eq!(scope.env()[11_999], ("E11999".to_string(), "y".to_string()));
        assert_eq!(scope.declared_args().len(), 0);
    }

    #[test]
    fn ten_thousand_stages() {
        let mut text = String::new();
        for i in 0..10_000 {
            if i == 0 {
                text.push_str("FROM scratch AS s0\n");
            } else {
                text.push_str(&format!(
                    "FROM s{} AS s{i}\nCOPY --from={} a b\n",
                    i - 1,
                    i / 2
                ));
            }
        }
        let p = plan(&text, &[], Some("s5000")).unwrap();
        assert_eq!(p.stages.len(), 10_000);
        assert_eq!(p.order.len(), 5001);
        assert_eq!(p.skipped.len(), 4999);
        assert_eq!(p.stages[9999].base, StageBase::Stage(9998));
    }
}
