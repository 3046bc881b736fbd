//! The credentials file `auth.json` in the config directory, in the format Docker and
//! Podman use: `{"auths": {"<server>": {"auth": "<base64 user:password>"}}}`. Written
//! atomically with mode 0600; other keys in the file are kept.

use crate::registry::RegistryError;
use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name of the credentials file inside the config directory.
pub const AUTH_FILE: &str = "auth.json";
/// Largest credentials file we read.
const MAX_AUTH_FILE: u64 = 1024 * 1024;

/// A user name and password (or identity token). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of a Basic `Authorization` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Check `creds` against the registry `server` (host[:port], as `normalize_server` gives):
/// `Ok` when the registry accepts them. Used by `login` and the compat server's Login.
pub fn verify(
    settings: &crate::config::Settings,
    server: &str,
    creds: &Credentials,
) -> Result<(), RegistryError> {
    let api_host = crate::registry::RemoteName {
        registry: server.to_string(),
        repository: String::new(),
        reference: crate::registry::name::ManifestRef::Tag(String::new()),
    }
    .api_host()
    .to_string();
    let client =
        crate::registry::RegistryClient::connect(settings, server, &api_host, Some(creds.clone()))?;
    client.check_login()
}

/// The path of `auth.json` under `config_dir`.
pub fn auth_file(config_dir: &Path) -> PathBuf {
    config_dir.join(AUTH_FILE)
}

/// Keys a server may be stored under (Docker writes URLs for Docker Hub).
fn candidate_keys(server: &str) -> Vec<String> {
    let mut keys = vec![
        server.to_string(),
        format!("https://{server}"),
        format!("http://{server}"),
    ];
    if server == "docker.io" || server == "index.docker.io" || server == "registry-1.docker.io" {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("docker.io".into());
        keys.push("index.docker.io".into());
    }
    keys
}

