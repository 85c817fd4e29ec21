//! Talking to unmodified codis-proxy processes over their HTTP admin API. The
//! coordinator sees only [`CodisProxyApi`]; `server` wires in [`HttpCodisProxies`].
//!
//! ```text
//! CodisProxyApi (model, xping, fillslots, start, sentinels, stats, shutdown)
//!        │ HttpCodisProxies
//!        ▼
//! wire (Codis JSON: Slot, Sentinel, Stats, RemoteError) + xauth
//!        ▼
//! http (one HTTP/1.1 exchange per call on hyper: connect deadline, request
//!       deadline, response byte budget)
//! ```
//!
//! Facts this relies on (Codis 3.2 `pkg/proxy/proxy_api.go`, `pkg/utils/rpc`):
//! every `/api/proxy/*` call but `model` carries the xauth in its path; success
//! is HTTP 200 with an indented JSON body; a refusal is HTTP 800 with
//! `{"Cause": ..., "Stack": ...}`.

mod http;
mod wire;

use std::time::Duration;

use async_trait::async_trait;

pub use http::HttpCodisProxies;
pub use wire::{xauth, xauth_of};

use crate::model::{Proxy, Sentinel, SlotView};

/// Errors talking to one codis-proxy; each names its admin address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodisProxyError {
    /// Nothing answered: the TCP connect failed or did not finish in time.
    #[error("cannot connect to codis-proxy admin {addr}: {reason}")]
    Unreachable {
        /// The admin address.
        addr: String,
        /// The connect error.
        reason: String,
    },
    /// Connected, but no complete answer in time (a stopped or overloaded
    /// process, or a broken connection).
    #[error("codis-proxy admin {addr} did not answer {call}: {reason}")]
    NoAnswer {
        /// The admin address.
        addr: String,
        /// The call, e.g. `PUT fillslots`.
        call: &'static str,
        /// Why (the deadline, or the I/O error).
        reason: String,
    },
    /// The proxy answered HTTP 800 with Codis's RemoteError: it refused the call.
    #[error("codis-proxy at {addr} refused {call}: {cause}")]
    Remote {
        /// The admin address.
        addr: String,
        /// The call.
        call: &'static str,
        /// The RemoteError's `Cause`.
        cause: String,
    },
    /// The answer is not what codis-proxy sends: another service on that port.
    #[error("{addr} is not a codis-proxy admin port: {call} answered {detail}")]
    NotCodis {
        /// The admin address.
        addr: String,
        /// The call.
        call: &'static str,
        /// What came back (status and the start of the body).
        detail: String,
    },
}

impl CodisProxyError {
    /// Whether the proxy could not be reached at all (as opposed to an answer).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            CodisProxyError::Unreachable { .. } | CodisProxyError::NoAnswer { .. }
        )
    }
}

/// What `GET /api/proxy/stats/XAUTH` reports (Codis `StatsSimple`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodisProxyStats {
    /// Whether the proxy was started (`PUT start`) and serves clients.
    pub online: bool,
    /// Whether it is shutting down.
    pub closed: bool,
    /// Commands served.
    pub ops_total: i64,
    /// Commands failed.
    pub ops_fails: i64,
    /// Backend errors.
    pub redis_errors: i64,
    /// Commands per second.
    pub ops_qps: i64,
    /// Sessions opened since start.
    pub sessions_total: i64,
    /// Sessions open now.
    pub sessions_alive: i64,
    /// Resident memory, bytes.
    pub rss_bytes: i64,
    /// CPU use.
    pub cpu: f64,
}

/// The calls topom makes to a codis-proxy's admin API. `admin` is its
/// `host:port`; `xauth` the token of (product, product_auth, proxy token).
#[async_trait]
pub trait CodisProxyApi: Send + Sync {
    /// `GET /api/proxy/model`: the proxy's record (no auth; this is how its
    /// token is learnt).
    async fn model(&self, admin: &str) -> Result<Proxy, CodisProxyError>;
    /// `GET /api/proxy/xping/XAUTH`: checks the xauth.
    async fn xping(&self, admin: &str, xauth: &str) -> Result<(), CodisProxyError>;
    /// `PUT /api/proxy/fillslots/XAUTH`: the slots as the proxy must serve them.
    async fn fillslots(
        &self,
        admin: &str,
        xauth: &str,
        slots: &[SlotView],
    ) -> Result<(), CodisProxyError>;
    /// `PUT /api/proxy/start/XAUTH`: the proxy starts serving clients.
    async fn start(&self, admin: &str, xauth: &str) -> Result<(), CodisProxyError>;
    /// `PUT /api/proxy/sentinels/XAUTH`: the Sentinels it watches for failovers.
    async fn sentinels(
        &self,
        admin: &str,
        xauth: &str,
        sentinel: &Sentinel,
    ) -> Result<(), CodisProxyError>;
    /// `GET /api/proxy/stats/XAUTH`, bounded by `timeout`.
    async fn stats(
        &self,
        admin: &str,
        xauth: &str,
        timeout: Duration,
    ) -> Result<CodisProxyStats, CodisProxyError>;
    /// `PUT /api/proxy/shutdown/XAUTH`: the proxy exits.
    async fn shutdown(&self, admin: &str, xauth: &str) -> Result<(), CodisProxyError>;
}
