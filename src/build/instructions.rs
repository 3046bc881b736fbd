//! Typed instructions: each [`Node`] becomes a [`Step`] whose [`Instruction`] has validated
//! arguments and flags. Unknown instructions and unknown flags are rejected, naming them.
//!
//! Values stay as written (unexpanded, quotes kept); [`super::stages::StageScope::expand_step`]
//! expands them at build time, because expansion needs the base image's environment.
//!
//! Flags accepted per instruction:
//!
//! | instruction | flags |
//! | --- | --- |
//! | FROM | `--platform` |
//! | RUN | `--mount` (repeatable), `--network`, `--security` |
//! | COPY | `--from`, `--chown`, `--chmod`, `--link`, `--parents`, `--exclude` (repeatable) |
//! | ADD | `--chown`, `--chmod`, `--link`, `--checksum`, `--keep-git-dir`, `--unpack`, `--exclude` (repeatable) |
//! | HEALTHCHECK | `--interval`, `--timeout`, `--start-period`, `--start-interval`, `--retries` |
//! | others | none |

use std::collections::BTreeSet;
use std::time::Duration;

use super::error::{ErrorKind, ParseError};
use super::parser::{Dockerfile, Heredoc, Node};

/// Shell form (run through the stage's `SHELL`) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    /// `RUN echo hi`: the command line, to be given to the shell.
    Shell(String),
    /// `RUN ["echo", "hi"]`: the argument vector.
    Exec(Vec<String>),
}

/// One `key=value` of ENV or LABEL, unexpanded (quotes still in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key as written.
    pub key: String,
    /// The value as written.
    pub value: String,
}

/// One name of an ARG instruction with its default, unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The variable name.
    pub name: String,
    /// The default value as written, if any.
    pub default: Option<String>,
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base as written (may hold `$VARS` resolved from global ARGs).
    pub image: String,
    /// The stage name, lower-cased.
    pub name: Option<String>,
    /// `--platform`, as written.
    pub platform: Option<String>,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// What to run.
    pub command: CommandForm,
    /// `--mount` specifications as written, in order.
    pub mounts: Vec<String>,
    /// `--network` (`default`, `none` or `host`).
    pub network: Option<String>,
    /// `--security` (`sandbox` or `insecure`).
    pub security: Option<String>,
    /// Heredocs opened on the line (`RUN <<EOF`): when the command is only a heredoc marker,
    /// the heredoc's content is the script.
    pub heredocs: Vec<Heredoc>,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Source paths; a `<<NAME` source refers to the heredoc of that name.
    pub sources: Vec<String>,
    /// Destination path.
    pub dest: String,
    /// `--from`: a stage name, a stage index or an image reference.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Heredocs used as sources.
    pub heredocs: Vec<Heredoc>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// Source paths or URLs; a `<<NAME` source refers to the heredoc of that name.
    pub sources: Vec<String>,
    /// Destination path.
    pub dest: String,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--checksum=sha256:...` for remote sources.
    pub checksum: Option<String>,
    /// `--keep-git-dir` for git sources.
    pub keep_git_dir: bool,
    /// `--unpack`: explicitly unpack (true) or not (false) archives; `None` is the default rule.
    pub unpack: Option<bool>,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Heredocs used as sources.
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [flags] CMD ...`. Zero durations and retries mean "use the default".
    Cmd {
        /// The test command.
        test: CommandForm,
        /// `--interval`.
        interval: Duration,
        /// `--timeout`.
        timeout: Duration,
        /// `--start-period`.
        start_period: Duration,
        /// `--start-interval`.
        start_interval: Duration,
        /// `--retries`.
        retries: u32,
    },
}

/// A validated instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM`
    From(From),
    /// `ARG`
    Arg(Vec<ArgDecl>),
    /// `ENV`
    Env(Vec<KeyValue>),
    /// `LABEL`
    Label(Vec<KeyValue>),
    /// `RUN`
    Run(Run),
    /// `CMD`
    Cmd(CommandForm),
    /// `ENTRYPOINT`
    Entrypoint(CommandForm),
    /// `SHELL` (always exec form)
    Shell(Vec<String>),
    /// `WORKDIR`
    Workdir(String),
    /// `USER`
    User(String),
    /// `EXPOSE` ports as written
    Expose(Vec<String>),
    /// `VOLUME` paths
    Volume(Vec<String>),
    /// `COPY`
    Copy(Copy),
    /// `ADD`
    Add(Add),
    /// `HEALTHCHECK`
    Healthcheck(Healthcheck),
    /// `STOPSIGNAL`
    StopSignal(String),
    /// `ONBUILD`: the validated trigger and its text as stored in the image config's `OnBuild`.
    Onbuild {
        /// The trigger instruction.
        trigger: Box<Step>,
        /// The trigger's text, e.g. `RUN echo hi`.
        expression: String,
    },
    /// `MAINTAINER` (sets the image's author).
    Maintainer(String),
}

