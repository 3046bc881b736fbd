//! Dockerfile front end and build driver.
//!
//! The front end is pure: every function here takes text in and gives data out.
//!
//! * [`parser`]: parser directives, line continuation, heredocs, instructions and their flags,
//!   with line spans ([`parse_dockerfile`]).
//! * [`shell_words`]: BuildKit-compatible variable expansion and word splitting
//!   ([`expand_word`], [`expand_words`], [`ShellWords`]).
//! * [`instructions`]: typed, validated instructions ([`parse_instructions`],
//!   [`parse_onbuild_triggers`]).
//! * [`stages`]: the stage graph, ARG/ENV scoping and the plan the build driver executes
//!   ([`plan_stages`], [`StageScope`]).
//! * [`dockerignore`]: `.dockerignore` reading and matching ([`IgnoreMatcher`]).
//! * [`error`]: [`ParseError`], printed as `Dockerfile:12: unknown instruction: RUNN`.
//!
//! A build driver typically calls [`parse_dockerfile`], then [`plan_stages`]; for each stage
//! in [`StagePlan::order`] it resolves [`Stage::base`], creates a [`StageScope`] from the base
//! image's environment and calls [`StageScope::process`] on each step to get it expanded.

pub mod copy;
pub mod dockerignore;
pub mod driver;
pub mod error;
pub mod host;
pub mod instructions;
pub mod job;
pub mod metadata;
pub mod output;
pub mod parser;
pub mod shell_words;
pub mod stages;
pub mod userdb;

pub use dockerignore::{IgnoreError, IgnoreMatcher};
pub use error::{ErrorKind, ParseError};
pub use instructions::{
    parse_instructions, parse_onbuild_triggers, CommandForm, Instruction, Step,
};
pub use parser::{parse_dockerfile, Dockerfile, Heredoc, Node, MAX_DOCKERFILE_SIZE};
pub use shell_words::{expand_word, expand_words, ExpandError, ShellWords, Vars};
pub use stages::{plan_stages, BuildArgs, Stage, StageBase, StagePlan, StageScope, PROXY_ARGS};
