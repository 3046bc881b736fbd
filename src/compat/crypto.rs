//! The server's RSA key pair. Upstream clients read the public key from
//! `<config dir>/isula-build.pub` and encrypt login passwords (and, when a proxy variable is
//! among them, all build args) with RSA-OAEP over SHA-512, sending the ciphertext as hex.
//! As upstream: a fresh 2048-bit key per server start, the public key written as PEM
//! (label `RSA PUBLIC KEY`, SubjectPublicKeyInfo DER, which upstream's client parses with
//! `x509.ParsePKIXPublicKey`), the private key kept only in memory, the file removed at
//! shutdown.
//!
//! The `rsa` crate's decryption is not constant-time (RUSTSEC-2023-0071, no fixed release
//! yet); ciphertexts only come from clients allowed on the local socket.

use rsa::pkcs8::EncodePublicKey;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Upstream's key size.
pub const KEY_BITS: usize = 2048;
/// Name of the public key file in the config directory.
pub const PUBLIC_KEY_FILE: &str = "isula-build.pub";
/// PEM label upstream writes (and its client ignores when parsing).
const PEM_LABEL: &str = "RSA PUBLIC KEY";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("generate rsa key pair failed: {0}")]
    Generate(String),
    #[error("write public key {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encoding public key failed: {0}")]
    Encode(String),
    /// Not hex (upstream returns Go's hex error; ours says what it is).
    #[error("decryption failed: cipher text is not hex: {0}")]
    Hex(String),
    /// Upstream's wording.
    #[error("decryption failed: {0}")]
    Decrypt(String),
    #[error("decryption failed: plain text is not UTF-8")]
    Utf8,
}

/// The key pair of one server run.
pub struct ServerKey {
    private: RsaPrivateKey,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(<private>)")
    }
}

impl ServerKey {
    /// A fresh key pair.
    pub fn generate() -> Result<ServerKey, CryptoError> {
        let mut rng = rsa::rand_core::OsRng;
        let private = RsaPrivateKey::new(&mut rng, KEY_BITS)
            .map_err(|e| CryptoError::Generate(e.to_string()))?;
        Ok(ServerKey { private })
    }

    pub fn public(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    /// The public key as upstream writes it.
    pub fn public_pem(&self) -> Result<String, CryptoError> {
        let der = self
            .public()
            .to_public_key_der()
            .map_err(|e| CryptoError::Encode(e.to_string()))?;
        Ok(pem_encode(PEM_LABEL, der.as_bytes()))
    }

    /// Write the public key to `path` (mode 0440, group `gid`), replacing a stale one.
    /// Written to a temporary name and renamed, so a client never reads half a key.
    pub fn write_public(&self, path: &Path, gid: Option<u32>) -> Result<(), CryptoError> {
        let err = |source| CryptoError::Write {
            path: path.to_path_buf(),
            source,
        };
        let pem = self.public_pem()?;
        let tmp = path.with_extension(format!("pub.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(err)?;
        let res = (|| {
            f.write_all(pem.as_bytes())?;
            f.sync_all()?;
            if let Some(g) = gid {
                std::os::unix::fs::fchown(&f, Some(0), Some(g))?;
            }
            f.set_permissions(std::fs::Permissions::from_mode(0o440))?;
            std::fs::rename(&tmp, path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res.map_err(err)
    }

    /// Decrypt what an upstream client sent: hex of RSA-OAEP(SHA-512) ciphertext.
    pub fn decrypt(&self, hex_text: &str) -> Result<String, CryptoError> {
        let bytes = hex::decode(hex_text.trim()).map_err(|e| CryptoError::Hex(e.to_string()))?;
        let plain = self
            .private
            .decrypt(Oaep::new::<sha2::Sha512>(), &bytes)
            .map_err(|e| CryptoError::Decrypt(e.to_string()))?;
        String::from_utf8(plain).map_err(|_| CryptoError::Utf8)
    }
}

/// Encrypt `text` the way upstream clients do (hex of RSA-OAEP(SHA-512)); for tests and
/// tools speaking to the server.
pub fn encrypt_for(key: &RsaPublicKey, text: &str) -> Result<String, CryptoError> {
    let mut rng = rsa::rand_core::OsRng;
    key.encrypt(&mut rng, Oaep::new::<sha2::Sha512>(), text.as_bytes())
        .map(hex::encode)
        .map_err(|e| CryptoError::Encode(e.to_string()))
}

/// Read a public key file as upstream's client does: the first PEM block, SubjectPublicKeyInfo
/// DER whatever its label.
pub fn read_public(pem_text: &str) -> Result<RsaPublicKey, CryptoError> {
    use rsa::pkcs8::DecodePublicKey;
    let body: String = pem_text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| CryptoError::Encode("decoding public key failed".into()))?;
    RsaPublicKey::from_public_key_der(&der).map_err(|e| CryptoError::Encode(e.to_string()))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_as_upstream_clients_encrypt() {
        let k = ServerKey::generate().unwrap();
        let pem = k.public_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PUBLIC KEY-----\n"));
        let public = read_public(&pem).unwrap();
        assert_eq!(public, k.public());
        let c = encrypt_for(&public, "s3cret=with=equals").unwrap();
        assert_eq!(c.len(), KEY_BITS / 8 * 2);
        assert_eq!(k.decrypt(&c).unwrap(), "s3cret=with=equals");
        assert!(k
            .decrypt("zz")
            .unwrap_err()
            .to_string()
            .starts_with("decryption failed"));
        let other = ServerKey::generate().unwrap();
        assert!(other.decrypt(&c).is_err());
    }
}
