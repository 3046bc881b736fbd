//! Fuzzes the Dockerfile front end: parsing, the BuildKit tree dump, typed instructions, stage
//! planning and ARG/ENV scoping with expansion of every step, variable expansion and word
//! splitting on raw input, and .dockerignore reading and matching. Any panic, timeout or
//! runaway allocation is a bug.
#![no_main]

use std::collections::HashMap;

use isula_build::build::dockerignore::IgnoreMatcher;
use isula_build::build::{
    parse_dockerfile, parse_instructions, parse_onbuild_triggers, plan_stages, BuildArgs,
    ShellWords, StageScope,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(df) = parse_dockerfile(text) {
        let _ = df.dump();
        let _ = parse_instructions(&df);
        let build_args: BuildArgs = [("A", "1"), ("HTTP_PROXY", "p"), ("TAG", "x y")]
            .into_iter()
            .collect();
        // Aim at the last stage and at a name taken from the input.
        let target = text.split_whitespace().nth(3);
        for t in [None, target] {
            let Ok(plan) = plan_stages(&df, &build_args, t) else {
                continue;
            };
            let base_env = vec![("PATH".to_string(), "/bin".to_string())];
            for &i in &plan.order {
                let mut scope = StageScope::for_stage(&plan, &build_args, &base_env);
                for step in &plan.stages[i].steps {
                    let _ = scope.process(step);
                }
                let _ = scope.run_env();
            }
        }
    }

    let _ = parse_onbuild_triggers(&text.lines().take(8).collect::<Vec<_>>());

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
