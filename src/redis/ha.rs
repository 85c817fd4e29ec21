//! The real [`HaAdmin`]: [`PooledHa`] puts the replication part (group
//! servers, `redis/replication.rs`) and the Sentinel part (`redis/sentinel.rs`)
//! behind the one trait the coordinator uses.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::replication::Replication;
use super::sentinel::{MIN_HEARTBEAT, Sentinels};
use super::{HaAdmin, MonitorSpec, Persisted, RedisError, SwitchStream};
use crate::model::InfoMap;

/// How long a pooled connection may sit idle before it is dropped rather than
/// reused (Codis's HA pool: 5 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// [`HaAdmin`] over two pools: group servers with `product_auth`, Sentinels
/// without a password. SetMaster and subscriptions use their own connections.
/// `Debug` shows whether a password is set, never the password.
#[derive(Debug)]
pub struct PooledHa {
    replication: Replication,
    sentinels: Sentinels,
}

impl PooledHa {
    /// `product_auth` authenticates to group servers and becomes their
    /// `masterauth` (empty: none). Idle pooled connections expire after 5 s.
    pub fn new(product_auth: &str) -> PooledHa {
        PooledHa {
            replication: Replication::new(product_auth, IDLE_TIMEOUT),
            sentinels: Sentinels::new(IDLE_TIMEOUT),
        }
    }

    /// Replaces how long a `+switch-master` subscription may stay quiet before
    /// it sends a `PING` (default 10 s). A missing answer within the
    /// subscribe `timeout` ends the subscription with an error. Values below
    /// 50 ms are raised to 50 ms.
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> PooledHa {
        self.sentinels.heartbeat = heartbeat.max(MIN_HEARTBEAT);
        self
    }

    /// Drops stale idle connections in both pools; for the owner's janitor.
    pub fn evict_idle(&self) {
        self.replication.pool().evict_idle();
        self.sentinels.pool().evict_idle();
    }

    /// Idle connections held, over both pools.
    pub fn idle_count(&self) -> usize {
        self.replication.pool().idle_count() + self.sentinels.pool().idle_count()
    }
}

#[async_trait]
impl HaAdmin for PooledHa {
    async fn set_master(
        &self,
        addr: &str,
        master: Option<&str>,
        timeout: Duration,
    ) -> Result<Persisted, RedisError> {
        self.replication.set_master(addr, master, timeout).await
    }

    async fn replication(&self, addr: &str, timeout: Duration) -> Result<InfoMap, RedisError> {
        self.replication.replication(addr, timeout).await
    }

    async fn pause_writes(
        &self,
        addr: &str,
        pause: Duration,
        timeout: Duration,
    ) -> Result<(), RedisError> {
        self.replication.pause_writes(addr, pause, timeout).await
    }

    async fn unpause(&self, addr: &str, timeout: Duration) -> Result<(), RedisError> {
        self.replication.unpause(addr, timeout).await
    }

    async fn sentinel_probe(&self, addr: &str, timeout: Duration) -> Result<(), RedisError> {
        self.sentinels.probe(addr, timeout).await
    }

    async fn sentinel_masters(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Vec<BTreeMap<String, String>>, RedisError> {
        self.sentinels.masters(addr, timeout).await
    }

    async fn sentinel_remove(
        &self,
        addr: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<bool, RedisError> {
        self.sentinels.remove(addr, name, timeout).await
    }

    async fn sentinel_monitor(
        &self,
        addr: &str,
        spec: &MonitorSpec<'_>,
        timeout: Duration,
    ) -> Result<(), RedisError> {
        self.sentinels.monitor(addr, spec, timeout).await
    }

    async fn subscribe_switch_master(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Box<dyn SwitchStream>, RedisError> {
        self.sentinels.subscribe(addr, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", PooledHa::new("s3cret"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
