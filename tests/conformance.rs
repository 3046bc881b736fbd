//! Runs the Dockerfile front end against the conformance corpora in `../shared/conformance/`
//! (or `$ISULA_CONFORMANCE_DIR`): BuildKit's parser test files, BuildKit's shell-word tables and
//! moby/patternmatcher's vectors. Prints `<corpus>: N/M passed (K skipped)` per corpus and
//! fails unless every applicable case passes. When the folder is absent it says so and passes.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use isula_build::build::dockerignore::{read_dockerignore, IgnoreMatcher};
use isula_build::build::{expand_word, expand_words, parse_dockerfile};

#[derive(Default)]
struct Tally {
    passed: usize,
    total: usize,
    skipped: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.total += 1;
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(what());
        }
    }

    fn report(&self, name: &str) {
        println!(
            "{name}: {}/{} passed ({} skipped)",
            self.passed, self.total, self.skipped
        );
        for f in &self.failures {
            println!("  FAIL {f}");
        }
    }
}

/// The corpus folder: `$ISULA_CONFORMANCE_DIR` (which must exist when set), else
/// `../shared/conformance` next to the crate (skipped when absent).
fn corpus_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ISULA_CONFORMANCE_DIR") {
        let dir = PathBuf::from(d);
        assert!(
            dir.is_dir(),
            "ISULA_CONFORMANCE_DIR={} is not a directory",
            dir.display()
        );
        return Some(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    dir.is_dir().then_some(dir)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn parser_positive(root: &Path) -> Tally {
    let mut t = Tally::default();
    for case in sorted_dirs(&root.join("buildkit-parser/testfiles")) {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let text = read(&case.join("Dockerfile"));
        let expected = read(&case.join("result")).replace("\r\n", "\n");
        match parse_dockerfile(&text) {
            Ok(df) => {
                let got = df.dump();
                t.check(got == expected, || {
                    format!("{name}: tree differs\n--- expected\n{expected}--- got\n{got}")
                });
            }
            Err(e) => t.check(false, || format!("{name}: unexpected error: {e}")),
        }
    }
    t
}

fn parser_negative(root: &Path) -> Tally {
    let mut t = Tally::default();
    for case in sorted_dirs(&root.join("buildkit-parser/testfiles-negative")) {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let text = read(&case.join("Dockerfile"));
        let res = parse_dockerfile(&text);
        t.check(res.is_err(), || format!("{name}: parsed but must fail"));
    }
    t
}

fn parser_lines(root: &Path) -> Tally {
    let mut t = Tally::default();
    let text = read(&root.join("buildkit-parser/testfile-line/Dockerfile"));
    match parse_dockerfile(&text) {
        Ok(df) => {
            let spans: Vec<(usize, usize)> = df
                .nodes
                .iter()
                .map(|n| (n.start_line, n.end_line))
                .collect();
            let want = vec![(5, 5), (11, 12), (17, 31)];
            t.check(spans == want, || format!("spans {spans:?}, want {want:?}"));
        }
        Err(e) => t.check(false, || format!("unexpected error: {e}")),
    }
    t
}

fn env_var_test(root: &Path) -> Tally {
    let mut t = Tally::default();
    let env: HashMap<String, String> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (n, line) in read(&root.join("buildkit-shell/envVarTest"))
        .lines()
        .enumerate()
    {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let [platform, input, expected] = fields[..] else {
            t.check(false, || format!("line {}: malformed row {line:?}", n + 1));
            continue;
        };
        if platform == "W" {
            t.skipped += 1;
            continue;
        }
        let got = expand_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(s), exp) => exp != "error" && s == exp,
            _ => false,
        };
        t.check(ok, || {
            format!("line {}: {input:?}: got {got:?}, want {expected:?}", n + 1)
        });
    }
    t
}

