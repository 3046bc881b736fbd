//! Dockerfile syntax: parser directives, comments, line continuation, heredocs, instruction
//! keywords, flags and arguments, each instruction with its line span.
//!
//! This layer follows BuildKit's parser: it does not judge instruction names or flags (that is
//! [`super::instructions`]), it only splits the text into instructions the way BuildKit does,
//! so that [`Node::dump`] prints BuildKit's parse tree notation byte for byte.

use super::error::{ErrorKind, ParseError};

/// Largest Dockerfile accepted (isula-build's limit for the Dockerfile and `.dockerignore`).
pub const MAX_DOCKERFILE_SIZE: usize = 1024 * 1024;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character: `\` or the one set by `# escape=`.
    pub escape: char,
    /// The `# syntax=` directive, if any (accepted and ignored by the builder).
    pub syntax: Option<String>,
    /// The `# check=` directive, if any (accepted and ignored).
    pub check: Option<String>,
    /// The instructions in file order.
    pub nodes: Vec<Node>,
    /// Non-fatal findings, such as empty continuation lines.
    pub warnings: Vec<String>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (`RUN`, `run`, ...).
    pub keyword: String,
    /// Flags as written, e.g. `--from=build`, in order; a bare `--` ending the flags is dropped.
    pub flags: Vec<String>,
    /// The arguments, split by the instruction's rules (see the module documentation of
    /// [`super::instructions`]): one string for shell form, one per element for JSON form,
    /// `key, value, separator` triples for ENV and LABEL.
    pub args: Vec<String>,
    /// Whether the arguments were given as a JSON array (exec form).
    pub json: bool,
    /// The trigger of an `ONBUILD`.
    pub sub: Option<Box<Node>>,
    /// Heredocs opened on this instruction's line, with their contents.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined) the instruction was parsed from.
    pub original: String,
    /// First line of the instruction (1-based).
    pub start_line: usize,
    /// Last line of the instruction, including continuation and heredoc lines.
    pub end_line: usize,
}

/// A here-document attached to `RUN`, `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The file descriptor number written before `<<` (`3<<EOF`), or 0.
    pub fd: u32,
    /// Whether variables in the content are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// Whether leading tabs were stripped (`<<-`).
    pub chomp: bool,
    /// The content, each line with its newline; leading tabs already removed when `chomp`.
    pub content: String,
}

impl Node {
    /// The keyword in lower case.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// The node in BuildKit's parse-tree notation, e.g. `(copy ["--from=a"] "x" "/y")`.
    pub fn dump(&self) -> String {
        let mut s = String::from("(");
        s.push_str(&self.dump_inner());
        s.push(')');
        s
    }

    fn dump_inner(&self) -> String {
        let mut s = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            s.push_str(" [");
            let quoted: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&quoted.join(" "));
            s.push(']');
        }
        if let Some(sub) = &self.sub {
            s.push(' ');
            s.push_str(&sub.dump());
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        s.trim().to_string()
    }

    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.sub, self.name().as_str()) {
            (Some(sub), "onbuild") => sub,
            _ => self,
        };
        matches!(node.name().as_str(), "run" | "copy" | "add") && !node.json
    }
}

impl Dockerfile {
    /// The whole file in BuildKit's parse-tree notation: one line per instruction, each ending
    /// with a newline.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push_str(&n.dump());
            out.push('\n');
        }
        out
    }
}

/// Quotes `s` the way Go's `strconv.Quote` does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if !is_go_printable(c) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint` for non-ASCII characters: control and format
/// characters, separators other than the ASCII space, and unassigned/private-use code points
/// are not printable.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if c.is_control() {
        return false;
    }
    !matches!(u,
        0xA0 | 0xAD | 0x1680 | 0x2000..=0x200F | 0x2028..=0x202F | 0x205F..=0x206F
        | 0x3000 | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xFFFE | 0xFFFF
        | 0xF0000..=0x10FFFF)
}

/// Go's `unicode.IsSpace`.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// The white space BuildKit splits keywords and simple arguments on: `[\t\v\f\r ]`.
fn is_token_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go's regexp `\s`: `[\t\n\f\r ]`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    trim_newline(line)
        .trim_start_matches(is_space)
        .starts_with('#')
}

