//! Talking to Redis servers and Sentinels. The coordinator sees only the traits
//! here ([`RedisAdmin`], [`StatsProbe`], [`HaAdmin`], [`Migrator`]); `server`
//! wires in the real implementations.
//!
//! Every conversation runs on the `redis` crate:
//!
//! ```text
//! admin (add-server probe, GetServerInfo)  stats (INFO rounds)
//! ha ─► replication (SLAVEOF, roles)        migrate (MIGRATE), codis (SLOTSMGRT*)
//!    └► sentinel (SENTINEL *, +switch-master subscriptions)
//!          │ all of them
//!          ▼
//! pool (idle connections per address) ─► dial::Dialer (AUTH, connect deadline)
//!          ▼
//! client::Conn (one exchange at a time; the one error classifier)
//!          ▼
//! redis crate (packed commands, reply parser, pub/sub) ─► budget (bytes per reply)
//! ```
//!
//! `reply` holds the [`Value`] callers match on and shared decoders; `info`
//! parses INFO text. `throttle` is the keys/s and bytes/s bucket both
//! migrators take a batch's cost from before sending it.

mod admin;
mod budget;
mod client;
mod codis;
mod dial;
mod ha;
mod info;
mod migrate;
mod pool;
mod replication;
mod reply;
mod sentinel;
mod stats;
mod throttle;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

pub use admin::Connector;
pub use client::Conn;
pub use codis::{CodisMigrator, CodisMode};
pub use dial::Dialer;
pub use ha::PooledHa;
pub use info::parse_info;
pub use migrate::PlainMigrator;
pub use pool::Pool;
pub use reply::Value;
pub use stats::PooledProbe;
pub use throttle::{BURST, Cost, Limits, Throttle};

use crate::model::{Info, InfoMap, SentinelReport, ServerKind};

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
    /// Something answers at the address, but not in Redis's protocol (an HTTP
    /// or gRPC port, etcd, ...).
    #[error("not a Redis server at {addr} (it answered {answer})")]
    NotRedis {
        /// The address.
        addr: String,
        /// The start of what it sent back, printable, or what it did instead.
        answer: String,
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

/// Who answered a probe: enough to tell one Redis server known under two
/// spellings of its address (`localhost:P` and `127.0.0.1:P`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// Plain Redis or codis-server.
    pub kind: ServerKind,
    /// `run_id` from `INFO server`: one per server process.
    pub run_id: String,
    /// The socket addresses the probed address resolves to.
    pub resolved: Vec<std::net::SocketAddr>,
}

/// Whether a SetMaster transaction's change also went to the server's config
/// file: two facts, since a server started without one replicates all the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persisted {
    /// CONFIG REWRITE succeeded.
    Yes,
    /// CONFIG REWRITE failed with this text: the change is lost at the server's
    /// next restart.
    No(String),
}

/// Probes for the stats refresh task. Implementations reuse connections per
/// address (a broken one is never reused) and bound each call by `timeout`,
/// connect included.
#[async_trait]
pub trait StatsProbe: Send + Sync {
    /// `INFO` of a group server (the sections configured), authenticating with
    /// `product_auth`.
    async fn server_info(&self, addr: &str, timeout: Duration) -> Result<Info, RedisError>;
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

/// A `+switch-master` announcement from a Sentinel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchMaster {
    /// The monitoring name (`<product>-<gid>`).
    pub name: String,
    /// The old master, `ip:port`.
    pub old: String,
    /// The new master, `ip:port`.
    pub new: String,
}

/// What a Sentinel is told to monitor.
#[derive(Debug, Clone, Copy)]
pub struct MonitorSpec<'a> {
    /// The monitoring name (`<product>-<gid>`).
    pub name: &'a str,
    /// The master's IP (Sentinel needs an IP).
    pub master_ip: &'a str,
    /// The master's port.
    pub master_port: u16,
    /// Sentinels that must agree the master is down.
    pub quorum: u32,
    /// `SENTINEL SET` pairs, in order.
    pub settings: &'a [(String, String)],
}

/// A subscription to a Sentinel's `+switch-master` channel.
#[async_trait]
pub trait SwitchStream: Send {
    /// The next announcement; an error means the subscription is gone (the caller
    /// resubscribes with backoff).
    async fn next(&mut self) -> Result<SwitchMaster, RedisError>;
}

