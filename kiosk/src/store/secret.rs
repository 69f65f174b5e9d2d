//! The kiosk's secret file (`<data>/secret.json`, mode 0600): the template encryption key and the
//! bearer token the server gave this kiosk at registration. Neither is ever written to the
//! database, and `Debug` never shows them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use super::Error;

/// What the secret file holds.
#[derive(Clone, Serialize, Deserialize)]
pub struct Secrets {
    /// 32 random bytes, hex: the template key.
    key: String,
    /// The kiosk's bearer token, once registered.
    #[serde(default)]
    pub token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

/// The secret file's path inside a data folder.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("secret.json")
}

impl Secrets {
    /// Reads the secret file, creating it (0600, a fresh random key, no token) when missing.
    pub fn load_or_create(path: &Path) -> Result<Secrets, Error> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let s: Secrets = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::Secret(format!("{}: not a kiosk secret file: {e}", path.display()))
                })?;
                s.key_bytes()?;
                Ok(s)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = Secrets {
                    key: hex::encode(rand::random::<[u8; 32]>()),
                    token: None,
                };
                s.save(path)?;
                Ok(s)
            }
            Err(e) => Err(Error::Secret(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let err = |e: std::io::Error| Error::Secret(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::Secret(e.to_string()))?;
        f.write_all(&body).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(())
    }

    fn key_bytes(&self) -> Result<[u8; 32], Error> {
        let v = hex::decode(&self.key).map_err(|_| Error::Secret("key is not hex".into()))?;
        v.try_into()
            .map_err(|_| Error::Secret("key must be 32 bytes".into()))
    }

    /// The template cipher.
    pub fn template_key(&self) -> Result<TemplateKey, Error> {
        Ok(TemplateKey(self.key_bytes()?))
    }
}

/// The key that encrypts templates at rest.
#[derive(Clone)]
pub struct TemplateKey([u8; 32]);

impl std::fmt::Debug for TemplateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TemplateKey([redacted])")
    }
}

fn aad(resident: i64) -> Vec<u8> {
    format!("zhucan-template:{resident}").into_bytes()
}

impl TemplateKey {
    /// A key from raw bytes (tests).
    pub fn from_bytes(b: [u8; 32]) -> TemplateKey {
        TemplateKey(b)
    }

    /// Encrypts an embedding: (nonce, ciphertext).
    pub fn seal(&self, resident: i64, embedding: &[f32]) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce: [u8; 24] = rand::random();
        let mut msg = Vec::with_capacity(embedding.len() * 4);
        for x in embedding {
            msg.extend_from_slice(&x.to_le_bytes());
        }
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &msg,
                    aad: &aad(resident),
                },
            )
            .map_err(|_| Error::Crypto)?;
        Ok((nonce.to_vec(), ct))
    }

    /// Decrypts what [`TemplateKey::seal`] made for the same resident.
    pub fn open(&self, resident: i64, nonce: &[u8], ct: &[u8]) -> Result<Vec<f32>, Error> {
        if nonce.len() != 24 {
            return Err(Error::Crypto);
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let msg = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &aad(resident),
                },
            )
            .map_err(|_| Error::Crypto)?;
        Ok(msg
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_round_trip_and_are_bound_to_the_resident() {
        let k = TemplateKey::from_bytes([7; 32]);
        let (n, ct) = k.seal(42, &[0.5, -0.25]).expect("seal");
        assert_eq!(k.open(42, &n, &ct).expect("open"), vec![0.5, -0.25]);
        assert!(matches!(k.open(43, &n, &ct), Err(Error::Crypto)));
        let other = TemplateKey::from_bytes([8; 32]);
        assert!(matches!(other.open(42, &n, &ct), Err(Error::Crypto)));
    }

    #[test]
    fn secret_file_is_created_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = path_in(dir.path());
        let a = Secrets::load_or_create(&p).expect("create");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Secrets::load_or_create(&p).expect("reload");
        assert_eq!(a.key, b.key);
        assert!(!format!("{a:?}").contains(&a.key));
    }
}