struct Directives {
    escape: char,
    done: bool,
    syntax: Option<String>,
    check: Option<String>,
    seen_escape: bool,
}

impl Directives {
    /// Looks at a (left-trimmed) line for `# name=value` while directives are still allowed.
    fn possible(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = parse_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "escape" => {
                if self.seen_escape {
                    return Err("only one escape parser directive can be used".into());
                }
                self.seen_escape = true;
                match value {
                    "\\" => self.escape = '\\',
                    "`" => self.escape = '`',
                    other => {
                        return Err(format!(
                            "invalid escape token '{other}' does not match ` or \\"
                        ))
                    }
                }
            }
            "syntax" | "check" => {
                let slot = if name == "syntax" {
                    &mut self.syntax
                } else {
                    &mut self.check
                };
                if slot.is_some() {
                    return Err(format!("only one {name} parser directive can be used"));
                }
                *slot = Some(value.to_string());
            }
            _ => self.done = true,
        }
        Ok(())
    }

    /// Whether `line` ends with a line-continuation escape; returns the line without it.
    fn trim_continuation<'a>(&self, line: &'a str) -> (&'a str, bool) {
        let body = line.trim_end_matches([' ', '\t']);
        let Some(before) = body.strip_suffix(self.escape) else {
            return (line, true);
        };
        if before.is_empty() {
            return ("", false);
        }
        if before.ends_with(self.escape) {
            return (line, true);
        }
        (before, false)
    }
}

/// Matches `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn parse_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_re_space);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest
        .trim_start_matches(is_re_space)
        .strip_prefix('=')?
        .trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// Parses a Dockerfile into instructions with line spans.
///
/// Fails on input over [`MAX_DOCKERFILE_SIZE`], a file without instructions, bad directives,
/// `ENV`/`LABEL` syntax errors, JSON arrays holding non-strings and unterminated heredocs.
/// Instruction names and flags are judged later, by [`super::instructions::parse_instructions`].
pub fn parse_dockerfile(text: &str) -> Result<Dockerfile, ParseError> {
    if text.len() > MAX_DOCKERFILE_SIZE {
        return Err(ParseError::bare(ErrorKind::TooLarge {
            what: "Dockerfile",
            size: text.len(),
            limit: MAX_DOCKERFILE_SIZE,
        }));
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut d = Directives {
        escape: '\\',
        done: false,
        syntax: None,
        check: None,
        seen_escape: false,
    };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut idx = 0usize; // next line to read; also the count of lines read so far
    while idx < lines.len() {
        let mut raw = lines[idx];
        if idx == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        idx += 1;
        let token = trim_newline(raw).trim_start_matches(is_space);
        d.possible(token)
            .map_err(|m| ParseError::new(idx, "", ErrorKind::Directive(m)))?;
        let token = if token.starts_with('#') { "" } else { token };
        let start_line = idx;
        let (first, mut end_of_line) = d.trim_continuation(token);
        if end_of_line && first.is_empty() {
            continue;
        }
        let mut line = String::from(first);
        let mut empty_continuation = false;
        while !end_of_line && idx < lines.len() {
            let raw = lines[idx];
            idx += 1;
            let token = trim_newline(raw);
            d.possible(token)
                .map_err(|m| ParseError::new(idx, "", ErrorKind::Directive(m)))?;
            if is_comment(raw) {
                continue;
            }
            if token.trim_start_matches(is_space).is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, eol) = d.trim_continuation(token);
            end_of_line = eol;
            line.push_str(part);
        }
        if empty_continuation {
            warnings.push(format!(
                "Dockerfile:{start_line}: empty continuation line found in: {line}"
            ));
        }
        let mut node = node_from_line(&line, d.escape)
            .map_err(|(kw, kind)| ParseError::new(start_line, kw, kind))?;
        if node.can_contain_heredoc() {
            for mut doc in heredocs_from_line(&line) {
                let mut terminated = false;
                while idx < lines.len() {
                    let raw = lines[idx];
                    idx += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    if doc.chomp {
                        doc.content.push_str(raw.trim_start_matches('\t'));
                    } else {
                        doc.content.push_str(raw);
                    }
                }
                if !terminated {
                    return Err(ParseError::new(
                        start_line,
                        node.keyword.clone(),
                        ErrorKind::UnterminatedHeredoc(doc.name),
                    ));
                }
                node.heredocs.push(doc);
            }
        }
        node.start_line = start_line;
        node.end_line = idx;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(ParseError::new(idx, "", ErrorKind::NoInstructions));
    }
    Ok(Dockerfile {
        escape: d.escape,
        syntax: d.syntax,
        check: d.check,
        nodes,
        warnings,
    })
}

