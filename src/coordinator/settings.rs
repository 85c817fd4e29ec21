//! What the core is configured with: the product, the forward method, and the
//! settings of replication, Sentinel, proxy leases and slot migration.

use std::time::Duration;

use super::{proxies, slot_actions};
use crate::model::ForwardMethod;

/// Settings the core needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The product coordinated.
    pub product: String,
    /// How proxies serve migrating keys (part of every slot view).
    pub method: ForwardMethod,
    /// Replication and high-availability settings.
    pub ha: HaSettings,
    /// Proxy lease and barrier settings.
    pub proxy: proxies::ProxySettings,
    /// Slot migration settings.
    pub migration: slot_actions::MigrationSettings,
}

/// Replication, promote and Sentinel settings.
#[derive(Debug, Clone)]
pub struct HaSettings {
    /// The Redis password (`auth-pass` for the Sentinels).
    pub product_auth: String,
    /// Deadline of one SLAVEOF transaction.
    pub sync_timeout: Duration,
    /// How long a sync action waits for a replica's link to come up.
    pub sync_link_timeout: Duration,
    /// How long a promote waits for the replica to get close to the master.
    pub promote_catchup_timeout: Duration,
    /// The longest a promote pauses writes on the old master.
    pub promote_max_write_pause: Duration,
    /// Sentinel settings.
    pub sentinel: SentinelSettings,
}

/// What `SENTINEL MONITOR` / `SENTINEL SET` are given.
#[derive(Debug, Clone)]
pub struct SentinelSettings {
    /// Deadline of sentinel admin operations.
    pub client_timeout: Duration,
    /// `monitor` quorum.
    pub quorum: u32,
    /// `parallel-syncs`.
    pub parallel_syncs: u32,
    /// `down-after-milliseconds`.
    pub down_after: Duration,
    /// `failover-timeout`.
    pub failover_timeout: Duration,
    /// `notification-script` (when non-empty).
    pub notification_script: String,
    /// `client-reconfig-script` (when non-empty).
    pub client_reconfig_script: String,
}