/// An instruction with its place in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The instruction.
    pub instruction: Instruction,
    /// The keyword as written.
    pub keyword: String,
    /// First line (1-based).
    pub line: usize,
    /// Last line.
    pub end_line: usize,
    /// The logical source line (continuations joined).
    pub original: String,
}

impl Step {
    /// An error located at this step.
    pub fn error(&self, kind: ErrorKind) -> ParseError {
        ParseError::new(self.line, self.keyword.clone(), kind)
    }
}

/// Converts every node of `df` into a validated [`Step`].
pub fn parse_instructions(df: &Dockerfile) -> Result<Vec<Step>, ParseError> {
    df.nodes.iter().map(parse_node).collect()
}

/// Parses the `OnBuild` triggers of a base image's config (e.g. `RUN make`), which run at the
/// start of a stage built on that image. Each must be exactly one instruction, and not ONBUILD,
/// FROM or MAINTAINER. Errors carry the trigger's 1-based position as their line.
pub fn parse_onbuild_triggers<S: AsRef<str>>(triggers: &[S]) -> Result<Vec<Step>, ParseError> {
    let mut out = Vec::with_capacity(triggers.len());
    for (i, t) in triggers.iter().enumerate() {
        let text = t.as_ref();
        let relocate = |mut e: ParseError| {
            e.line = i + 1;
            e
        };
        let df = super::parser::parse_dockerfile(text).map_err(relocate)?;
        let [node] = df.nodes.as_slice() else {
            return Err(ParseError::new(
                i + 1,
                "ONBUILD",
                ErrorKind::Syntax(format!("trigger {text:?} is not exactly one instruction")),
            ));
        };
        if matches!(node.name().as_str(), "onbuild" | "from" | "maintainer") {
            return Err(ParseError::new(
                i + 1,
                "ONBUILD",
                ErrorKind::Syntax(format!(
                    "{} isn't allowed as an ONBUILD trigger",
                    node.keyword.to_uppercase()
                )),
            ));
        }
        let mut step = parse_node(node).map_err(relocate)?;
        step.line = i + 1;
        step.end_line = i + 1;
        out.push(step);
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Str,
    Bool,
    Multi,
}

struct Flags {
    values: Vec<(&'static str, Vec<String>)>,
}

impl Flags {
    fn get(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.last().cloned())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "true")
    }
}

fn parse_flags(
    node: &Node,
    specs: &[(&'static str, FlagKind)],
) -> Result<Flags, (String, ErrorKind)> {
    let mut flags = Flags { values: Vec::new() };
    let mut seen = BTreeSet::new();
    for raw in &node.flags {
        let Some(body) = raw.strip_prefix("--") else {
            return Err((
                node.keyword.clone(),
                ErrorKind::Syntax(format!("arg should start with -- : {raw}")),
            ));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag = format!("--{name}");
        let Some(&(spec_name, kind)) = specs.iter().find(|(n, _)| *n == name) else {
            return Err((node.keyword.clone(), ErrorKind::UnknownFlag(flag)));
        };
        let invalid = |reason: String| {
            (
                node.keyword.clone(),
                ErrorKind::InvalidFlag {
                    flag: flag.clone(),
                    reason,
                },
            )
        };
        if kind != FlagKind::Multi && !seen.insert(spec_name) {
            return Err(invalid("duplicate flag specified".into()));
        }
        let value = match (kind, value) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" => "true".to_string(),
                "false" => "false".to_string(),
                _ => return Err(invalid(format!("expecting boolean value, not: {v}"))),
            },
            (_, None) => return Err(invalid("missing a value".into())),
            (_, Some(v)) => v.to_string(),
        };
        match flags.values.iter_mut().find(|(n, _)| *n == spec_name) {
            Some((_, vals)) => vals.push(value),
            None => flags.values.push((spec_name, vec![value])),
        }
    }
    Ok(flags)
}

fn command_form(node: &Node, args: &[String]) -> CommandForm {
    if node.json {
        CommandForm::Exec(args.to_vec())
    } else {
        CommandForm::Shell(args.first().cloned().unwrap_or_default())
    }
}

/// Parses a Go duration (`1h2m3.5s`, `300ms`, `0`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return Err(format!("duration {s:?} cannot be negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut frac_ns: u128 = 0;
        let mut div: u128 = 1;
        for d in frac.chars().take(18) {
            frac_ns = frac_ns * 10 + u128::from(d.to_digit(10).unwrap_or(0));
            div *= 10;
        }
        total_ns = int
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_ns * scale / div))
            .and_then(|v| v.checked_add(total_ns))
            .filter(|v| *v <= i64::MAX as u128)
            .ok_or_else(|| format!("duration {s:?} out of range"))?;
        rest = tail;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, (total_ns % 1_000_000_000) as u32))
}

