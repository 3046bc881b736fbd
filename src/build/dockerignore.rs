//! `.dockerignore` reading and matching with Docker's semantics (moby/patternmatcher), which
//! differ from gitignore's:
//!
//! * patterns are anchored at the context root (`foo` matches `foo`, not `a/foo`);
//! * `*` and `?` never cross `/`; `**` matches any number of whole directories, even none;
//!   `[...]` classes work as in Go's `filepath.Match`, with `\` as escape;
//! * a pattern matching a directory excludes everything below it;
//! * patterns apply in order, the last match wins, `!pattern` re-includes;
//! * the context root `.` is never excluded.
//!
//! Matching is an NFA simulation over the pattern's tokens: linear in the path length times the
//! pattern length, with no backtracking blow-up and no recursion.

/// Largest `.dockerignore` accepted (isula-build's limit).
pub const MAX_DOCKERIGNORE_SIZE: usize = 1024 * 1024;

/// Why a `.dockerignore` or pattern list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// The file is larger than [`MAX_DOCKERIGNORE_SIZE`].
    #[error(".dockerignore is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        /// Size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A pattern is just `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    /// A pattern is malformed (bad character class, trailing escape, ...).
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern, after cleaning.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads a `.dockerignore` the way Docker does: strips a UTF-8 BOM, drops lines starting with
/// `#` and blank lines, trims white space, and for each pattern (after an optional `!` and the
/// spaces following it) cleans the path and removes a leading `/`.
pub fn read_dockerignore(text: &str) -> Result<Vec<String>, IgnoreError> {
    if text.len() > MAX_DOCKERIGNORE_SIZE {
        return Err(IgnoreError::TooLarge {
            size: text.len(),
            limit: MAX_DOCKERIGNORE_SIZE,
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push(cleaned);
    }
    Ok(out)
}

/// Go's `path.Clean`: removes `.` elements, resolves `..` lexically, collapses slashes and
/// drops a trailing slash; the empty path becomes `.`.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `*`: any run of characters except `/`.
    Star,
    /// `?`: one character except `/`.
    One,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: any run of whole directories, `(.*/)?`.
    AnyDirs,
    /// `**` at the end: anything, `.*`.
    AnyRest,
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    tokens: Vec<Token>,
}

impl Pattern {
    /// The cleaned pattern text, without the leading `!`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception (re-includes what it matches).
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn compile(raw: &str) -> Result<Option<Pattern>, IgnoreError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let mut text = clean_path(trimmed);
        let exclusion = text.starts_with('!');
        if exclusion {
            if text.len() == 1 {
                return Err(IgnoreError::LoneExclamation);
            }
            text.remove(0);
        }
        let bad = |reason: &str| IgnoreError::BadPattern {
            pattern: text.clone(),
            reason: reason.to_string(),
        };
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    tokens.push(if i >= chars.len() {
                        Token::AnyRest
                    } else {
                        Token::AnyDirs
                    });
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::One),
                '\\' => match chars.get(i) {
                    Some(&n) => {
                        tokens.push(Token::Lit(n));
                        i += 1;
                    }
                    None => return Err(bad("trailing escape character")),
                },
                '[' => {
                    let (tok, used) = parse_class(&chars[i..]).map_err(|r| bad(&r))?;
                    tokens.push(tok);
                    i += used;
                }
                c => tokens.push(Token::Lit(c)),
            }
        }
        Ok(Some(Pattern {
            text,
            exclusion,
            tokens,
        }))
    }

    /// Runs the automaton over `path`. With `parents`, stops early with `true` when a prefix
    /// ending just before a `/` (a parent directory) is matched. Returns that flag and the
    /// final live state set.
    fn scan(&self, path: &str, parents: bool) -> (bool, States) {
        let n = self.tokens.len();
        let mut cur = States::new(n);
        let mut next = States::new(n);
        cur.add(&self.tokens, 0, false);
        for c in path.chars() {
            if parents && c == '/' && cur.accepts() {
                return (true, cur);
            }
            if cur.is_empty() {
                break;
            }
            next.clear();
            for p in 0..n {
                if cur.normal[p] {
                    match &self.tokens[p] {
                        Token::Lit(l) if *l == c => next.add(&self.tokens, p + 1, false),
                        Token::One if c != '/' => next.add(&self.tokens, p + 1, false),
                        Token::Class { negated, ranges }
                            if ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated =>
                        {
                            next.add(&self.tokens, p + 1, false)
                        }
                        Token::Star if c != '/' => next.add(&self.tokens, p, false),
                        Token::AnyRest => next.add(&self.tokens, p, false),
                        Token::AnyDirs => {
                            next.add(&self.tokens, p, true);
                            if c == '/' {
                                next.add(&self.tokens, p + 1, false);
                            }
                        }
                        _ => {}
                    }
                }
                if cur.in_dirs[p] {
                    next.add(&self.tokens, p, true);
                    if c == '/' {
                        next.add(&self.tokens, p + 1, false);
                    }
                }
            }
            std::mem::swap(&mut cur, &mut next);
        }
        (false, cur)
    }

    /// Whether the pattern matches the whole of `path`.
    pub fn matches(&self, path: &str) -> bool {
        self.scan(path, false).1.accepts()
    }

    /// Whether the pattern could match some path strictly below directory `dir`.
    fn may_match_below(&self, dir: &str) -> bool {
        let mut probe = String::with_capacity(dir.len() + 1);
        probe.push_str(dir);
        probe.push('/');
        self.scan(&probe, false).1.alive_before_end()
    }
}

