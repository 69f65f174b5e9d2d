//! HTTPS: the rustls server configuration (ring provider, TLS 1.2+, HTTP/1.1 and h2) from PEM
//! files, and `gen-cert`, which makes a private CA and a server certificate signed by it for a
//! demo or a small deployment. Kiosks pin the CA (`zhucan-kiosk enrol-kiosk --server-ca ca.pem`),
//! so a certificate from any other authority — including a public one — is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// `--tls-cert` / `--tls-key`: serve HTTPS (both or neither).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM certificate chain (leaf first). With --tls-key, the server speaks HTTPS only.
    #[arg(long, env = "ZHUCAN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ZHUCAN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }
}

/// Where the server's certificate chain and private key are (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("certificate generation: {0}")]
    Generate(String),
}

fn file_err(path: &Path, reason: impl ToString) -> Error {
    Error::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads the PEM files into a rustls server config.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_err(&files.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&files.cert, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(&files.cert, "no CERTIFICATE block in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_err(&files.key, format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Config(format!("certificate and key do not fit: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What `gen-cert` wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The CA certificate: give this to kiosks (`--server-ca`) and browsers.
    pub ca: PathBuf,
    /// The server's certificate (leaf, then CA) and key: `--tls-cert` / `--tls-key`.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a private CA and a server certificate for `hosts` (DNS names or IP addresses) in `dir`:
/// `ca.pem`, `server.pem` (chain), `server.key` (0600). The CA's private key is not kept: nothing
/// else can ever be signed by it, so a leaked `ca.pem` grants nothing.
pub fn generate(dir: &Path, hosts: &[String], days: u32) -> Result<Generated, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let gen_err = |e: rcgen::Error| Error::Generate(e.to_string());
    if hosts.is_empty() {
        return Err(Error::Generate("at least one --host is needed".into()));
    }
    let now = time_now();
    let until = now + std::time::Duration::from_secs(u64::from(days) * 86_400);

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Zhucan");
    dn.push(DnType::CommonName, "Zhucan private CA");
    ca.distinguished_name = dn;
    ca.not_before = now.into();
    ca.not_after = until.into();
    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(gen_err)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(hosts.to_vec()).map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Zhucan");
    dn.push(DnType::CommonName, hosts[0].clone());
    leaf.distinguished_name = dn;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now.into();
    leaf.not_after = until.into();
    let leaf_key = KeyPair::generate().map_err(gen_err)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(gen_err)?;

    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let out = Generated {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    write(&out.ca, ca_cert.pem().as_bytes(), 0o644)?;
    write(
        &out.cert,
        format!("{}{}", leaf_cert.pem(), ca_cert.pem()).as_bytes(),
        0o644,
    )?;
    write(&out.key, leaf_key.serialize_pem().as_bytes(), 0o600)?;
    Ok(out)
}

fn time_now() -> std::time::SystemTime {
    // Back-date a little so a kiosk whose clock is a few minutes slow still accepts it.
    std::time::SystemTime::now() - std::time::Duration::from_secs(3600)
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| file_err(path, e))?;
    f.write_all(bytes).map_err(|e| file_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_make_a_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(dir.path(), &["localhost".into(), "127.0.0.1".into()], 30).unwrap();
        let cfg = server_config(&TlsFiles {
            cert: g.cert.clone(),
            key: g.key.clone(),
        });
        assert!(cfg.is_ok(), "{:?}", cfg.err());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&g.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let ca = std::fs::read_to_string(&g.ca).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!ca.contains("PRIVATE KEY"));
    }

    #[test]
    fn bad_files_name_the_file_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem").unwrap();
        let e = server_config(&TlsFiles {
            cert: junk.clone(),
            key: junk.clone(),
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("junk.pem"), "{e}");
        let g = generate(dir.path(), &["localhost".into()], 1).unwrap();
        let other = generate(&dir.path().join("other"), &["localhost".into()], 1).unwrap();
        let e = server_config(&TlsFiles {
            cert: g.cert,
            key: other.key,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("do not fit"), "{e}");
    }
}
