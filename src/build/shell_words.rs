//! Shell-word processing as BuildKit does it for instruction arguments: variable expansion
//! (`$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?m}`, `${v?m}`, `${v#p}`,
//! `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`), quote removal, escapes and
//! splitting into words.
//!
//! The processor is iterative (an explicit stack instead of recursion), so deeply nested
//! `${a:-${b:-...}}` input costs memory proportional to its length and never overflows the
//! call stack.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// A source of variable values for expansion.
pub trait Vars {
    /// The value of `name`, or `None` when it is not set (set-but-empty is `Some("")`).
    fn get_var(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> Vars for HashMap<String, String, S> {
    fn get_var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Vars for BTreeMap<String, String> {
    fn get_var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// A list of `(name, value)` pairs; the first pair with a name wins.
impl Vars for [(String, String)] {
    fn get_var(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Vars for Vec<(String, String)> {
    fn get_var(&self, name: &str) -> Option<&str> {
        self.as_slice().get_var(name)
    }
}

/// No variables at all.
impl Vars for () {
    fn get_var(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Why processing a word failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {message}")]
pub struct ExpandError {
    /// The input word.
    pub word: String,
    /// What went wrong.
    pub message: String,
}

/// The word processor, parameterised by the escape character (`\` or the one set by the
/// `# escape=` directive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellWords {
    escape: char,
}

impl Default for ShellWords {
    fn default() -> Self {
        ShellWords { escape: '\\' }
    }
}

/// Expands one word with the default escape character: variables are replaced, quotes removed,
/// escapes applied, and nothing is split.
pub fn expand_word(word: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
    ShellWords::default().expand_word(word, vars)
}

/// Expands `word` with the default escape character and splits the result into words on
/// unquoted white space (including white space produced by unquoted expansions).
pub fn expand_words(word: &str, vars: &dyn Vars) -> Result<Vec<String>, ExpandError> {
    ShellWords::default().expand_words(word, vars)
}

impl ShellWords {
    /// A processor using `escape` as the escape character.
    pub fn new(escape: char) -> Self {
        ShellWords { escape }
    }

    /// The escape character in use.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands one word (see [`expand_word`]).
    pub fn expand_word(&self, word: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
        self.process(word, vars).map(|(w, _)| w)
    }

    /// Expands and splits (see [`expand_words`]).
    pub fn expand_words(&self, word: &str, vars: &dyn Vars) -> Result<Vec<String>, ExpandError> {
        self.process(word, vars).map(|(_, ws)| ws)
    }

    fn process(&self, word: &str, vars: &dyn Vars) -> Result<(String, Vec<String>), ExpandError> {
        let chars: Vec<char> = word.chars().collect();
        let mut machine = Machine {
            chars: &chars,
            pos: 0,
            escape: self.escape,
            vars,
            stack: vec![Frame::new(FrameKind::Top)],
            words: Words::default(),
        };
        machine.run().map_err(|message| ExpandError {
            word: word.to_string(),
            message,
        })
    }
}

#[derive(Default)]
struct Words {
    done: Vec<String>,
    current: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.current.is_empty() {
                self.done.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.current.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modifier {
    /// `-` / `:-`
    Default { colon: bool },
    /// `+` / `:+`
    Alternative { colon: bool },
    /// `?` / `:?`
    Required { colon: bool },
    /// `#` / `##`
    TrimPrefix { greedy: bool },
    /// `%` / `%%`
    TrimSuffix { greedy: bool },
    /// `/` / `//`: first the pattern, then the replacement.
    Replace { all: bool },
}

enum FrameKind {
    Top,
    Double,
    Subst {
        name: String,
        modifier: Modifier,
        /// For `Replace`, the pattern once the `/` separating it from the replacement is seen.
        pattern: Option<String>,
    },
}

struct Frame {
    kind: FrameKind,
    buf: String,
}

impl Frame {
    fn new(kind: FrameKind) -> Self {
        Frame {
            kind,
            buf: String::new(),
        }
    }
}

/// How a finished piece reaches its parent: expansions are split into words when unquoted,
/// quoted strings are not.
#[derive(Clone, Copy)]
enum Piece {
    Expansion,
    Quoted,
}

struct Machine<'a> {
    chars: &'a [char],
    pos: usize,
    escape: char,
    vars: &'a dyn Vars,
    stack: Vec<Frame>,
    words: Words,
}

const MISSING_BRACE: &str = "syntax error: missing '}'";

impl Machine<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn top(&mut self) -> Result<&mut Frame, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "internal error: empty expansion stack".to_string())
    }

    /// Hands a finished piece to the frame now on top of the stack.
    fn deliver(&mut self, text: &str, piece: Piece) -> Result<(), String> {
        let is_top = matches!(self.top()?.kind, FrameKind::Top);
        self.top()?.buf.push_str(text);
        if is_top {
            match piece {
                Piece::Expansion => self.words.add_string(text),
                Piece::Quoted => self.words.add_raw_string(text),
            }
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(String, Vec<String>), String> {
        loop {
            let in_double = matches!(self.top()?.kind, FrameKind::Double);
            if in_double {
                self.step_double()?;
                continue;
            }
            if let Some(done) = self.step_word()? {
                return Ok(done);
            }
        }
    }

    /// One step inside double quotes.
    fn step_double(&mut self) -> Result<(), String> {
        let escape = self.escape;
        match self.peek() {
            None => {
                Err("unexpected end of statement while looking for matching double-quote".into())
            }
            Some('"') => {
                self.pos += 1;
                let frame = self.pop()?;
                self.deliver(&frame.buf, Piece::Quoted)
            }
            Some('$') => {
                self.pos += 1;
                self.dollar()
            }
            Some(c) if c == escape => {
                self.pos += 1;
                match self.peek() {
                    // A trailing escape is dropped; the next step reports the open quote.
                    None => Ok(()),
                    Some(n) if n == '"' || n == '$' || n == escape => {
                        self.pos += 1;
                        self.top()?.buf.push(n);
                        Ok(())
                    }
                    Some(_) => {
                        self.top()?.buf.push(c);
                        Ok(())
                    }
                }
            }
            Some(c) => {
                self.pos += 1;
                self.top()?.buf.push(c);
                Ok(())
            }
        }
    }

    fn pop(&mut self) -> Result<Frame, String> {
        self.stack
            .pop()
            .ok_or_else(|| "internal error: empty expansion stack".to_string())
    }

    /// One step at the top level or inside `${...}`. Returns the result when the input is done.
    fn step_word(&mut self) -> Result<Option<(String, Vec<String>)>, String> {
        let escape = self.escape;
        let (is_top, stops_on_slash, raw_escapes) = match &self.top()?.kind {
            FrameKind::Top => (true, false, false),
            FrameKind::Subst {
                modifier, pattern, ..
            } => match modifier {
                Modifier::Replace { .. } => (false, pattern.is_none(), pattern.is_none()),
                Modifier::TrimPrefix { .. } | Modifier::TrimSuffix { .. } => (false, false, true),
                _ => (false, false, false),
            },
            FrameKind::Double => (false, false, false),
        };
        let c = match self.peek() {
            None if is_top => {
                let frame = self.pop()?;
                let words = std::mem::take(&mut self.words).finish();
                return Ok(Some((frame.buf, words)));
            }
            None => return Err(MISSING_BRACE.into()),
            Some(c) => c,
        };
        if !is_top && c == '}' {
            self.pos += 1;
            let frame = self.pop()?;
            let value = self.finish_subst(frame)?;
            self.deliver(&value, Piece::Expansion)?;
            return Ok(None);
        }
        if stops_on_slash && c == '/' {
            self.pos += 1;
            let frame = self.top()?;
            let pattern = std::mem::take(&mut frame.buf);
            if let FrameKind::Subst { pattern: p, .. } = &mut frame.kind {
                *p = Some(pattern);
            }
            return Ok(None);
        }
        match c {
            '\'' => {
                self.pos += 1;
                let mut text = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return Err("unexpected end of statement while looking for \
                                        matching single-quote"
                                .into())
                        }
                        Some('\'') => {
                            self.pos += 1;
                            break;
                        }
                        Some(ch) => {
                            self.pos += 1;
                            text.push(ch);
                        }
                    }
                }
                self.deliver(&text, Piece::Quoted)?;
            }
            '"' => {
                self.pos += 1;
                self.stack.push(Frame::new(FrameKind::Double));
            }
            '$' => {
                self.pos += 1;
                self.dollar()?;
            }
            c if c == escape => {
                self.pos += 1;
                match self.peek() {
                    None if is_top => {}
                    None => return Err(MISSING_BRACE.into()),
                    Some(n) => {
                        self.pos += 1;
                        let frame = self.top()?;
                        if raw_escapes {
                            frame.buf.push(escape);
                        }
                        frame.buf.push(n);
                        if is_top {
                            self.words.add_raw_char(n);
                        }
                    }
                }
            }
            c => {
                self.pos += 1;
                self.top()?.buf.push(c);
                if is_top {
                    self.words.add_char(c);
                }
            }
        }
        Ok(None)
    }

    /// Handles what follows a `$` (already consumed): a value is delivered to the current
    /// frame, or a `${name<op>...}` frame is pushed.
    fn dollar(&mut self) -> Result<(), String> {
        if self.peek() != Some('{') {
            let name = self.name();
            let value = if name.is_empty() {
                "$".to_string()
            } else {
                self.vars.get_var(&name).unwrap_or_default().to_string()
            };
            return self.deliver(&value, Piece::Expansion);
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(MISSING_BRACE.into()),
            Some('{') | Some('}') | Some(':') => {
                return Err("syntax error: bad substitution".into())
            }
            Some(_) => {}
        }
        let name = self.name();
        let Some(op) = self.peek() else {
            return Err(MISSING_BRACE.into());
        };
        self.pos += 1;
        let modifier = match op {
            '}' => {
                let value = self.vars.get_var(&name).unwrap_or_default().to_string();
                return self.deliver(&value, Piece::Expansion);
            }
            ':' => {
                let m = self.peek();
                self.pos += 1;
                match m {
                    Some('-') => Modifier::Default { colon: true },
                    Some('+') => Modifier::Alternative { colon: true },
                    Some('?') => Modifier::Required { colon: true },
                    None => return Err(MISSING_BRACE.into()),
                    Some(m) => return Err(format!("unsupported modifier (:{m}) in substitution")),
                }
            }
            '-' => Modifier::Default { colon: false },
            '+' => Modifier::Alternative { colon: false },
            '?' => Modifier::Required { colon: false },
            '#' | '%' => {
                let greedy = self.peek() == Some(op);
                if greedy {
                    self.pos += 1;
                }
                if op == '#' {
                    Modifier::TrimPrefix { greedy }
                } else {
                    Modifier::TrimSuffix { greedy }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                Modifier::Replace { all }
            }
            other => return Err(format!("unsupported modifier ({other}) in substitution")),
        };
        self.stack.push(Frame::new(FrameKind::Subst {
            name,
            modifier,
            pattern: None,
        }));
        Ok(())
    }

    /// Reads a parameter name: digits (positional), one special character, or letters, digits
    /// and `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                name.push(c);
                return name;
            }
        }
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn finish_subst(&mut self, frame: Frame) -> Result<String, String> {
        let FrameKind::Subst {
            name,
            modifier,
            pattern,
        } = frame.kind
        else {
            return Err("internal error: expected a substitution frame".into());
        };
        let word = frame.buf;
        let value = self.vars.get_var(&name);
        let unset_or_null = |colon: bool| match value {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        Ok(match modifier {
            Modifier::Default { colon } => {
                if unset_or_null(colon) {
                    word
                } else {
                    value.unwrap_or_default().to_string()
                }
            }
            Modifier::Alternative { colon } => {
                if unset_or_null(colon) {
                    String::new()
                } else {
                    word
                }
            }
            Modifier::Required { colon } => match value {
                None => {
                    let msg = if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    };
                    return Err(format!("{name}: {msg}"));
                }
                Some("") if colon => {
                    let msg = if word.is_empty() {
                        "is not allowed to be empty"
                    } else {
                        &word
                    };
                    return Err(format!("{name}: {msg}"));
                }
                Some(v) => v.to_string(),
            },
            Modifier::TrimPrefix { greedy } => {
                let value = value.unwrap_or_default();
                let pat = glob::Pattern::new(&word, self.escape);
                trim_prefix(value, &pat, greedy)
            }
            Modifier::TrimSuffix { greedy } => {
                let value = value.unwrap_or_default();
                let pat = glob::Pattern::new(&word, self.escape);
                trim_suffix(value, &pat, greedy)
            }
            Modifier::Replace { all } => {
                let value = value.unwrap_or_default();
                let (pattern, replacement) = match pattern {
                    Some(p) => (p, word),
                    None => (word, String::new()),
                };
                let pat = glob::Pattern::new(&pattern, self.escape);
                replace(value, &pat, &replacement, all)?
            }
        })
    }
}

/// Most glob steps one `${v/p/r}` may take before giving up (keeps pathological input fast).
const REPLACE_BUDGET: usize = 20_000_000;

fn trim_prefix(value: &str, pat: &glob::Pattern, greedy: bool) -> String {
    // Lengths (in chars) of the prefixes that match, shortest first.
    let mut cut: Option<usize> = None;
    pat.prefix_matches(value.chars(), false, |n| {
        if cut.is_none() || greedy {
            cut = Some(n);
        }
        greedy
    });
    match cut {
        Some(n) => value.chars().skip(n).collect(),
        None => value.to_string(),
    }
}

fn trim_suffix(value: &str, pat: &glob::Pattern, greedy: bool) -> String {
    // Run the reversed pattern over the reversed value: suffix lengths that match.
    let mut cut: Option<usize> = None;
    pat.prefix_matches(value.chars().rev(), true, |n| {
        if cut.is_none() || greedy {
            cut = Some(n);
        }
        greedy
    });
    match cut {
        Some(n) => {
            let keep = value.chars().count() - n;
            value.chars().take(keep).collect()
        }
        None => value.to_string(),
    }
}

fn replace(
    value: &str,
    pat: &glob::Pattern,
    replacement: &str,
    all: bool,
) -> Result<String, String> {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut budget = REPLACE_BUDGET;
    let mut i = 0;
    let mut replaced = false;
    while i < chars.len() {
        let mut longest = None;
        if all || !replaced {
            let steps = pat.prefix_matches(chars[i..].iter().copied(), false, |n| {
                if n > 0 {
                    longest = Some(n);
                }
                true
            });
            budget = budget
                .checked_sub(steps.saturating_add(1).saturating_mul(pat.len().max(1)))
                .ok_or_else(|| {
                    "pattern substitution is too expensive for this value".to_string()
                })?;
        }
        match longest {
            Some(n) => {
                out.push_str(replacement);
                replaced = true;
                i += n;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Shell glob patterns for `${v#p}`, `${v%p}` and `${v/p/r}`: `*`, `?`, `[...]` and escapes.
/// Unlike .dockerignore patterns, `/` is an ordinary character here.
mod glob {
    #[derive(Debug, Clone)]
    enum Token {
        Lit(char),
        Any,
        One,
        Class {
            negated: bool,
            items: Vec<(char, char)>,
        },
    }

    #[derive(Debug, Clone)]
    pub(super) struct Pattern {
        tokens: Vec<Token>,
    }

    impl Pattern {
        pub(super) fn new(src: &str, escape: char) -> Pattern {
            let chars: Vec<char> = src.chars().collect();
            let mut tokens = Vec::new();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                i += 1;
                match c {
                    '*' => tokens.push(Token::Any),
                    '?' => tokens.push(Token::One),
                    '[' => match parse_class(&chars[i..], escape) {
                        Some((tok, used)) => {
                            tokens.push(tok);
                            i += used;
                        }
                        None => tokens.push(Token::Lit('[')),
                    },
                    c if c == escape => match chars.get(i) {
                        Some(&n) => {
                            tokens.push(Token::Lit(n));
                            i += 1;
                        }
                        None => tokens.push(Token::Lit(c)),
                    },
                    c => tokens.push(Token::Lit(c)),
                }
            }
            Pattern { tokens }
        }

        /// Number of tokens.
        pub(super) fn len(&self) -> usize {
            self.tokens.len()
        }

        /// Feeds `text` through the pattern (reversed when `reverse`: then it matches
        /// suffixes of the original text fed backwards) and calls `on_match(n)` each time the
        /// first `n` characters form a full match, shortest first. Stops when no match can
        /// follow or when `on_match` returns `false`; returns how many characters were read.
        /// O(len(text) * tokens), no recursion.
        pub(super) fn prefix_matches(
            &self,
            text: impl Iterator<Item = char>,
            reverse: bool,
            mut on_match: impl FnMut(usize) -> bool,
        ) -> usize {
            let tokens: Vec<&Token> = if reverse {
                self.tokens.iter().rev().collect()
            } else {
                self.tokens.iter().collect()
            };
            let m = tokens.len();
            let mut cur = vec![false; m + 1];
            let mut next = vec![false; m + 1];
            let close = |set: &mut Vec<bool>, mut p: usize| {
                while p <= m && !set[p] {
                    set[p] = true;
                    match tokens.get(p) {
                        Some(Token::Any) => p += 1,
                        _ => break,
                    }
                }
            };
            close(&mut cur, 0);
            if cur[m] && !on_match(0) {
                return 0;
            }
            let mut consumed = 0;
            for (n, c) in text.enumerate() {
                consumed = n + 1;
                next.iter_mut().for_each(|b| *b = false);
                let mut alive = false;
                for p in 0..m {
                    if !cur[p] {
                        continue;
                    }
                    match tokens[p] {
                        Token::Any => {
                            close(&mut next, p);
                            alive = true;
                        }
                        tok if single(tok, c) => {
                            close(&mut next, p + 1);
                            alive = true;
                        }
                        _ => {}
                    }
                }
                std::mem::swap(&mut cur, &mut next);
                if !alive || (cur[m] && !on_match(n + 1)) {
                    return consumed;
                }
            }
            consumed
        }
    }

    fn single(tok: &Token, c: char) -> bool {
        match tok {
            Token::Lit(l) => *l == c,
            Token::One => true,
            Token::Any => false,
            Token::Class { negated, items } => {
                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }

    /// Parses a class body after `[`; returns the token and the number of chars used.
    fn parse_class(chars: &[char], escape: char) -> Option<(Token, usize)> {
        let mut i = 0;
        let negated = matches!(chars.first(), Some('!') | Some('^'));
        if negated {
            i += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let mut c = *chars.get(i)?;
            i += 1;
            if c == ']' && !first {
                return Some((Token::Class { negated, items }, i));
            }
            first = false;
            if c == escape {
                c = *chars.get(i)?;
                i += 1;
            }
            if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
                let mut hi = *chars.get(i + 1)?;
                i += 2;
                if hi == escape {
                    hi = *chars.get(i)?;
                    i += 1;
                }
                items.push((c, hi));
            } else {
                items.push((c, c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("NULL", ""),
            ("sp", "a  b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn basic_forms() {
        let e = env();
        assert_eq!(expand_word("he$PWD", &e).unwrap(), "he/home");
        assert_eq!(expand_word("${XXX:-a${PWD}b}", &e).unwrap(), "a/homeb");
        assert_eq!(expand_word("${NULL-x}", &e).unwrap(), "");
        assert_eq!(expand_word("${NULL:-x}", &e).unwrap(), "x");
        assert_eq!(expand_word("${NULL+x}", &e).unwrap(), "x");
        assert_eq!(expand_word("${NULL:+x}", &e).unwrap(), "");
        assert!(expand_word("${XXX?}", &e).is_err());
        let err = expand_word("${XXX:?custom message}", &e).unwrap_err();
        assert!(err.message.contains("XXX: custom message"), "{err}");
        assert_eq!(expand_word("'$PWD'", &e).unwrap(), "$PWD");
        assert_eq!(expand_word(r#""a\"b""#, &e).unwrap(), "a\"b");
    }

    #[test]
    fn pattern_forms() {
        let mut e = env();
        e.insert("F".into(), "dir/sub/file.tar.gz".into());
        assert_eq!(expand_word("${F#*/}", &e).unwrap(), "sub/file.tar.gz");
        assert_eq!(expand_word("${F##*/}", &e).unwrap(), "file.tar.gz");
        assert_eq!(expand_word("${F%.*}", &e).unwrap(), "dir/sub/file.tar");
        assert_eq!(expand_word("${F%%.*}", &e).unwrap(), "dir/sub/file");
        assert_eq!(expand_word("${F/sub/x}", &e).unwrap(), "dir/x/file.tar.gz");
        assert_eq!(
            expand_word("${F//[a-z]/_}", &e).unwrap(),
            "___/___/____.___.__"
        );
        assert_eq!(
            expand_word("${F/#dir/D}", &e).unwrap(),
            "dir/sub/file.tar.gz"
        );
    }

    #[test]
    fn splitting() {
        let e = env();
        assert_eq!(
            expand_words("x $sp \"$sp\"", &e).unwrap(),
            vec!["x", "a", "b", "a  b"]
        );
        assert_eq!(expand_words("'' \"\"", &e).unwrap(), Vec::<String>::new());
        assert_eq!(expand_words(r"a\ b", &e).unwrap(), vec!["a b"]);
    }

    #[test]
    fn backtick_escape() {
        let sw = ShellWords::new('`');
        assert_eq!(
            sw.expand_word(r"C:\path`$PWD", &()).unwrap(),
            r"C:\path$PWD"
        );
    }

    #[test]
    fn long_values_trim_in_linear_time() {
        let mut e = env();
        e.insert("L".into(), "ab".repeat(50_000));
        assert_eq!(expand_word("${L%%b*}", &e).unwrap(), "a");
        assert_eq!(expand_word("${L##*a}", &e).unwrap(), "b");
        assert_eq!(expand_word("${L%b}", &e).unwrap().len(), 99_999);
        assert_eq!(expand_word("${L#a}", &e).unwrap().len(), 99_999);
        // Replacement either finishes or reports that it is too expensive; it never hangs.
        assert_eq!(expand_word("${L/a*/x}", &e).unwrap(), "x");
        assert_eq!(
            expand_word("${L//b*a/x}", &e).unwrap(),
            "ax".to_string() + "b"
        );
        assert!(expand_word("${L//*c/x}", &e).is_err());
    }

    #[test]
    fn deep_nesting_is_iterative() {
        let depth = 200_000;
        let mut s = String::new();
        for _ in 0..depth {
            s.push_str("${A:-");
        }
        s.push('x');
        for _ in 0..depth {
            s.push('}');
        }
        assert_eq!(expand_word(&s, &()).unwrap(), "x");
        // Unterminated at depth: an error, not a crash.
        assert!(expand_word(&s[..s.len() - 1], &()).is_err());
        let quotes = "\"${A:-".repeat(50_000);
        assert!(expand_word(&quotes, &()).is_err());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Single quotes keep everything literally.
            #[test]
            fn single_quotes_are_literal(s in "[^']*") {
                let word = format!("'{s}'");
                prop_assert_eq!(expand_word(&word, &()).unwrap(), s);
            }

            /// Escaping every character gives the text back, as one word.
            #[test]
            fn escapes_are_literal(s in ".+") {
                let word: String = s.chars().flat_map(|c| ['\\', c]).collect();
                prop_assert_eq!(expand_word(&word, &()).unwrap(), s.clone());
                prop_assert_eq!(expand_words(&word, &()).unwrap(), vec![s]);
            }

            /// Plain words separated by blanks split back into the same words.
            #[test]
            fn plain_words_split(words in prop::collection::vec("[a-z0-9_./-]{1,8}", 0..6)) {
                let line = words.join("  ");
                prop_assert_eq!(expand_words(&line, &()).unwrap(), words);
            }

            /// Expanding never panics, whatever the input and escape character.
            #[test]
            fn never_panics(s in "[ab$\\\\`{}:?+#%/\"' -]{0,40}") {
                let env: HashMap<String, String> =
                    [("a".to_string(), "x y".to_string())].into_iter().collect();
                for esc in ['\\', '`'] {
                    let _ = ShellWords::new(esc).expand_word(&s, &env);
                    let _ = ShellWords::new(esc).expand_words(&s, &env);
                }
            }
        }
    }
}