/// NFA state set: `normal[p]` = at token p; `in_dirs[p]` = inside token p's `(.*/)?` after
/// consuming at least one character (needs a `/` to leave). Index `n` is the accepting state.
struct States {
    normal: Vec<bool>,
    in_dirs: Vec<bool>,
    any: bool,
}

impl States {
    fn new(n: usize) -> Self {
        States {
            normal: vec![false; n + 1],
            in_dirs: vec![false; n + 1],
            any: false,
        }
    }

    fn clear(&mut self) {
        self.normal.iter_mut().for_each(|b| *b = false);
        self.in_dirs.iter_mut().for_each(|b| *b = false);
        self.any = false;
    }

    fn is_empty(&self) -> bool {
        !self.any
    }

    /// Adds state `p` and everything reachable from it without consuming input.
    fn add(&mut self, tokens: &[Token], mut p: usize, in_dirs: bool) {
        if in_dirs {
            if !self.in_dirs[p] {
                self.in_dirs[p] = true;
                self.any = true;
            }
            return;
        }
        while !self.normal[p] {
            self.normal[p] = true;
            self.any = true;
            match tokens.get(p) {
                Some(Token::Star) | Some(Token::AnyRest) | Some(Token::AnyDirs) => p += 1,
                _ => break,
            }
        }
    }

    fn accepts(&self) -> bool {
        self.normal.last().copied().unwrap_or(false)
    }

    fn alive_before_end(&self) -> bool {
        let n = self.normal.len() - 1;
        self.normal[..n].iter().any(|&b| b) || self.in_dirs.iter().any(|&b| b)
    }
}

/// Parses a class body after `[` with Go `filepath.Match` rules; returns the token and the
/// number of characters used (including the closing `]`).
fn parse_class(chars: &[char]) -> Result<(Token, usize), String> {
    let mut i = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let lo = class_char(chars, &mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = class_char(chars, &mut i)?;
        }
        if lo > hi {
            return Err(format!("invalid character class range {lo}-{hi}"));
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, String> {
    let mut c = match chars.get(*i) {
        None => return Err("unterminated character class".into()),
        Some('-') | Some(']') => return Err("unexpected '-' or ']' in character class".into()),
        Some(&c) => c,
    };
    *i += 1;
    if c == '\\' {
        c = *chars
            .get(*i)
            .ok_or_else(|| "unterminated character class".to_string())?;
        *i += 1;
    }
    if *i >= chars.len() {
        return Err("unterminated character class".into());
    }
    Ok(c)
}

/// Whether Go's `filepath.Dir` split of `path` equals its `/`-prefixes: no `.`/`..` segments and
/// no empty segments except a leading or trailing one.
fn parents_are_prefixes(path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').collect();
    let last = segs.len() - 1;
    segs.iter().enumerate().all(|(i, s)| match *s {
        "." | ".." => false,
        "" => i == 0 || i == last,
        _ => true,
    })
}

/// Go's `filepath.Dir`.
fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean_path(&path[..=i]),
        None => ".".to_string(),
    }
}

