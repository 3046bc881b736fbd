//! HTTP clients per registry host: TLS trust from `<config dir>/certs.d/<host>/` the way
//! Docker reads it (`*.crt`: extra CA certificates; `<name>.cert` + `<name>.key`: a client
//! certificate), unverified TLS for hosts listed as insecure, no automatic redirects (the
//! registry client follows them itself, dropping credentials when the host changes).

use crate::registry::RegistryError;
use reqwest::blocking::Client;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Directory name of per-host TLS material inside the config directory.
pub const CERTS_DIR: &str = "certs.d";

/// TLS material found for one host.
#[derive(Debug, Default)]
pub struct HostTls {
    pub ca_files: Vec<PathBuf>,
    pub client_pairs: Vec<(PathBuf, PathBuf)>,
}

/// Read `certs_root/<host>/` (a missing directory means no extra material). The host name
/// is used as one path component only: `/` or `..` in it is refused.
pub fn host_tls(certs_root: &Path, host: &str) -> Result<HostTls, RegistryError> {
    if host.is_empty() || host.contains('/') || host == "." || host == ".." {
        return Err(RegistryError::invalid(
            format!("registry {host:?}"),
            "bad host",
        ));
    }
    let dir = certs_root.join(host);
    let mut out = HostTls::default();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(RegistryError::file(&dir, e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    for n in &names {
        if n.ends_with(".crt") {
            out.ca_files.push(dir.join(n));
        } else if let Some(stem) = n.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !names.contains(&key) {
                return Err(RegistryError::file(
                    &dir.join(n),
                    format!("client certificate without its key {key}"),
                ));
            }
            out.client_pairs.push((dir.join(n), dir.join(key)));
        } else if let Some(stem) = n.strip_suffix(".key") {
            if !names.contains(&format!("{stem}.cert")) {
                return Err(RegistryError::file(
                    &dir.join(n),
                    format!("client key without its certificate {stem}.cert"),
                ));
            }
        }
    }
    Ok(out)
}

fn read_small(p: &Path) -> Result<Vec<u8>, RegistryError> {
    let md = std::fs::metadata(p).map_err(|e| RegistryError::file(p, e))?;
    if md.len() > 1024 * 1024 {
        return Err(RegistryError::file(p, "larger than 1 MiB"));
    }
    std::fs::read(p).map_err(|e| RegistryError::file(p, e))
}

/// An HTTP client for `host`: certs.d material, and certificate checks off when `insecure`.
pub fn build_client(
    certs_root: &Path,
    host: &str,
    insecure: bool,
) -> Result<Client, RegistryError> {
    let tls = host_tls(certs_root, host)?;
    let mut b = Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .timeout(None)
        .pool_max_idle_per_host(8)
        .user_agent(concat!("isula-build/", env!("CARGO_PKG_VERSION")));
    if crate::privilege::caller().is_some() {
        // A setuid caller's proxy variables are for their RUN steps: registry traffic, which
        // carries the admin's saved credentials, never goes through a proxy they chose.
        b = b.no_proxy();
    }
    for ca in &tls.ca_files {
        let pem = read_small(ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| RegistryError::file(ca, crate::registry::describe(&e)))?;
        if certs.is_empty() {
            return Err(RegistryError::file(ca, "no PEM certificate in file"));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let Some((cert, key)) = tls.client_pairs.first() {
        let mut pem = read_small(cert)?;
        pem.push(b'\n');
        pem.extend(read_small(key)?);
        let id = reqwest::Identity::from_pem(&pem)
            .map_err(|e| RegistryError::file(cert, crate::registry::describe(&e)))?;
        b = b.identity(id);
    }
    if insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| {
        RegistryError::Other(format!("HTTP client: {}", crate::registry::describe(&e)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cas_and_client_pairs() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("r:5000");
        std::fs::create_dir_all(&d).unwrap();
        for f in ["ca.crt", "client.cert", "client.key", "README"] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let h = host_tls(t.path(), "r:5000").unwrap();
        assert_eq!(h.ca_files, vec![d.join("ca.crt")]);
        assert_eq!(
            h.client_pairs,
            vec![(d.join("client.cert"), d.join("client.key"))]
        );
        std::fs::remove_file(d.join("client.key")).unwrap();
        assert!(host_tls(t.path(), "r:5000").is_err());
        assert!(host_tls(t.path(), "..").is_err());
        assert!(host_tls(t.path(), "absent").unwrap().ca_files.is_empty());
    }
}
