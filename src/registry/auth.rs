//! Registry authentication: `WWW-Authenticate` challenges, Bearer tokens from the realm the
//! registry names (cached per scope set until they expire), Basic credentials.

use crate::registry::credentials::Credentials;
use crate::registry::RegistryError;
use reqwest::blocking::Client;
use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

/// How a registry wants requests authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// No authentication asked for (yet).
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// A scope the registry named in its challenge.
        scope: Option<String>,
    },
}

/// Parse an `auth-param` list: `key="quoted, value", key2=token`.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                // Push whole UTF-8 characters.
                let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
                val.push_str(&s[i..i + ch_len]);
                i += ch_len;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

/// Parse a `WWW-Authenticate` header value. Unknown schemes give `None`.
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let p = parse_params(rest);
            let realm = p.get("realm")?.clone();
            Some(Challenge::Bearer {
                realm,
                service: p.get("service").cloned(),
                scope: p.get("scope").cloned(),
            })
        }
        _ => None,
    }
}

struct Token {
    value: String,
    expires: Instant,
}

/// Bearer tokens by scope set.
#[derive(Default)]
pub struct TokenCache {
    tokens: HashMap<String, Token>,
}

impl TokenCache {
    pub fn get(&self, key: &str) -> Option<String> {
        self.tokens
            .get(key)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.value.clone())
    }
    pub fn put(&mut self, key: String, value: String, lifetime: Duration) {
        // Renew a little early so a token does not expire in flight.
        let lifetime = lifetime.saturating_sub(Duration::from_secs(5));
        self.tokens.insert(
            key,
            Token {
                value,
                expires: Instant::now() + lifetime,
            },
        );
    }
    pub fn forget(&mut self, key: &str) {
        self.tokens.remove(key);
    }
}

/// Fetch a token from `realm` for `scopes` (with the user's credentials when there are
/// any). Returns the token and its lifetime.
pub fn fetch_token(
    http: &Client,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<(String, Duration), RegistryError> {
    let mut url = reqwest::Url::parse(realm).map_err(|e| {
        RegistryError::invalid(format!("registry {registry}: token realm {realm:?}"), e)
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(RegistryError::invalid(
            format!("registry {registry}: token realm"),
            "not an http(s) URL",
        ));
    }
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if let Some(c) = creds {
            q.append_pair("account", &c.username);
        }
    }
    let mut rb = http.get(url);
    if let Some(c) = creds {
        rb = rb.header(reqwest::header::AUTHORIZATION, c.basic_header());
    }
    let resp = rb.send().map_err(|e| RegistryError::Unreachable {
        host: format!("{registry} (token service)"),
        reason: crate::registry::describe(&e),
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(RegistryError::Unauthorized {
            host: registry.to_string(),
            reason: "the token service refused the credentials".into(),
        });
    }
    if !status.is_success() {
        return Err(RegistryError::Status {
            host: registry.to_string(),
            method: "GET".into(),
            path: "token realm".into(),
            status: status.as_u16(),
            detail: String::new(),
        });
    }
    let mut body = Vec::new();
    resp.take(1024 * 1024 + 1)
        .read_to_end(&mut body)
        .map_err(|e| RegistryError::Network(e.to_string()))?;
    if body.len() > 1024 * 1024 {
        return Err(RegistryError::TooLarge {
            what: "token response".into(),
            limit: 1024 * 1024,
        });
    }
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let tr: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| RegistryError::invalid(format!("registry {registry}: token response"), e))?;
    let token = tr
        .token
        .filter(|t| !t.is_empty())
        .or(tr.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| {
            RegistryError::invalid(
                format!("registry {registry}: token response"),
                "no token in it",
            )
        })?;
    if token.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(RegistryError::invalid(
            format!("registry {registry}: token response"),
            "token has invalid characters",
        ));
    }
    let lifetime = Duration::from_secs(tr.expires_in.unwrap_or(60).clamp(10, 24 * 3600));
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn token_cache_expires() {
        let mut c = TokenCache::default();
        c.put("a".into(), "t".into(), Duration::from_secs(60));
        assert_eq!(c.get("a").as_deref(), Some("t"));
        c.put("b".into(), "t".into(), Duration::from_secs(1));
        assert_eq!(c.get("b"), None);
        c.forget("a");
        assert_eq!(c.get("a"), None);
    }
}