type NodeError = (String, ErrorKind);

/// Splits a logical line into keyword, flags and arguments.
fn node_from_line(line: &str, escape: char) -> Result<Node, NodeError> {
    let trimmed = line.trim_matches(is_space);
    let (keyword, rest) = match trimmed.find(is_token_space) {
        Some(i) => (
            &trimmed[..i],
            trimmed[i..].trim_start_matches(is_token_space),
        ),
        None => (trimmed, ""),
    };
    let (rest, flags) = extract_flags(rest);
    let rest = rest.trim_matches(is_space);
    let mut node = Node {
        keyword: keyword.to_string(),
        flags,
        args: Vec::new(),
        json: false,
        sub: None,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
    };
    let err = |m: String| (keyword.to_string(), ErrorKind::Syntax(m));
    match node.name().as_str() {
        "add" | "copy" | "volume" => {
            if let Some(list) = parse_json(rest).map_err(err)? {
                node.args = list;
                node.json = true;
            } else {
                node.args = split_token_space(rest);
            }
        }
        "cmd" | "entrypoint" | "run" | "shell" => {
            let (args, json) = parse_maybe_json(rest).map_err(err)?;
            node.args = args;
            node.json = json;
        }
        "arg" => node.args = parse_words(rest, escape),
        "env" | "label" => node.args = parse_name_val(rest, &node.keyword, escape).map_err(err)?,
        "expose" | "from" => node.args = split_token_space(rest),
        "healthcheck" => {
            let sep = rest.find(is_space).unwrap_or(rest.len());
            if sep > 0 {
                let typ = &rest[..sep];
                let cmd = rest[sep..].trim_start_matches(is_space);
                let (args, json) = parse_maybe_json(cmd).map_err(err)?;
                node.args.push(typ.to_string());
                node.args.extend(args);
                node.json = json;
            }
        }
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args.push(rest.to_string());
        }
        "onbuild" if !rest.is_empty() => {
            let sub_keyword = rest.split(is_token_space).next().unwrap_or_default();
            if sub_keyword.eq_ignore_ascii_case("onbuild") {
                // Rejected here, before recursing, so `ONBUILD ONBUILD ...` cannot nest deeply.
                return Err(err(
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()
                ));
            }
            let sub = node_from_line(rest, escape)?;
            node.sub = Some(Box::new(sub));
        }
        _ => {}
    }
    Ok(node)
}

