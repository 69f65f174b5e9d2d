//! The kiosk's HTTP client of the server (`/api/v1`), with the kiosk's bearer token.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use zhucan_domain::ResidentId;
use zhucan_domain::api::{
    BatchResult, ErrorBody, Heartbeat, KioskCreated, KioskEnrol, SettlementBatch, SettlementItem,
    SyncResponse, TemplateUpload,
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
    #[error("the kiosk is not registered: run `zhucan-kiosk enrol-kiosk` first")]
    NotRegistered,
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
            Error::NotRegistered => false,
        }
    }
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
    /// `base` is the server's root URL (`http://host:port`).
    pub fn new(base: &str, token: Option<String>) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
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

    /// `DELETE /residents/{id}/templates`.
    pub async fn delete_templates(&self, id: ResidentId) -> Result<(), Error> {
        let rb = self
            .http
            .delete(self.url(&format!("/residents/{}/templates", id.0)));
        Self::check(self.authed(rb)?.send().await?).await?;
        Ok(())
    }

    /// `POST /kiosk/heartbeat`.
    pub async fn heartbeat(&self, h: &Heartbeat) -> Result<(), Error> {
        let rb = self.http.post(self.url("/kiosk/heartbeat")).json(h);
        Self::check(self.authed(rb)?.send().await?).await?;
        Ok(())
    }
}
