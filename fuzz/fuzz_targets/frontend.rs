//! Fuzzes the Dockerfile front end: parsing, the BuildKit tree dump, variable expansion and
//! word splitting, and .dockerignore reading and matching. Any panic, timeout or runaway
//! allocation is a bug.
#![no_main]

use std::collections::HashMap;

use isula_build::build::dockerignore::IgnoreMatcher;
use isula_build::build::{parse_dockerfile, ShellWords};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(df) = parse_dockerfile(text) {
        let _ = df.dump();
    }

    let env: HashMap<String, String> = [("A", "x y"), ("NULL", ""), ("P", "a/b.c")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for escape in ['\\', '`'] {
        let sw = ShellWords::new(escape);
        let _ = sw.expand_word(text, &env);
        let _ = sw.expand_words(text, &env);
    }

    if let Ok(m) = IgnoreMatcher::from_dockerignore(text) {
        for line in text.lines().take(16) {
            let _ = m.is_excluded(line);
            let _ = m.may_include_below(line);
        }
        let _ = m.build_files("Dockerfile");
    }
});
