//! The front end's error type: every error carries the Dockerfile line it was found on (when it
//! has one) and the instruction it belongs to, and prints like
//! `Dockerfile:12: unknown instruction: RUNN`.

use std::fmt;

/// What went wrong, without the location (see [`ParseError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The input is larger than the limit isula-build enforces.
    #[error("{what} is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        /// `Dockerfile` or `.dockerignore`.
        what: &'static str,
        /// Size of the input in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The Dockerfile holds no instruction at all.
    #[error("file with no instructions")]
    NoInstructions,
    /// A parser directive is malformed or repeated.
    #[error("{0}")]
    Directive(String),
    /// The instruction keyword is not known.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// The instruction does not accept this flag.
    #[error("unknown flag: {0}")]
    UnknownFlag(String),
    /// The flag is known but its value is not acceptable.
    #[error("invalid flag {flag}: {reason}")]
    InvalidFlag {
        /// The flag as written, e.g. `--chmod`.
        flag: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A heredoc was opened but its terminator line never came.
    #[error("unterminated heredoc {0}")]
    UnterminatedHeredoc(String),
    /// The instruction's arguments are malformed.
    #[error("{0}")]
    Syntax(String),
    /// Variable expansion or quote processing failed.
    #[error("{0}")]
    Expansion(String),
    /// The stage graph is invalid (names, references, target).
    #[error("{0}")]
    Stage(String),
}

/// An error in a Dockerfile, with its 1-based line (0 when the error has no single line, such
/// as an empty file) and the instruction keyword it belongs to (empty when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line where the offending instruction starts; 0 when not tied to a line.
    pub line: usize,
    /// The instruction keyword as written in the file (`RUN`, `copy`, ...), or empty.
    pub instruction: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl ParseError {
    /// Creates an error at `line` for `instruction`.
    pub fn new(line: usize, instruction: impl Into<String>, kind: ErrorKind) -> Self {
        ParseError {
            line,
            instruction: instruction.into(),
            kind,
        }
    }

    /// Creates an error that is not tied to a line or instruction.
    pub fn bare(kind: ErrorKind) -> Self {
        ParseError::new(0, "", kind)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dockerfile")?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        f.write_str(": ")?;
        let show_instruction =
            !self.instruction.is_empty() && !matches!(self.kind, ErrorKind::UnknownInstruction(_));
        if show_instruction {
            write!(f, "{}: ", self.instruction.to_uppercase())?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_documented_shape() {
        let e = ParseError::new(12, "RUNN", ErrorKind::UnknownInstruction("RUNN".into()));
        assert_eq!(e.to_string(), "Dockerfile:12: unknown instruction: RUNN");
        let e = ParseError::new(3, "copy", ErrorKind::UnknownFlag("--frm".into()));
        assert_eq!(e.to_string(), "Dockerfile:3: COPY: unknown flag: --frm");
        let e = ParseError::bare(ErrorKind::NoInstructions);
        assert_eq!(e.to_string(), "Dockerfile: file with no instructions");
    }
}