/// Whether the Dockerfile and `.dockerignore` are visible to `COPY`/`ADD`.
///
/// Docker always sends both files to the builder, even when `.dockerignore` excludes them, so
/// the build driver must read them regardless of the patterns. They are then removed from the
/// context that `COPY`/`ADD` see only when the patterns exclude them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildFiles {
    /// The Dockerfile is excluded from `COPY`/`ADD` (it is still read to build).
    pub dockerfile_excluded: bool,
    /// `.dockerignore` is excluded from `COPY`/`ADD` (it is still read for the patterns).
    pub dockerignore_excluded: bool,
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl IgnoreMatcher {
    /// Compiles patterns as given (each is trimmed and path-cleaned; empty ones are dropped; a
    /// leading `!` marks an exception).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, IgnoreError> {
        let mut out = Vec::with_capacity(patterns.len());
        for p in patterns {
            if let Some(p) = Pattern::compile(p.as_ref())? {
                out.push(p);
            }
        }
        let exclusions = out.iter().any(|p| p.exclusion);
        Ok(IgnoreMatcher {
            patterns: out,
            exclusions,
        })
    }

    /// Reads and compiles the text of a `.dockerignore` (see [`read_dockerignore`]).
    pub fn from_dockerignore(text: &str) -> Result<Self, IgnoreError> {
        IgnoreMatcher::new(&read_dockerignore(text)?)
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `rel_path` (slash-separated, relative to the context root) is excluded from the
    /// context: the last pattern matching the path or one of its parent directories decides.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        if rel_path == "." || rel_path.is_empty() {
            return false;
        }
        // For an already clean path the parent directories are exactly the prefixes that end
        // before each `/`, so one pass per pattern checks the path and all its parents.
        let fast = parents_are_prefixes(rel_path);
        let parents: Vec<String> = if fast {
            Vec::new()
        } else {
            let parent = go_dir(rel_path);
            if parent == "." {
                Vec::new()
            } else {
                let mut ends: Vec<usize> = parent.match_indices('/').map(|(i, _)| i).collect();
                ends.push(parent.len());
                ends.into_iter().map(|e| parent[..e].to_string()).collect()
            }
        };
        let mut excluded = false;
        for p in &self.patterns {
            if p.exclusion != excluded {
                continue;
            }
            let hit = if fast {
                let (parent_hit, end) = p.scan(rel_path, true);
                parent_hit || end.accepts()
            } else {
                p.matches(rel_path) || parents.iter().any(|d| p.matches(d))
            };
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether the subtree below directory `dir` may hold a file that is not excluded. A context
    /// walker can skip an excluded directory when this is `false`: it is `true` for every
    /// directory that is not itself excluded, and for an excluded one only when some `!`
    /// exception could match a path below it.
    pub fn may_include_below(&self, dir: &str) -> bool {
        if !self.is_excluded(dir) {
            return true;
        }
        let dir = dir.trim_end_matches('/');
        self.patterns
            .iter()
            .any(|p| p.exclusion && p.may_match_below(dir))
    }

    /// How the Dockerfile (at `dockerfile`, relative to the context) and `.dockerignore` are
    /// treated (see [`BuildFiles`]).
    pub fn build_files(&self, dockerfile: &str) -> BuildFiles {
        BuildFiles {
            dockerfile_excluded: self.is_excluded(&clean_path(dockerfile)),
            dockerignore_excluded: self.is_excluded(".dockerignore"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &[&str]) -> IgnoreMatcher {
        IgnoreMatcher::new(p).unwrap()
    }

    #[test]
    fn clean_like_go() {
        for (i, o) in [
            ("", "."),
            ("a/./b/", "a/b"),
            ("/../a", "/a"),
            ("../a/..", ".."),
            ("a//b", "a/b"),
            ("/", "/"),
            ("!./x", "!./x"),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }

    #[test]
    fn order_and_parents() {
        assert!(!m(&["*.go", "!keep.go"]).is_excluded("keep.go"));
        assert!(m(&["!keep.go", "*.go"]).is_excluded("keep.go"));
        assert!(m(&["docs"]).is_excluded("docs/a/b.md"));
        assert!(!m(&["docs"]).is_excluded("x/docs"));
        assert!(m(&["**/docs"]).is_excluded("x/docs/y"));
        assert!(!m(&["**"]).is_excluded("."));
    }

    #[test]
    fn pruning() {
        let pm = m(&["vendor", "!vendor/keep/**"]);
        assert!(pm.may_include_below("vendor"));
        assert!(pm.may_include_below("vendor/keep"));
        assert!(!pm.may_include_below("vendor/other"));
        let pm = m(&["build", "!**/*.go"]);
        assert!(pm.may_include_below("build/x"));
        let pm = m(&["build", "!src/*.go"]);
        assert!(!pm.may_include_below("build"));
        assert!(m(&["a"]).may_include_below("b"));
    }

    #[test]
    fn build_files_rules() {
        let pm = IgnoreMatcher::from_dockerignore("Dockerfile\n.dockerignore\n").unwrap();
        let bf = pm.build_files("./Dockerfile");
        assert!(bf.dockerfile_excluded && bf.dockerignore_excluded);
        let bf = m(&["*.md"]).build_files("sub/Containerfile");
        assert!(!bf.dockerfile_excluded && !bf.dockerignore_excluded);
    }

    #[test]
    fn errors_and_limits() {
        assert_eq!(
            IgnoreMatcher::new(&["!"]),
            Err(IgnoreError::LoneExclamation)
        );
        assert!(IgnoreMatcher::new(&["a[z-a]"]).is_err());
        assert!(IgnoreMatcher::new(&["a\\"]).is_err());
        let big = "a\n".repeat(MAX_DOCKERIGNORE_SIZE / 2 + 1);
        assert!(matches!(
            IgnoreMatcher::from_dockerignore(&big),
            Err(IgnoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn unclean_paths_use_go_parents() {
        // `./a/b`: Go's Dir gives `a` as the only parent... of the cleaned parent path.
        assert!(m(&["a"]).is_excluded("./a/b"));
        assert!(m(&["a"]).is_excluded("a//b"));
        assert!(m(&["dir"]).is_excluded("dir/file/"));
        assert!(m(&["/any"]).is_excluded("/any/path"));
    }

    #[test]
    fn long_paths_are_linear() {
        let pm = m(&["**/a*b*c*d*e*f*g", "!**/**/**/z"]);
        let path = "a".repeat(100_000);
        assert!(!pm.is_excluded(&path));
        let deep = "d/".repeat(20_000) + "z";
        assert!(!pm.is_excluded(&deep));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("a".to_string()),
                Just("b".to_string()),
                Just("ab".to_string()),
                Just("*".to_string()),
                Just("?".to_string()),
                Just("**".to_string()),
                Just("a*".to_string()),
                Just("[ab]".to_string()),
            ]
        }

        fn pattern() -> impl Strategy<Value = String> {
            (any::<bool>(), prop::collection::vec(segment(), 1..4))
                .prop_map(|(neg, segs)| format!("{}{}", if neg { "!" } else { "" }, segs.join("/")))
        }

        fn path() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![Just("a"), Just("b"), Just("ab"), Just("c")],
                1..5,
            )
            .prop_map(|v| v.join("/"))
        }

        proptest! {
            /// Pruning is sound: when a walker may skip `dir`, everything below it is excluded.
            #[test]
            fn pruning_never_hides_included_files(
                patterns in prop::collection::vec(pattern(), 0..5),
                dir in path(),
                rest in path(),
            ) {
                let m = IgnoreMatcher::new(&patterns).unwrap();
                if !m.may_include_below(&dir) {
                    let below = format!("{dir}/{rest}");
                    prop_assert!(m.is_excluded(&below), "{patterns:?} {below}");
                }
            }

            /// A literal pattern excludes the path itself and everything below it.
            #[test]
            fn literal_pattern_excludes_its_subtree(p in path(), rest in path()) {
                let m = IgnoreMatcher::new(std::slice::from_ref(&p)).unwrap();
                prop_assert!(m.is_excluded(&p));
                let below = format!("{p}/{rest}");
                prop_assert!(m.is_excluded(&below));
            }

            /// The fast single-pass parent check agrees with checking each parent separately.
            #[test]
            fn one_pass_parent_check_matches_per_parent_check(
                patterns in prop::collection::vec(pattern(), 1..4),
                p in path(),
            ) {
                let m = IgnoreMatcher::new(&patterns).unwrap();
                let mut expected = false;
                let parents: Vec<&str> = p
                    .match_indices('/')
                    .map(|(i, _)| &p[..i])
                    .collect();
                for pat in m.patterns() {
                    let hit = pat.matches(&p) || parents.iter().any(|d| pat.matches(d));
                    if hit {
                        expected = !pat.is_exclusion();
                    }
                }
                prop_assert_eq!(m.is_excluded(&p), expected);
            }
        }
    }
}
