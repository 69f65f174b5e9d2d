//! The kiosk's HTTP client of the server (`/api/v1`), with the kiosk's bearer token.
//!
//! TLS pinning: when the kiosk was registered with `--server-ca`, the PEM is kept in
//! `<data>/server-ca.pem` ([`Pinned`]) and every client is built to trust ONLY those
//! certificates (no built-in roots, https only). A client that cannot be built that way is an
//! error, never a silent fallback to the default roots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use zhucan_domain::ResidentId;
use zhucan_domain::api::{
    BatchResult, DuplicateFace, ErrorBody, Heartbeat, KeyRotated, KeyRotation, KioskCreated,
    KioskEnrol, SettlementBatch, SettlementItem, SyncResponse, TemplateUpload, TemplatesDeleted,
};

/// Errors talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached or did not answer in time: try again later.
    #[error("server unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered with an error status.
    #[error("server said {status}: {code}: {message}")]
    Status {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// 409 `duplicate_face` on a template upload: the face matches `other`'s stored face.
    /// Staff may confirm (twins exist) by uploading again with `duplicate_confirmed`.
    #[error("server said 409 Conflict: duplicate_face: {message}")]
    DuplicateFace {
        other: DuplicateFace,
        message: String,
    },
    #[error("the kiosk is not registered: run `zhucan-kiosk enrol-kiosk` first")]
    NotRegistered,
    /// The pinned server certificate is unusable, or the URL does not fit it.
    #[error("server certificate: {0}")]
    Tls(String),
}

impl Error {
    /// Whether trying again later may succeed (network, 5xx, 429, 408).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            Error::NotRegistered | Error::Tls(_) | Error::DuplicateFace { .. } => false,
        }
    }
}