fn health_duration(flags: &Flags, name: &str) -> Result<Duration, String> {
    let Some(v) = flags.get(name) else {
        return Ok(Duration::ZERO);
    };
    if v.is_empty() {
        return Ok(Duration::ZERO);
    }
    let d = parse_go_duration(&v)?;
    if !d.is_zero() && d < Duration::from_millis(1) {
        return Err(format!("Interval {name:?} cannot be less than 1ms"));
    }
    Ok(d)
}

fn stage_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn at_least(node: &Node, n: usize) -> Result<(), (String, ErrorKind)> {
    if node.args.len() < n {
        let what = if n == 1 {
            "one argument"
        } else {
            "two arguments"
        };
        return Err((
            node.keyword.clone(),
            ErrorKind::Syntax(format!(
                "{} requires at least {what}",
                node.keyword.to_uppercase()
            )),
        ));
    }
    Ok(())
}

fn exactly_one(node: &Node) -> Result<String, (String, ErrorKind)> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err((
            node.keyword.clone(),
            ErrorKind::Syntax(format!(
                "{} requires exactly one argument",
                node.keyword.to_uppercase()
            )),
        )),
    }
}

fn key_values(node: &Node) -> Result<Vec<KeyValue>, (String, ErrorKind)> {
    at_least(node, 1)?;
    let mut out = Vec::new();
    for kv in node.args.chunks(3) {
        let (key, value) = match kv {
            [k, v, ..] => (k.clone(), v.clone()),
            _ => {
                return Err((
                    node.keyword.clone(),
                    ErrorKind::Syntax("malformed key/value list".into()),
                ))
            }
        };
        if key.is_empty() {
            return Err((
                node.keyword.clone(),
                ErrorKind::Syntax(format!(
                    "{} names can not be blank",
                    node.keyword.to_uppercase()
                )),
            ));
        }
        out.push(KeyValue { key, value });
    }
    Ok(out)
}

fn sources_and_dest(node: &Node) -> Result<(Vec<String>, String), (String, ErrorKind)> {
    match node.args.split_last() {
        Some((dest, sources)) if !sources.is_empty() => Ok((sources.to_vec(), dest.clone())),
        _ => Err((
            node.keyword.clone(),
            ErrorKind::Syntax(format!(
                "{} requires at least two arguments, but only one was provided. Destination \
                 could not be determined",
                node.keyword.to_uppercase()
            )),
        )),
    }
}

fn parse_node(node: &Node) -> Result<Step, ParseError> {
    convert(node).map_err(|(kw, kind)| ParseError::new(node.start_line, kw, kind))
}

