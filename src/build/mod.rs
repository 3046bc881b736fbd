//! Dockerfile front end and build driver.
//!
//! The front end is pure: every function here takes text in and gives data out.
//!
//! * [`parser`]: parser directives, line continuation, heredocs, instructions and their flags,
//!   with line spans ([`parse_dockerfile`]).
//! * [`shell_words`]: BuildKit-compatible variable expansion and word splitting
//!   ([`expand_word`], [`expand_words`]).
//! * [`instructions`]: typed, validated instructions ([`parse_instructions`]).
//! * [`stages`]: the stage graph, ARG/ENV scoping and the plan the build driver executes
//!   ([`plan_stages`]).
//! * [`dockerignore`]: `.dockerignore` reading and matching ([`IgnoreMatcher`]).

pub mod error;
pub mod shell_words;

pub use error::{ErrorKind, ParseError};
pub use shell_words::{expand_word, expand_words, ExpandError, ShellWords, Vars};
pub mod parser;
pub use parser::{parse_dockerfile, Dockerfile, Heredoc, Node, MAX_DOCKERFILE_SIZE};
pub mod dockerignore;
pub use dockerignore::{IgnoreError, IgnoreMatcher};
pub mod instructions;
pub use instructions::{
    parse_instructions, parse_onbuild_triggers, CommandForm, Instruction, Step,
};
pub mod stages;
pub use stages::{plan_stages, BuildArgs, Stage, StageBase, StagePlan, StageScope, PROXY_ARGS};