fn split_token_space(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_token_space)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Pulls leading `--flag[=value]` words off `line`; returns the rest and the flags.
fn extract_flags(line: &str) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut iter = line.char_indices().peekable();
    while let Some((pos, ch)) = iter.next() {
        match phase {
            Phase::Spaces => {
                if is_space(ch) {
                    continue;
                }
                let next_is_dash = iter.peek().map(|&(_, c)| c) == Some('-');
                if ch != '-' || !next_is_dash {
                    return (&line[pos..], flags);
                }
                phase = Phase::Word;
                word.push(ch);
            }
            Phase::Word => {
                if is_space(ch) {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (&line[pos..], flags);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    continue;
                }
                if ch == '\\' {
                    match iter.next() {
                        Some((_, n)) => word.push(n),
                        None => continue,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                    continue;
                }
                if ch == '\\' {
                    match iter.next() {
                        Some((_, n)) => word.push(n),
                        None => phase = Phase::Word,
                    }
                    continue;
                }
                word.push(ch);
            }
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push(word);
    }
    ("", flags)
}

/// Splits on white space, keeping quotes and escapes in the words (they are removed later, at
/// expansion time).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if phase == Phase::Spaces {
            if is_space(ch) {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if is_space(ch) {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                if ch == escape && q != '\'' {
                    if i + 1 == chars.len() {
                        phase = Phase::Word;
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(ch);
            }
            Phase::Spaces => {}
        }
        i += 1;
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `key value` (old form) or `key=value ...`; gives key, value, separator
/// triples.
fn parse_name_val(rest: &str, keyword: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, is_token_space);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().map(|v| v.trim_start_matches(is_token_space));
        return match value {
            Some(v) if !v.is_empty() => Ok(vec![key.to_string(), v.to_string(), String::new()]),
            _ => Err(format!(
                "{} must have two arguments",
                keyword.to_uppercase()
            )),
        };
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
            ));
        };
        out.push(k.to_string());
        out.push(v.to_string());
        out.push("=".to_string());
    }
    Ok(out)
}

/// Parses a JSON array of strings. `Ok(None)`: not JSON (use shell form); `Err`: a JSON array
/// holding something other than strings.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start_matches(is_space);
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let value = match stream.next() {
        Some(Ok(v)) => v,
        _ => return Ok(None),
    };
    let serde_json::Value::Array(items) = value else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            serde_json::Value::String(s) => out.push(s),
            _ => {
                return Err(
                    "when using JSON array syntax, arrays must be comprised of strings only".into(),
                )
            }
        }
    }
    Ok(Some(out))
}

fn parse_maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest)? {
        Some(list) => Ok((list, true)),
        None => Ok((vec![rest.to_string()], false)),
    }
}

/// Finds `<<EOF`-style words on an instruction line (BuildKit's rules: `[fd]<<[-]word`, the
/// word must be a single shell word; quoting any part of it turns expansion off).
fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let Some(words) = raw_words(line) else {
        return Vec::new();
    };
    words.iter().filter_map(|w| heredoc_from_word(w)).collect()
}

/// Splits on unquoted white space keeping quotes and escapes; `None` on an unterminated quote.
fn raw_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                word.push(c);
                loop {
                    let n = chars.next()?;
                    word.push(n);
                    if n == c {
                        break;
                    }
                    if c == '"' && n == '\\' {
                        word.push(chars.next()?);
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word && !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    Some(words)
}

fn heredoc_from_word(word: &str) -> Option<Heredoc> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (fd, rest) = word.split_at(digits);
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let fd = if fd.is_empty() { 0 } else { fd.parse().ok()? };
    let (name, quoted) = unquote_single_word(rest)?;
    Some(Heredoc {
        name,
        fd,
        expand: !quoted,
        chomp,
        content: String::new(),
    })
}

