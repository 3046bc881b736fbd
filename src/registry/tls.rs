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

/// Environment variable: seconds a registry may stay silent (no response, no body bytes)
/// before a request fails; `0` waits forever. Default [`DEFAULT_READ_TIMEOUT`].
pub const READ_TIMEOUT_ENV: &str = "ISULA_BUILD_REGISTRY_READ_TIMEOUT";
/// Default inactivity limit of registry reads.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The inactivity limit of registry reads: [`READ_TIMEOUT_ENV`] or the default; `None`
/// when it is set to 0.
pub fn read_timeout() -> Result<Option<Duration>, RegistryError> {
    let Some(v) = std::env::var_os(READ_TIMEOUT_ENV) else {
        return Ok(Some(DEFAULT_READ_TIMEOUT));
    };
    let secs = v
        .to_str()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 1e9)
        .ok_or_else(|| RegistryError::invalid(READ_TIMEOUT_ENV, "not a number of seconds"))?;
    if secs == 0.0 {
        Ok(None)
    } else {
        Ok(Some(Duration::from_secs_f64(secs)))
    }
}

/// The HTTP clients of one registry host.
pub struct HttpClients {
    /// For requests without a body: waiting for the response, and every read of its body,
    /// is limited to the read timeout (an inactivity limit, not a limit on the transfer).
    pub fetch: Client,
    /// For uploads: no limit on the whole request (the wait covers sending the whole
    /// body), but the read timeout on data the registry leaves unread.
    pub upload: Client,
    /// The client certificate presented, from certs.d.
    pub client_cert: Option<PathBuf>,
}

/// What to tell the user about a TLS failure with `host`: a certificate alert the server
/// sent means it wants (another) client certificate; anything else is about trusting the
/// server.
pub fn hint(host: &str, reason: &str, client_cert: Option<&Path>) -> String {
    let r = reason.to_ascii_lowercase();
    let server_refused_us = r.contains("received fatal alert")
        && ["certificate", "unknownca", "accessdenied"]
            .iter()
            .any(|k| r.contains(k));
    match (server_refused_us, client_cert) {
        (true, None) => format!(
            "the registry requires a client certificate: put NAME.cert and NAME.key in certs.d/{host}/"
        ),
        (true, Some(c)) => format!(
            "the registry refused the client certificate {}",
            c.display()
        ),
        (false, _) => format!(
            "trust its CA in certs.d/{host}/ca.crt, or list it in registries.insecure"
        ),
    }
}

/// The HTTP clients for `host`: certs.d material, and certificate checks off when
/// `insecure`; `read_timeout` for the fetching one.
pub fn build_clients(
    certs_root: &Path,
    host: &str,
    insecure: bool,
    read_timeout: Option<Duration>,
) -> Result<HttpClients, RegistryError> {
    let tls = host_tls(certs_root, host)?;
    Ok(HttpClients {
        fetch: build_client(&tls, insecure, read_timeout, true)?,
        upload: build_client(&tls, insecure, read_timeout, false)?,
        client_cert: tls.client_pairs.first().map(|p| p.0.clone()),
    })
}

/// An HTTP client with the certs.d material `tls` of its host, and certificate checks off
/// when `insecure`.
///
/// `read_timeout` is the kernel's limit (`TCP_USER_TIMEOUT`) on data we sent staying
/// unacknowledged or unread: a registry that stops reading an upload, or a host that
/// vanished, ends the request after that long. With `limit_waits` it also bounds (as
/// reqwest's blocking timeout) the wait for a response and each read of its body; uploads
/// go without that, since the wait covers sending the whole body.
pub fn build_client(
    tls: &HostTls,
    insecure: bool,
    read_timeout: Option<Duration>,
    limit_waits: bool,
) -> Result<Client, RegistryError> {
    let mut b = Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .timeout(if limit_waits { read_timeout } else { None })
        .tcp_user_timeout(read_timeout)
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

    #[test]
    fn hints_tell_a_missing_client_certificate_from_an_untrusted_server() {
        let alert = "connection error: received fatal alert: BadCertificate";
        assert!(hint("r:1", alert, None).contains("requires a client certificate"));
        let c = Path::new("/x/c.cert");
        assert!(hint("r:1", alert, Some(c)).contains("refused the client certificate /x/c.cert"));
        let untrusted = "invalid peer certificate: UnknownIssuer";
        assert!(hint("r:1", untrusted, None).contains("certs.d/r:1/ca.crt"));
    }
}
