//! The Zhucan server: residents, canteens, kiosks, subsidy policy, settlement ingestion, daily
//! tallies and monthly statements, over an HTTP JSON API backed by SQLite.
//!
//! Layers, outside in: [`http`] (routes, extractors, errors) → [`ingest`], [`corrections`],
//! [`reports`], [`sync`], [`templates`] (the use cases, calling the pure `zhucan_domain`) → [`db`] (all SQL).
//! [`run`] serves on a given listener so tests start the real server on port 0.

// The hand-built OpenAPI document is one large `serde_json::json!` literal.
#![recursion_limit = "512"]

pub mod accounts;
pub mod ageing;
pub mod audit;
pub mod bench;
pub mod config;
pub mod corrections;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod face_data;
pub mod flags;
pub mod http;
pub mod import;
pub mod ingest;
pub mod kiosks;
pub mod lookalikes;
pub mod migrate_db;
pub mod period;
pub mod push;
pub mod reports;
pub mod residents;
pub mod spot_checks;
pub mod sync;
pub mod templates;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{Clock, Config};
use crate::db::Db;
use crate::http::AppState;

/// Opens the database (migrating it) and serves the API on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let db = Db::open_at(&config.db, &config.index_key.0, clock.now())
        .await
        .map_err(std::io::Error::other)?;
    serve(db, config, clock, listener, shutdown).await
}

/// Serves an already opened database over plain HTTP (tests, or behind a TLS-terminating proxy).
pub async fn serve(
    db: Db,
    config: Config,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(db, config, clock, listener, shutdown, None).await
}

/// Serves an already opened database, over HTTPS when `tls` is given.
pub async fn serve_with(
    db: Db,
    config: Config,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<()> {
    let pusher = config
        .push
        .clone()
        .map(|p| tokio::spawn(push::run(db.clone(), p, clock.clone())));
    let state = AppState::new(db, config, clock);
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let out = match tls {
        None => {
            tracing::info!(addr = %listener.local_addr()?, "listening");
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            tracing::info!(addr = %listener.local_addr()?, "listening (https)");
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(tls);
            axum_server::from_tcp_rustls(listener.into_std()?, rustls)?
                .handle(handle)
                .serve(app)
                .await
        }
    };
    if let Some(p) = pusher {
        p.abort();
    }
    out
}

/// A server running in the background (tests, the bench).
#[derive(Debug)]
pub struct Spawned {
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub db: Db,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Spawned {
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Opens the database and starts the server on `config.listen` (use port 0 for a free port).
pub async fn spawn(config: Config, clock: Arc<dyn Clock>) -> std::io::Result<Spawned> {
    spawn_with(config, clock, None).await
}

/// [`spawn`], over HTTPS with the given certificate and key.
pub async fn spawn_tls(
    config: Config,
    clock: Arc<dyn Clock>,
    tls: &tls::TlsFiles,
) -> std::io::Result<Spawned> {
    let cfg = tls::server_config(tls).map_err(std::io::Error::other)?;
    spawn_with(config, clock, Some(cfg)).await
}

async fn spawn_with(
    config: Config,
    clock: Arc<dyn Clock>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Spawned> {
    let db = Db::open_at(&config.db, &config.index_key.0, clock.now())
        .await
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let d = db.clone();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shutdown = async move {
        let _ = rx.await;
    };
    let task = tokio::spawn(serve_with(d, config, clock, listener, shutdown, tls));
    Ok(Spawned {
        addr,
        scheme,
        db,
        stop: Some(tx),
        task,
    })
}
