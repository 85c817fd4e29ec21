//! Talking to Redis servers: connections with deadlines, INFO parsing, the
//! add-server probe. The coordinator uses the [`RedisAdmin`] trait; `server` wires in
//! [`Connector`], the real implementation.

mod conn;
mod info;
mod pool;
mod resp;
mod stats;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

pub use conn::Connector;
pub use info::parse_info;
pub use pool::Pool;
pub use resp::{Limits, RespConn, Value};
pub use stats::PooledProbe;

use crate::model::{InfoMap, SentinelReport, ServerKind};

/// Errors talking to one Redis server; each names the address.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    /// TCP connect failed or the connection broke.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The server.
        addr: String,
        /// The cause.
        reason: String,
    },
    /// The server refused our password (`product_auth`).
    #[error("authentication to {addr} failed: {reason}")]
    Auth {
        /// The server.
        addr: String,
        /// The server's reply.
        reason: String,
    },
    /// No answer within the deadline.
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout {
        /// The server.
        addr: String,
        /// The deadline.
        timeout: Duration,
    },
    /// An error reply or an unexpected answer.
    #[error("{addr}: {reason}")]
    Reply {
        /// The server.
        addr: String,
        /// The reply.
        reason: String,
    },
    /// The server is not a version or kind topom supports.
    #[error("{addr} is not supported: {reason}")]
    Unsupported {
        /// The server.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// Probes for the stats refresh task. Implementations reuse connections per
/// address (a broken one is never reused) and bound each call by `timeout`,
/// connect included.
#[async_trait]
pub trait StatsProbe: Send + Sync {
    /// `INFO` (all sections) of a group server, authenticating with `product_auth`.
    async fn server_info(&self, addr: &str, timeout: Duration) -> Result<InfoMap, RedisError>;
    /// `INFO` of a Sentinel plus what it monitors for `product` (names
    /// `<product>-<gid>`): `SENTINEL masters`, then `SENTINEL replicas <name>` for
    /// each of the product's names. Sentinels take no password.
    async fn sentinel_info(
        &self,
        addr: &str,
        product: &str,
        timeout: Duration,
    ) -> Result<SentinelReport, RedisError>;
}

/// The Redis operations the coordinator needs.
#[async_trait]
pub trait RedisAdmin: Send + Sync {
    /// Checks that `addr` answers and is plain Redis ≥ 6.2 or codis-server.
    async fn probe(&self, addr: &str) -> Result<ServerKind, RedisError>;
    /// `INFO` (all sections) of `addr`, plus `master_addr` when it replicates and
    /// `maxmemory` from `CONFIG GET`.
    async fn server_info(&self, addr: &str) -> Result<BTreeMap<String, String>, RedisError>;
}