/// The server certificate or CA this kiosk trusts (and nothing else), as PEM.
#[derive(Clone)]
pub struct Pinned {
    pem: Vec<u8>,
    certs: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinned")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl Pinned {
    /// Where a registered kiosk keeps the pinned PEM.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("server-ca.pem")
    }

    /// Parses PEM holding one or more certificates and checks that a TLS client accepts them
    /// as its only roots; the error says what is wrong.
    pub fn parse(pem: &[u8]) -> Result<Pinned, Error> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Tls(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Tls(
                "no `-----BEGIN CERTIFICATE-----` block in the PEM".into(),
            ));
        }
        let p = Pinned {
            pem: pem.to_vec(),
            certs,
        };
        // the certificates are only decoded (DER, X.509) when a client is built
        p.builder()
            .build()
            .map_err(|e| Error::Tls(format!("not a usable certificate: {}", chain(&e))))?;
        Ok(p)
    }

    /// Reads and parses a PEM file.
    pub fn read(path: &Path) -> Result<Pinned, Error> {
        let pem =
            std::fs::read(path).map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
        Pinned::parse(&pem).map_err(|e| match e {
            Error::Tls(m) => Error::Tls(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The pin of a data folder, if the kiosk was registered with one.
    pub fn load(data_dir: &Path) -> Result<Option<Pinned>, Error> {
        let path = Pinned::path_in(data_dir);
        match std::fs::metadata(&path) {
            Ok(_) => Pinned::read(&path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Tls(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the PEM into the data folder (atomically).
    pub fn save(&self, data_dir: &Path) -> Result<(), Error> {
        let path = Pinned::path_in(data_dir);
        let err = |e: std::io::Error| Error::Tls(format!("{}: {e}", path.display()));
        let tmp = path.with_extension("pem.tmp");
        std::fs::write(&tmp, &self.pem).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        Ok(())
    }

    /// Number of certificates trusted.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Never true for a parsed pin.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        let mut b = base_builder()
            .tls_built_in_root_certs(false)
            .https_only(true);
        for c in &self.certs {
            b = b.add_root_certificate(c.clone());
        }
        b
    }
}

fn base_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(15))
}

/// An error with its causes (reqwest's builder errors keep the reason in the source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

impl Client {
    /// `base` is the server's root URL (`https://host:port`; `http://` only without a pin).
    /// With `pin`, the client trusts only the pinned certificates.
    pub fn new(base: &str, token: Option<String>, pin: Option<&Pinned>) -> Result<Client, Error> {
        let base = base.trim().trim_end_matches('/').to_owned();
        let http = match pin {
            Some(p) => {
                if !base.starts_with("https://") {
                    return Err(Error::Tls(format!(
                        "the server certificate is pinned, so the server URL must be https:// \
                         (got {base})"
                    )));
                }
                p.builder().build()
            }
            None => base_builder().build(),
        }
        .map_err(|e| Error::Tls(chain(&e)))?;
        Ok(Client { http, base, token })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, Error> {
        let token = self.token.as_deref().ok_or(Error::NotRegistered)?;
        Ok(rb.bearer_auth(token))
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, Error> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(ErrorBody { error: e })
                if status == StatusCode::CONFLICT && e.code == "duplicate_face" =>
            {
                if let Some(other) = e.duplicate_of {
                    return Err(Error::DuplicateFace {
                        other,
                        message: e.message,
                    });
                }
                (e.code, e.message)
            }
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => ("http".to_owned(), text.chars().take(200).collect()),
        };
        Err(Error::Status {
            status,
            code,
            message,
        })
    }

    async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, Error> {
        Ok(Self::check(resp).await?.json().await?)
    }

    /// `POST /kiosks/enrol`: registers this device and its public key with a one-time code.
    pub async fn enrol(&self, code: &str, public_key: &str) -> Result<KioskCreated, Error> {
        let resp = self
            .http
            .post(self.url("/kiosks/enrol"))
            .json(&KioskEnrol {
                code: code.into(),
                public_key: public_key.into(),
            })
            .send()
            .await?;
        Self::json(resp).await
    }

    /// `GET /kiosk/sync?since=`.
    pub async fn sync(&self, since: i64) -> Result<SyncResponse, Error> {
        let rb = self
            .http
            .get(self.url("/kiosk/sync"))
            .query(&[("since", since)]);
        Self::json(self.authed(rb)?.send().await?).await
    }

    /// `POST /settlements`.
    pub async fn settle(&self, items: Vec<SettlementItem>) -> Result<BatchResult, Error> {
        let rb = self
            .http
            .post(self.url("/settlements"))
            .json(&SettlementBatch { items });
        Self::json(self.authed(rb)?.send().await?).await
    }

    /// `PUT /residents/{id}/templates`.
    pub async fn put_templates(&self, id: ResidentId, up: &TemplateUpload) -> Result<(), Error> {
        let rb = self
            .http
            .put(self.url(&format!("/residents/{}/templates", id.0)))
            .json(up);
        Self::check(self.authed(rb)?.send().await?).await?;
        Ok(())
    }

    /// `DELETE /residents/{id}/templates`: the answer names the server's cursor of the deletion.
    pub async fn delete_templates(&self, id: ResidentId) -> Result<TemplatesDeleted, Error> {
        let rb = self
            .http
            .delete(self.url(&format!("/residents/{}/templates", id.0)));
        Self::json(self.authed(rb)?.send().await?).await
    }

    /// `POST /kiosk/rotate`: hands over to a new key pair; the answer holds the new token.
    pub async fn rotate(&self, r: &KeyRotation) -> Result<KeyRotated, Error> {
        let rb = self.http.post(self.url("/kiosk/rotate")).json(r);
        Self::json(self.authed(rb)?.send().await?).await
    }

    /// `POST /kiosk/heartbeat`.
    pub async fn heartbeat(&self, h: &Heartbeat) -> Result<(), Error> {
        let rb = self.http.post(self.url("/kiosk/heartbeat")).json(h);
        Self::check(self.authed(rb)?.send().await?).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(FIXTURES).join(name)).expect("TLS fixture")
    }

    fn ring() {
        // two rustls providers are linked into the tests (ring via reqwest, aws-lc-rs via
        // fantoccini): pick ring like the binary does
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    #[test]
    fn a_pinned_ca_builds_an_https_only_client() {
        ring();
        let pin = Pinned::parse(&fixture("ca.pem")).expect("CA");
        assert_eq!(pin.len(), 1);
        Client::new("https://127.0.0.1:8443/", Some("t".into()), Some(&pin)).expect("client");
        let e = Client::new("http://127.0.0.1:8080", None, Some(&pin)).expect_err("plain http");
        assert!(e.to_string().contains("https://"), "{e}");
        // a bundle (CA and server certificate) is fine too
        let mut bundle = fixture("ca.pem");
        bundle.extend(fixture("server.pem"));
        assert_eq!(Pinned::parse(&bundle).expect("bundle").len(), 2);
    }

    #[test]
    fn garbage_pem_is_refused_with_the_reason() {
        ring();
        for (what, pem) in [
            ("empty", b"".to_vec()),
            (
                "no certificate",
                b"hello, this is not a certificate".to_vec(),
            ),
            (
                "bad base64",
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_vec(),
            ),
            (
                "not X.509",
                b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"
                    .to_vec(),
            ),
            ("a private key", fixture("server.key")),
        ] {
            let e = Pinned::parse(&pem).expect_err(what);
            assert!(matches!(e, Error::Tls(_)), "{what}: {e}");
            assert!(!e.is_transient(), "{what}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Pinned::read(&dir.path().join("missing.pem")).expect_err("missing");
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }

    /// A real HTTPS endpoint with a fixture certificate and key that answers every request
    /// `204 No Content`; returns its https URL.
    async fn https_server(cert: &str, key: &str) -> String {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        ring();
        let certs = CertificateDer::pem_slice_iter(&fixture(cert))
            .collect::<Result<Vec<_>, _>>()
            .expect("server cert");
        let key = PrivateKeyDer::from_pem_slice(&fixture(key)).expect("server key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("https://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = tls
                        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        url
    }

    fn beat() -> Heartbeat {
        Heartbeat {
            outbox_backlog: 0,
            software_version: "test".into(),
            model_version: "m".into(),
            last_sync_cursor: None,
            match_threshold: None,
            liveness_threshold: None,
        }
    }

    #[tokio::test]
    async fn only_the_pinned_ca_is_trusted_over_real_https() {
        let url = https_server("server.pem", "server.key").await;
        let t = Some("token".to_owned());
        // pinned to the CA that signed the server's certificate: the request goes through
        let ca = Pinned::parse(&fixture("ca.pem")).expect("CA");
        Client::new(&url, t.clone(), Some(&ca))
            .expect("client")
            .heartbeat(&beat())
            .await
            .expect("the pinned CA is trusted");
        // a self-signed server certificate (the demo's) is pinned as itself
        let demo = https_server("self-signed.pem", "self-signed.key").await;
        let own = Pinned::parse(&fixture("self-signed.pem")).expect("cert");
        Client::new(&demo, t.clone(), Some(&own))
            .expect("client")
            .heartbeat(&beat())
            .await
            .expect("the pinned self-signed certificate is trusted");
        let e = Client::new(&demo, t.clone(), Some(&ca))
            .expect("client")
            .heartbeat(&beat())
            .await
            .expect_err("the CA did not sign the demo's certificate");
        assert!(matches!(e, Error::Transport(_)), "{e}");
        // pinned to another CA: the handshake fails (retryable as a transport error)
        let other = Pinned::parse(&fixture("other-ca.pem")).expect("other CA");
        let e = Client::new(&url, t.clone(), Some(&other))
            .expect("client")
            .heartbeat(&beat())
            .await
            .expect_err("an unpinned certificate is refused");
        assert!(matches!(e, Error::Transport(_)), "{e}");
        // and without a pin the public roots do not know the test CA either
        let e = Client::new(&url, t, None)
            .expect("client")
            .heartbeat(&beat())
            .await
            .expect_err("unknown CA");
        assert!(matches!(e, Error::Transport(_)), "{e}");
    }

    #[test]
    fn the_pin_is_kept_in_the_data_folder() {
        ring();
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(Pinned::load(dir.path()).expect("none").is_none());
        Pinned::parse(&fixture("ca.pem"))
            .expect("CA")
            .save(dir.path())
            .expect("save");
        assert_eq!(
            std::fs::read(Pinned::path_in(dir.path())).expect("read"),
            fixture("ca.pem")
        );
        assert_eq!(
            Pinned::load(dir.path()).expect("load").expect("pin").len(),
            1
        );
        std::fs::write(Pinned::path_in(dir.path()), b"junk").expect("write");
        assert!(
            Pinned::load(dir.path()).is_err(),
            "a damaged pin is an error, not no pin"
        );
    }
}