fn words_test(root: &Path) -> Tally {
    let mut t = Tally::default();
    let mut env: Vec<(String, String)> = Vec::new();
    for (n, line) in read(&root.join("buildkit-shell/wordsTest"))
        .lines()
        .enumerate()
    {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let rest = rest.trim_start_matches(' ');
            let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let Some((input, expected)) = line.split_once('|') else {
            continue;
        };
        let input = input.trim();
        let expected = expected.trim_start_matches(' ');
        let got = expand_words(input, &env);
        let ok = match &got {
            Err(_) => expected == "error",
            Ok(words) => {
                let want: Vec<&str> = expected.split(',').collect();
                expected != "error" && *words == want
            }
        };
        t.check(ok, || {
            format!("line {}: {input:?}: got {got:?}, want {expected:?}", n + 1)
        });
    }
    t
}

fn pattern_matches(root: &Path) -> Tally {
    let mut t = Tally::default();
    let vectors: serde_json::Value =
        serde_json::from_str(&read(&root.join("patternmatcher/matches.json")))
            .unwrap_or_else(|e| panic!("matches.json: {e}"));
    for v in vectors.as_array().into_iter().flatten() {
        let id = v["id"].clone();
        let patterns: Vec<String> = v["patterns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        let path = v["path"].as_str().unwrap_or_default();
        let got = IgnoreMatcher::new(&patterns).map(|m| m.is_excluded(path));
        let ok = match (&v["expect"], &got) {
            (serde_json::Value::String(s), Err(_)) => s == "error",
            (serde_json::Value::Bool(b), Ok(r)) => b == r,
            _ => false,
        };
        t.check(ok, || {
            format!(
                "id {id}: {patterns:?} vs {path:?}: got {got:?}, want {}",
                v["expect"]
            )
        });
    }
    t
}

fn ignore_file(root: &Path) -> Tally {
    let mut t = Tally::default();
    let doc: serde_json::Value =
        serde_json::from_str(&read(&root.join("patternmatcher/ignorefile.json")))
            .unwrap_or_else(|e| panic!("ignorefile.json: {e}"));
    for case in doc["read_ignore_file"].as_array().into_iter().flatten() {
        let input = case["input"].as_str().unwrap_or_default();
        let want: Vec<&str> = case["expect"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .collect();
        let got = read_dockerignore(input);
        t.check(got.as_ref().is_ok_and(|g| *g == want), || {
            format!("read {input:?}: got {got:?}, want {want:?}")
        });
    }
    for case in doc["pattern_list_normalization"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let patterns: Vec<String> = case["patterns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        let got = IgnoreMatcher::new(&patterns);
        let ok = if case["expect"] == "error" {
            got.is_err()
        } else if let Some(n) = case["expect_count"].as_u64() {
            got.as_ref().is_ok_and(|m| m.patterns().len() as u64 == n)
        } else if let Some(b) = case["expect_has_exclusions"].as_bool() {
            got.as_ref().is_ok_and(|m| m.has_exclusions() == b)
        } else {
            false
        };
        t.check(ok, || {
            format!("normalize {patterns:?}: got {got:?}, case {case}")
        });
    }
    t
}

#[test]
fn conformance_corpora() {
    let Some(root) = corpus_dir() else {
        println!(
            "conformance: corpus folder not found (set ISULA_CONFORMANCE_DIR or provide \
             ../shared/conformance); skipping"
        );
        return;
    };
    let runs: Vec<(&str, Tally)> = vec![
        ("buildkit-parser/testfiles", parser_positive(&root)),
        ("buildkit-parser/testfiles-negative", parser_negative(&root)),
        ("buildkit-parser/testfile-line", parser_lines(&root)),
        ("buildkit-shell/envVarTest", env_var_test(&root)),
        ("buildkit-shell/wordsTest", words_test(&root)),
        ("patternmatcher/matches.json", pattern_matches(&root)),
        ("patternmatcher/ignorefile.json", ignore_file(&root)),
    ];
    let mut failed = 0;
    for (name, tally) in &runs {
        tally.report(name);
        failed += tally.failures.len();
        assert!(tally.total > 0, "{name}: no cases found");
    }
    assert_eq!(failed, 0, "{failed} conformance case(s) failed");
}
