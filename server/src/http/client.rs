//! The client of a request: its TCP peer address. A leaf module: the guard (limits per client)
//! and the dashboard's session (the log-in record) both read it.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::Extensions;

/// The TCP peer of the request, when the server was started with connect info.
pub fn addr(ext: &Extensions) -> Option<SocketAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