fn convert(node: &Node) -> Result<Step, (String, ErrorKind)> {
    use FlagKind::{Bool, Multi, Str};
    let kw = node.keyword.clone();
    let syntax = |m: String| (kw.clone(), ErrorKind::Syntax(m));
    let no_flags = || parse_flags(node, &[]);
    let instruction = match node.name().as_str() {
        "from" => {
            let flags = parse_flags(node, &[("platform", Str)])?;
            let (image, name) = match node.args.as_slice() {
                [image] => (image.clone(), None),
                [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    if !stage_name_ok(name) {
                        return Err(syntax(format!(
                            "invalid stage name {name:?}: it must start with a letter or digit, \
                             contain only letters, digits, '_', '.' and '-', and be at most 64 \
                             characters"
                        )));
                    }
                    (image.clone(), Some(name.to_ascii_lowercase()))
                }
                _ => {
                    return Err(syntax(
                        "FROM requires either one or three arguments: FROM <image> [AS <name>]"
                            .into(),
                    ))
                }
            };
            Instruction::From(From {
                image,
                name,
                platform: flags.get("platform"),
            })
        }
        "arg" => {
            no_flags()?;
            at_least(node, 1)?;
            let mut decls = Vec::new();
            for word in &node.args {
                let (name, default) = match word.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (word.clone(), None),
                };
                if name.is_empty() {
                    return Err(syntax("ARG names can not be blank".into()));
                }
                decls.push(ArgDecl { name, default });
            }
            Instruction::Arg(decls)
        }
        "env" => {
            no_flags()?;
            Instruction::Env(key_values(node)?)
        }
        "label" => {
            no_flags()?;
            Instruction::Label(key_values(node)?)
        }
        "maintainer" => {
            no_flags()?;
            Instruction::Maintainer(exactly_one(node)?)
        }
        "run" => {
            let flags = parse_flags(
                node,
                &[("mount", Multi), ("network", Str), ("security", Str)],
            )?;
            at_least(node, 1)?;
            let network = flags.get("network");
            if let Some(n) = &network {
                if !matches!(n.as_str(), "default" | "none" | "host") {
                    return Err((
                        kw.clone(),
                        ErrorKind::InvalidFlag {
                            flag: "--network".into(),
                            reason: format!("unsupported network mode {n:?}"),
                        },
                    ));
                }
            }
            let security = flags.get("security");
            if let Some(s) = &security {
                if !matches!(s.as_str(), "sandbox" | "insecure") {
                    return Err((
                        kw.clone(),
                        ErrorKind::InvalidFlag {
                            flag: "--security".into(),
                            reason: format!("unsupported security mode {s:?}"),
                        },
                    ));
                }
            }
            Instruction::Run(Run {
                command: command_form(node, &node.args),
                mounts: flags.all("mount"),
                network,
                security,
                heredocs: node.heredocs.clone(),
            })
        }
        "cmd" => {
            no_flags()?;
            Instruction::Cmd(command_form(node, &node.args))
        }
        "entrypoint" => {
            no_flags()?;
            Instruction::Entrypoint(command_form(node, &node.args))
        }
        "shell" => {
            no_flags()?;
            if !node.json {
                return Err(syntax(
                    "SHELL requires the arguments to be in JSON form".into(),
                ));
            }
            at_least(node, 1)?;
            Instruction::Shell(node.args.clone())
        }
        "workdir" => {
            no_flags()?;
            Instruction::Workdir(exactly_one(node)?)
        }
        "user" => {
            no_flags()?;
            Instruction::User(exactly_one(node)?)
        }
        "stopsignal" => {
            no_flags()?;
            Instruction::StopSignal(exactly_one(node)?)
        }
        "expose" => {
            no_flags()?;
            at_least(node, 1)?;
            Instruction::Expose(node.args.clone())
        }
        "volume" => {
            no_flags()?;
            at_least(node, 1)?;
            if node.args.iter().any(|v| v.trim().is_empty()) {
                return Err(syntax("VOLUME specified can not be an empty string".into()));
            }
            Instruction::Volume(node.args.clone())
        }
        "copy" => {
            let flags = parse_flags(
                node,
                &[
                    ("from", Str),
                    ("chown", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("parents", Bool),
                    ("exclude", Multi),
                ],
            )?;
            check_chmod(&kw, flags.get("chmod").as_deref())?;
            let (sources, dest) = sources_and_dest(node)?;
            Instruction::Copy(Copy {
                sources,
                dest,
                from: flags.get("from"),
                chown: flags.get("chown"),
                chmod: flags.get("chmod"),
                link: flags.bool("link"),
                parents: flags.bool("parents"),
                exclude: flags.all("exclude"),
                heredocs: node.heredocs.clone(),
            })
        }
        "add" => {
            let flags = parse_flags(
                node,
                &[
                    ("chown", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("checksum", Str),
                    ("keep-git-dir", Bool),
                    ("unpack", Bool),
                    ("exclude", Multi),
                ],
            )?;
            check_chmod(&kw, flags.get("chmod").as_deref())?;
            let (sources, dest) = sources_and_dest(node)?;
            Instruction::Add(Add {
                sources,
                dest,
                chown: flags.get("chown"),
                chmod: flags.get("chmod"),
                link: flags.bool("link"),
                checksum: flags.get("checksum"),
                keep_git_dir: flags.bool("keep-git-dir"),
                unpack: flags.get("unpack").map(|v| v == "true"),
                exclude: flags.all("exclude"),
                heredocs: node.heredocs.clone(),
            })
        }
        "healthcheck" => {
            let flags = parse_flags(
                node,
                &[
                    ("interval", Str),
                    ("timeout", Str),
                    ("start-period", Str),
                    ("start-interval", Str),
                    ("retries", Str),
                ],
            )?;
            at_least(node, 1)?;
            let typ = node.args[0].to_ascii_uppercase();
            match typ.as_str() {
                "NONE" => {
                    if node.args.len() > 1 {
                        return Err(syntax("HEALTHCHECK NONE takes no arguments".into()));
                    }
                    Instruction::Healthcheck(Healthcheck::None)
                }
                "CMD" => {
                    let rest = &node.args[1..];
                    if rest.is_empty() {
                        return Err(syntax("Missing command after HEALTHCHECK CMD".into()));
                    }
                    let dur = |name: &str| {
                        health_duration(&flags, name).map_err(|reason| {
                            (
                                kw.clone(),
                                ErrorKind::InvalidFlag {
                                    flag: format!("--{name}"),
                                    reason,
                                },
                            )
                        })
                    };
                    let retries = match flags.get("retries") {
                        None => 0,
                        Some(r) => match r.parse::<i32>() {
                            Ok(n) if n >= 0 => n as u32,
                            Ok(n) => {
                                return Err((
                                    kw.clone(),
                                    ErrorKind::InvalidFlag {
                                        flag: "--retries".into(),
                                        reason: format!("cannot be negative ({n})"),
                                    },
                                ))
                            }
                            Err(e) => {
                                return Err((
                                    kw.clone(),
                                    ErrorKind::InvalidFlag {
                                        flag: "--retries".into(),
                                        reason: e.to_string(),
                                    },
                                ))
                            }
                        },
                    };
                    Instruction::Healthcheck(Healthcheck::Cmd {
                        test: command_form(node, rest),
                        interval: dur("interval")?,
                        timeout: dur("timeout")?,
                        start_period: dur("start-period")?,
                        start_interval: dur("start-interval")?,
                        retries,
                    })
                }
                other => {
                    return Err(syntax(format!(
                        "Unknown type {other:?} in HEALTHCHECK (try CMD)"
                    )))
                }
            }
        }
        "onbuild" => {
            no_flags()?;
            let Some(sub) = &node.sub else {
                return Err(syntax("ONBUILD requires at least one argument".into()));
            };
            match sub.name().as_str() {
                "onbuild" => {
                    return Err(syntax(
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
                    ))
                }
                "from" | "maintainer" => {
                    return Err(syntax(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        sub.keyword.to_uppercase()
                    )))
                }
                _ => {}
            }
            let mut sub = (**sub).clone();
            sub.start_line = node.start_line;
            sub.end_line = node.end_line;
            let trigger = convert(&sub)?;
            let expression = node
                .original
                .trim()
                .get(node.keyword.len()..)
                .unwrap_or_default()
                .trim()
                .to_string();
            Instruction::Onbuild {
                trigger: Box::new(trigger),
                expression,
            }
        }
        _ => return Err((kw.clone(), ErrorKind::UnknownInstruction(kw.clone()))),
    };
    Ok(Step {
        instruction,
        keyword: node.keyword.clone(),
        line: node.start_line,
        end_line: node.end_line,
        original: node.original.clone(),
    })
}