/// Removes quotes and escapes from a heredoc delimiter; `None` unless it is exactly one
/// non-empty word. The flag tells whether quotes were used.
fn unquote_single_word(s: &str) -> Option<(String, bool)> {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        n => out.push(n),
                    }
                }
            }
            '"' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => {
                            let n = chars.next()?;
                            if !matches!(n, '"' | '$' | '\\') {
                                out.push('\\');
                            }
                            out.push(n);
                        }
                        n => out.push(n),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c if c.is_whitespace() => return None,
            c => out.push(c),
        }
    }
    if out.is_empty() {
        None
    } else {
        Some((out, quoted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(text: &str) -> String {
        parse_dockerfile(text).unwrap().dump()
    }

    #[test]
    fn directives_and_continuations() {
        let df = parse_dockerfile("# escape=`\n# syntax=x/y\nFROM a\nRUN b `\n  c\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.syntax.as_deref(), Some("x/y"));
        assert_eq!(df.dump(), "(from \"a\")\n(run \"b   c\")\n");
        assert_eq!((df.nodes[1].start_line, df.nodes[1].end_line), (4, 5));
        // A directive after a comment is a comment.
        let df = parse_dockerfile("# hi\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(df.escape, '\\');
        // Repeated and invalid directives.
        assert!(parse_dockerfile("# escape=`\n# escape=`\nFROM a").is_err());
        let e = parse_dockerfile("# escape=x\nFROM a").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn flags_and_json() {
        assert_eq!(
            dump("COPY --from=a --chown=\"u g\" -- x y\n"),
            "(copy [\"--from=a\" \"--chown=u g\"] \"x\" \"y\")\n"
        );
        assert_eq!(dump("CMD [\"a\", \"b\"] \n"), "(cmd \"a\" \"b\")\n");
        assert_eq!(dump("CMD ['a']\n"), "(cmd \"['a']\")\n");
        assert!(parse_dockerfile("CMD [1]\n").is_err());
        assert_eq!(dump("ONBUILD RUN [\"x\"]\n"), "(onbuild (run \"x\"))\n");
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            dump("ENV a=1 b=\"2 3\"\nENV c d e\n"),
            "(env \"a\" \"1\" \"=\" \"b\" \"\\\"2 3\\\"\" \"=\")\n(env \"c\" \"d e\" \"\")\n"
        );
        let e = parse_dockerfile("FROM a\nENV x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            e.to_string(),
            "Dockerfile:2: ENV: ENV must have two arguments"
        );
        assert!(parse_dockerfile("ENV a=b c\n").is_err());
    }

    #[test]
    fn heredocs() {
        let text = "FROM a\nRUN <<EOF cat <<-'END' >x\necho $HOME\nEOF\n\t\tkeep\n\tEND\nRUN ok\n";
        let df = parse_dockerfile(text).unwrap();
        let run = &df.nodes[1];
        assert_eq!(run.heredocs.len(), 2);
        assert_eq!(run.heredocs[0].name, "EOF");
        assert!(run.heredocs[0].expand);
        assert_eq!(run.heredocs[0].content, "echo $HOME\n");
        assert_eq!(run.heredocs[1].name, "END");
        assert!(!run.heredocs[1].expand && run.heredocs[1].chomp);
        assert_eq!(run.heredocs[1].content, "keep\n");
        assert_eq!((run.start_line, run.end_line), (2, 6));
        assert_eq!(df.nodes[2].start_line, 7);
        let h = parse_dockerfile("RUN echo a<<b 2<<c\nc\n").unwrap();
        assert_eq!(h.nodes[0].heredocs.len(), 1);
        assert_eq!(h.nodes[0].heredocs[0].fd, 2);
        let e = parse_dockerfile("FROM a\nCOPY <<EOF /x\nabc\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(matches!(e.kind, ErrorKind::UnterminatedHeredoc(_)));
        // JSON form never has heredocs.
        let j = parse_dockerfile("RUN [\"<<EOF\"]\n").unwrap();
        assert!(j.nodes[0].heredocs.is_empty());
    }

    #[test]
    fn limits_and_empty() {
        assert!(matches!(
            parse_dockerfile("").unwrap_err().kind,
            ErrorKind::NoInstructions
        ));
        let big = "#".repeat(MAX_DOCKERFILE_SIZE + 1);
        assert!(matches!(
            parse_dockerfile(&big).unwrap_err().kind,
            ErrorKind::TooLarge { .. }
        ));
    }

    #[test]
    fn long_continuation_is_linear() {
        let mut text = String::from("FROM a\nRUN x \\\n");
        for _ in 0..100_000 {
            text.push_str("y\\\n");
        }
        text.push_str("z\n");
        let df = parse_dockerfile(&text).unwrap();
        assert_eq!(df.nodes.len(), 2);
        assert_eq!(df.nodes[1].end_line, 100_003);
        assert_eq!(df.nodes[1].args[0].len(), 2 + 100_000 + 1);
    }

    #[test]
    fn nested_onbuild_is_rejected_without_recursion() {
        let text = format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(100_000));
        let e = parse_dockerfile(&text).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("ONBUILD ONBUILD"), "{e}");
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(
            go_quote("a\"b\\\u{0}\u{7f}♥\u{a0}"),
            "\"a\\\"b\\\\\\x00\\x7f♥\\u00a0\""
        );
    }
}
