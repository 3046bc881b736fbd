//! How metadata instructions change an image config, as Docker does.

use crate::build::instructions::{CommandForm, Healthcheck};
use crate::image::config::{Empty, HealthConfig};
use std::collections::BTreeMap;

/// The default shell for shell-form commands.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string()]
}

/// argv for a command: shell form goes through `shell` (the stage's SHELL).
pub fn command_argv(form: &CommandForm, shell: &[String]) -> Vec<String> {
    match form {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// `EXPOSE` words → `ExposedPorts` keys (`80` → `80/tcp`, ranges expanded).
pub fn expose_keys(ports: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for p in ports {
        let (port, proto) = match p.split_once('/') {
            Some((a, b)) => (a, b.to_ascii_lowercase()),
            None => (p.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}"));
        }
        let parse = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("invalid containerPort: {s}"))
        };
        match port.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse(a)?, parse(b)?);
                if b < a || b - a > 10_000 {
                    return Err(format!("invalid port range: {port}"));
                }
                for n in a..=b {
                    out.push(format!("{n}/{proto}"));
                }
            }
            None => out.push(format!("{}/{proto}", parse(port)?)),
        }
    }
    Ok(out)
}

/// Insert keys into a Docker set-like map.
pub fn add_to_set(
    set: &mut Option<BTreeMap<String, Empty>>,
    keys: impl IntoIterator<Item = String>,
) {
    let m = set.get_or_insert_with(BTreeMap::new);
    for k in keys {
        m.insert(k, Empty {});
    }
}

/// `HEALTHCHECK` → config `Healthcheck` (durations in nanoseconds, as Docker stores them).
pub fn health_config(h: &Healthcheck) -> HealthConfig {
    match h {
        Healthcheck::None => HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        },
        Healthcheck::Cmd {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match test {
                CommandForm::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    t
                }
                CommandForm::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            };
            let ns = |d: &std::time::Duration| d.as_nanos().min(i64::MAX as u128) as i64;
            HealthConfig {
                test,
                interval: ns(interval),
                timeout: ns(timeout),
                start_period: ns(start_period),
                start_interval: ns(start_interval),
                retries: *retries as i64,
            }
        }
    }
}

/// Set `KEY=value` in a Docker `Env` list: replace in place, else append.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map(|(k, _)| k) == Some(key) || e.as_str() == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// `WORKDIR p` relative to the current working dir, cleaned.
pub fn join_workdir(current: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        let base = if current.is_empty() { "/" } else { current };
        format!("{}/{p}", base.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(
            expose_keys(&["80".into(), "53/UDP".into()]).unwrap(),
            vec!["80/tcp", "53/udp"]
        );
        assert_eq!(
            expose_keys(&["8000-8002".into()]).unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expose_keys(&["http".into()]).is_err());
        assert!(expose_keys(&["80/icmp".into()]).is_err());
    }

    #[test]
    fn workdirs() {
        assert_eq!(join_workdir("", "app"), "/app");
        assert_eq!(join_workdir("/a", "b/../c"), "/a/c");
        assert_eq!(join_workdir("/a", "/x/"), "/x");
        assert_eq!(join_workdir("/", "../.."), "/");
    }

    #[test]
    fn env_replaces_in_place() {
        let mut e = vec!["A=1".to_string(), "PATH=/bin".to_string()];
        set_env(&mut e, "A", "2");
        set_env(&mut e, "B", "3");
        assert_eq!(e, vec!["A=2", "PATH=/bin", "B=3"]);
    }

    #[test]
    fn healthcheck_forms() {
        let h = Healthcheck::Cmd {
            test: CommandForm::Shell("curl -f x".into()),
            interval: std::time::Duration::from_secs(5),
            timeout: Default::default(),
            start_period: Default::default(),
            start_interval: Default::default(),
            retries: 3,
        };
        let c = health_config(&h);
        assert_eq!(c.test, vec!["CMD-SHELL", "curl -f x"]);
        assert_eq!(c.interval, 5_000_000_000);
        assert_eq!(c.retries, 3);
        assert_eq!(health_config(&Healthcheck::None).test, vec!["NONE"]);
    }
}