fn read_doc(path: &Path) -> Result<Map<String, Value>, RegistryError> {
    let bytes = match std::fs::File::open(path) {
        Ok(f) => {
            use std::io::Read;
            let mut buf = Vec::new();
            f.take(MAX_AUTH_FILE + 1)
                .read_to_end(&mut buf)
                .map_err(|e| RegistryError::file(path, e))?;
            if buf.len() as u64 > MAX_AUTH_FILE {
                return Err(RegistryError::file(path, "larger than 1 MiB"));
            }
            buf
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(RegistryError::file(path, e)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RegistryError::file(path, "not a JSON object")),
        // serde's message names line and column, never the content.
        Err(e) => Err(RegistryError::file(path, format!("invalid JSON: {e}"))),
    }
}

fn decode_auth(path: &Path, key: &str, v: &Value) -> Result<Option<Credentials>, RegistryError> {
    let Some(auth) = v.get("auth").and_then(Value::as_str) else {
        return Ok(None);
    };
    if auth.is_empty() {
        return Ok(None);
    }
    let bad = || RegistryError::file(path, format!("entry for {key}: invalid auth value"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (user, pass) = raw.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credentials {
        username: user.to_string(),
        password: pass.to_string(),
    }))
}

/// The stored credentials for `server` (`host[:port]`), if any.
pub fn lookup(config_dir: &Path, server: &str) -> Result<Option<Credentials>, RegistryError> {
    let path = auth_file(config_dir);
    let doc = read_doc(&path)?;
    let Some(Value::Object(auths)) = doc.get("auths") else {
        return Ok(None);
    };
    for key in candidate_keys(server) {
        if let Some(v) = auths.get(&key) {
            if let Some(c) = decode_auth(&path, &key, v)? {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

fn write_doc(path: &Path, doc: &Map<String, Value>) -> Result<(), RegistryError> {
    let dir = path
        .parent()
        .ok_or_else(|| RegistryError::file(path, "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| RegistryError::file(dir, e))?;
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(doc.clone()))
        .map_err(|e| RegistryError::file(path, e))?;
    bytes.push(b'\n');
    let tmp = dir.join(format!(
        ".{AUTH_FILE}.{}.tmp",
        crate::storage::fsutil::random_hex(6)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(RegistryError::file(path, e));
    }
    Ok(())
}

/// Store credentials for `server`, replacing any under the keys it may have.
pub fn store(config_dir: &Path, server: &str, creds: &Credentials) -> Result<(), RegistryError> {
    let path = auth_file(config_dir);
    let mut doc = read_doc(&path)?;
    let auths = doc
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    if let Value::Object(auths) = auths {
        for k in candidate_keys(server) {
            auths.remove(&k);
        }
        let raw = format!("{}:{}", creds.username, creds.password);
        let mut entry = Map::new();
        entry.insert(
            "auth".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
        );
        auths.insert(server.to_string(), Value::Object(entry));
    }
    write_doc(&path, &doc)
}

/// Remove the credentials of `server`. `Ok(false)`: there were none.
pub fn remove(config_dir: &Path, server: &str) -> Result<bool, RegistryError> {
    let path = auth_file(config_dir);
    let mut doc = read_doc(&path)?;
    let mut removed = false;
    if let Some(Value::Object(auths)) = doc.get_mut("auths") {
        for k in candidate_keys(server) {
            removed |= auths.remove(&k).is_some();
        }
    }
    if removed {
        write_doc(&path, &doc)?;
    }
    Ok(removed)
}

/// Remove every stored credential.
pub fn remove_all(config_dir: &Path) -> Result<(), RegistryError> {
    let path = auth_file(config_dir);
    let mut doc = read_doc(&path)?;
    if doc.is_empty() && !path.exists() {
        return Ok(());
    }
    doc.insert("auths".into(), Value::Object(Map::new()));
    write_doc(&path, &doc)
}

/// Normalise what a user typed as a server for login/logout: strip a scheme and a
/// trailing path, as Docker does (`https://r.example.com/v2/` → `r.example.com`).
pub fn normalize_server(s: &str) -> Result<String, RegistryError> {
    let s = s.trim();
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    {
        return Err(RegistryError::invalid(
            format!("server {s:?}"),
            "expected host[:port]",
        ));
    }
    Ok(match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lookup_remove_roundtrip_with_mode_0600() {
        let t = tempfile::tempdir().unwrap();
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        assert_eq!(lookup(t.path(), "r:5000").unwrap(), None);
        store(t.path(), "r:5000", &c).unwrap();
        store(t.path(), "other", &c).unwrap();
        let md = std::fs::metadata(auth_file(t.path())).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        assert_eq!(lookup(t.path(), "r:5000").unwrap(), Some(c.clone()));
        let text = std::fs::read_to_string(auth_file(t.path())).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["auths"]["r:5000"]["auth"], "dTpwOnc=");
        assert!(remove(t.path(), "r:5000").unwrap());
        assert!(!remove(t.path(), "r:5000").unwrap());
        assert_eq!(lookup(t.path(), "other").unwrap(), Some(c));
        remove_all(t.path()).unwrap();
        assert_eq!(lookup(t.path(), "other").unwrap(), None);
    }

    #[test]
    fn keeps_foreign_keys_and_reads_url_keys() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            auth_file(t.path()),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"}},"credHelpers":{"x":"y"}}"#,
        )
        .unwrap();
        let c = lookup(t.path(), "docker.io").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("a", "b"));
        store(t.path(), "q", &c).unwrap();
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(auth_file(t.path())).unwrap()).unwrap();
        assert_eq!(v["credHelpers"]["x"], "y");
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Credentials {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn server_names_are_normalised() {
        assert_eq!(
            normalize_server("https://r.example.com:5000/v2/").unwrap(),
            "r.example.com:5000"
        );
        assert_eq!(normalize_server("index.docker.io").unwrap(), "docker.io");
        assert!(normalize_server("").is_err());
        assert!(normalize_server("a b").is_err());
    }
}