/// Replication and Sentinel operations (issue: replication and high availability).
/// Group servers are reached with `product_auth`; Sentinels without a password.
/// Every call is bounded by `timeout`, connect included.
#[async_trait]
pub trait HaAdmin: Send + Sync {
    /// The SetMaster transaction on `addr`: `MULTI`, `CONFIG SET masterauth
    /// <product_auth>`, `SLAVEOF <host> <port>` (or `SLAVEOF NO ONE` when `master`
    /// is `None`), `CONFIG REWRITE`, `CLIENT KILL TYPE normal`, `EXEC`. An error
    /// inside EXEC fails the call with Redis's text, except that of CONFIG
    /// REWRITE: replication switched all the same (Redis does not roll a
    /// transaction back), so that one comes back as [`Persisted::No`].
    async fn set_master(
        &self,
        addr: &str,
        master: Option<&str>,
        timeout: Duration,
    ) -> Result<Persisted, RedisError>;
    /// `INFO replication` of `addr`.
    async fn replication(&self, addr: &str, timeout: Duration) -> Result<InfoMap, RedisError>;
    /// `CLIENT PAUSE <ms> WRITE` on `addr`.
    async fn pause_writes(
        &self,
        addr: &str,
        pause: Duration,
        timeout: Duration,
    ) -> Result<(), RedisError>;
    /// `CLIENT UNPAUSE` on `addr`.
    async fn unpause(&self, addr: &str, timeout: Duration) -> Result<(), RedisError>;
    /// Checks that `addr` is a Sentinel (`SENTINEL FLUSHCONFIG`).
    async fn sentinel_probe(&self, addr: &str, timeout: Duration) -> Result<(), RedisError>;
    /// `SENTINEL MASTERS` of a Sentinel, each entry as a field map.
    async fn sentinel_masters(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Vec<BTreeMap<String, String>>, RedisError>;
    /// Removes monitoring name `name` if the Sentinel knows it
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`, then `SENTINEL REMOVE`); whether it
    /// existed.
    async fn sentinel_remove(
        &self,
        addr: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<bool, RedisError>;
    /// `SENTINEL MONITOR <name> <ip> <port> <quorum>`, then `SENTINEL SET <name>
    /// <key> <value>` for each setting, in order. Errors name the command.
    async fn sentinel_monitor(
        &self,
        addr: &str,
        spec: &MonitorSpec<'_>,
        timeout: Duration,
    ) -> Result<(), RedisError>;
    /// Subscribes to `+switch-master` on a Sentinel.
    async fn subscribe_switch_master(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Box<dyn SwitchStream>, RedisError>;
}

/// Settings of one migration pass.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Keys per `MIGRATE ... KEYS` batch.
    pub batch_keys: usize,
    /// `SCAN ... COUNT` hint.
    pub scan_count: usize,
    /// Values estimated above this many bytes are migrated alone, and timed.
    pub big_value_bytes: u64,
    /// Timeout of one MIGRATE (Redis's own timeout argument and our deadline).
    pub timeout: Duration,
    /// Pause between batches (the slot-action interval).
    pub interval: Duration,
    /// Shared by every pass of the engine: each batch takes its cost from it
    /// before it is sent (`Throttle::default()`: unlimited).
    pub throttle: Throttle,
}

/// What one pass did for one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotPass {
    /// Keys moved in this pass.
    pub moved: u64,
    /// Approximate bytes moved in this pass.
    pub bytes: u64,
    /// Keys of the slot found on the source in this pass.
    pub found: u64,
    /// Keys found but not moved in this pass (they stay for the next one). A
    /// complete pass with `left == 0` empties the slot on the source: under the
    /// proxy contract no key of a migrating slot is written to the source, and
    /// SCAN returns every key present for the whole pass.
    pub left: u64,
    /// Keys found on both sides: the target's copy is newer and was kept, the
    /// source's deleted. Reported, never overwritten.
    pub conflicts: Vec<String>,
    /// Big values migrated alone: (key, bytes, milliseconds).
    pub big_values: Vec<(String, u64, u64)>,
}

/// Moves the keys of migrating slots (plain Redis: `PlainMigrator`;
/// codis-server: `CodisMigrator`).
#[async_trait]
pub trait Migrator: Send + Sync {
    /// One full pass over every database of `source` that holds keys (`INFO
    /// keyspace`), moving the keys whose slot is in `moves` (slot → target master
    /// address); on plain Redis with `MIGRATE <host> <port> "" <db> <timeout>
    /// [AUTH pw] KEYS ...` (never `REPLACE`). `progress` is called after every
    /// batch with the slots' running totals. A slot is done when a complete pass
    /// reports `left == 0` for it.
    async fn migrate_pass(
        &self,
        source: &str,
        moves: &BTreeMap<u32, String>,
        opts: &MigrateOptions,
        // `for<'p>` spelled out: `#[async_trait]` would otherwise name the
        // elided lifetime as a method parameter, and no impl could pass it a
        // reference to its own running totals.
        progress: &(dyn for<'p> Fn(&'p BTreeMap<u32, SlotPass>) + Send + Sync),
    ) -> Result<BTreeMap<u32, SlotPass>, RedisError>;
}

/// The Redis operations the coordinator needs.
#[async_trait]
pub trait RedisAdmin: Send + Sync {
    /// Checks that `addr` answers and is plain Redis ≥ 6.2 or codis-server, and
    /// says which server it is. The whole probe, connect included, is bounded by
    /// one deadline.
    async fn probe(&self, addr: &str) -> Result<ServerIdentity, RedisError>;
    /// The socket addresses `addr` resolves to (none when it does not resolve
    /// within the deadline).
    async fn resolve(&self, addr: &str) -> Vec<std::net::SocketAddr>;
    /// `INFO` (all sections) of `addr`, plus `master_addr` when it replicates and
    /// `maxmemory` from `CONFIG GET`.
    async fn server_info(&self, addr: &str) -> Result<BTreeMap<String, String>, RedisError>;
}