/// An octal `--chmod` must fit in 12 bits; values with variables are checked after expansion.
fn check_chmod(kw: &str, chmod: Option<&str>) -> Result<(), (String, ErrorKind)> {
    let Some(mode) = chmod else { return Ok(()) };
    if mode.contains('$') || !mode.chars().all(|c| c.is_ascii_digit()) {
        return Ok(());
    }
    match u32::from_str_radix(mode, 8) {
        Ok(m) if m <= 0o7777 => Ok(()),
        _ => Err((
            kw.to_string(),
            ErrorKind::InvalidFlag {
                flag: "--chmod".into(),
                reason: format!("invalid mode {mode:?}"),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::parser::parse_dockerfile;

    fn steps(text: &str) -> Result<Vec<Step>, ParseError> {
        parse_instructions(&parse_dockerfile(text)?)
    }

    #[test]
    fn unknown_instruction_and_flag() {
        let e = steps("FROM a\n\nRUNN x\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:3: unknown instruction: RUNN");
        let e = steps("FROM a\nCOPY --frm=b x y\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:2: COPY: unknown flag: --frm");
        let e = steps("FROM a\nWORKDIR --x /\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownFlag("--x".into()));
        let e = steps("FROM a\nCOPY --from x y\n").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::InvalidFlag { .. }), "{e}");
        let e = steps("FROM a\nCOPY --chown=a --chown=b x y\n").unwrap_err();
        assert!(e.to_string().contains("duplicate"), "{e}");
    }

    #[test]
    fn copy_add_run_flags() {
        let s = steps(
            "FROM a AS B\nCOPY --from=b --link --parents --exclude=*.md --exclude=x a b /d/\n\
             ADD --keep-git-dir=true --checksum=sha256:00 --unpack=false u /\n\
             RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none ls\n",
        )
        .unwrap();
        let Instruction::From(f) = &s[0].instruction else {
            panic!("not FROM")
        };
        assert_eq!(f.name.as_deref(), Some("b"));
        let Instruction::Copy(c) = &s[1].instruction else {
            panic!("not COPY")
        };
        assert_eq!(c.from.as_deref(), Some("b"));
        assert!(c.link && c.parents);
        assert_eq!(c.exclude, vec!["*.md", "x"]);
        assert_eq!((c.sources.len(), c.dest.as_str()), (2, "/d/"));
        let Instruction::Add(a) = &s[2].instruction else {
            panic!("not ADD")
        };
        assert!(a.keep_git_dir);
        assert_eq!(a.unpack, Some(false));
        let Instruction::Run(r) = &s[3].instruction else {
            panic!("not RUN")
        };
        assert_eq!(r.mounts.len(), 2);
        assert_eq!(r.command, CommandForm::Shell("ls".into()));
        assert!(steps("FROM a\nRUN --network=bridge ls\n").is_err());
        assert!(steps("FROM a\nCOPY --chmod=8888 a b\n").is_err());
        assert!(steps("FROM a\nCOPY a\n").is_err());
    }

    #[test]
    fn healthcheck_and_onbuild() {
        let s = steps(
            "FROM a\nHEALTHCHECK --interval=1m30s --retries=3 CMD [\"true\"]\n\
             HEALTHCHECK NONE\nONBUILD RUN echo hi\n",
        )
        .unwrap();
        match &s[1].instruction {
            Instruction::Healthcheck(Healthcheck::Cmd {
                test,
                interval,
                retries,
                ..
            }) => {
                assert_eq!(test, &CommandForm::Exec(vec!["true".into()]));
                assert_eq!(*interval, Duration::from_secs(90));
                assert_eq!(*retries, 3);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s[2].instruction,
            Instruction::Healthcheck(Healthcheck::None)
        );
        match &s[3].instruction {
            Instruction::Onbuild {
                trigger,
                expression,
            } => {
                assert_eq!(expression, "RUN echo hi");
                assert_eq!(trigger.line, 4);
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "ONBUILD ONBUILD RUN x",
            "ONBUILD FROM x",
            "ONBUILD MAINTAINER x",
            "ONBUILD",
            "HEALTHCHECK CONNECT x",
            "HEALTHCHECK CMD",
            "HEALTHCHECK --interval=10us CMD x",
            "HEALTHCHECK --retries=-1 CMD x",
            "SHELL sh -c",
        ] {
            assert!(steps(&format!("FROM a\n{bad}\n")).is_err(), "{bad}");
        }
    }

    #[test]
    fn onbuild_triggers_from_an_image() {
        let steps = parse_onbuild_triggers(&["RUN make", "COPY --chown=1 a /b"]).unwrap();
        assert_eq!(steps.len(), 2);
        assert!(matches!(steps[1].instruction, Instruction::Copy(_)));
        assert_eq!(steps[1].line, 2);
        for bad in [
            "FROM x",
            "ONBUILD RUN x",
            "MAINTAINER me",
            "RUN a\nRUN b",
            "",
            "RUNN x",
        ] {
            assert!(parse_onbuild_triggers(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stage_names() {
        assert!(steps("FROM a AS 1st-stage\n").is_ok());
        assert!(steps(&format!("FROM a AS {}\n", "x".repeat(64))).is_ok());
        assert!(steps(&format!("FROM a AS {}\n", "x".repeat(65))).is_err());
        assert!(steps("FROM a AS -x\n").is_err());
        assert!(steps("FROM a AS $X\n").is_err());
        assert!(steps("FROM a b\n").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("1x").is_err());
        assert!(parse_go_duration("99999999999999999999h").is_err());
    }
}
