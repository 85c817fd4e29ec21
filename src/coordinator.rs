//! The coordinator core: it owns the cached product records, validates and applies
//! every operation, and publishes the slot table. It knows nothing of gRPC nor of a
//! particular store backend.
//!
//! Every mutation follows one recipe ([`Coordinator::mutate`]): take the write
//! mutex → look at the cache → validate (pure) → build the new records → write them
//! to the store → only then update the cache and publish a new table revision.
//! Redis I/O (probes) happens before the write mutex is taken, so a slow server
//! never stalls other operations. A failed store write reloads the cache from the
//! store, so the cache never shows what was not written.

pub mod actions;
mod error;
pub mod events;
mod groups;
pub mod leases;
pub mod metrics;
pub mod promote;
pub mod proxies;
pub mod rebalance;
pub mod sentinels;
mod slots;
pub mod stats;
pub mod sync;
pub mod table;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
pub mod view;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

pub use error::{Error, Result};
pub use stats::StatsRound;
pub use table::SlotTable;

use crate::model::{
    ForwardMethod, Group, Proxy, Sentinel, SlotActionConfig, SlotMapping, SlotState, SyncState,
    TopomRecord,
};
use crate::redis::{HaAdmin, Migrator, RedisAdmin, StatsProbe};
use crate::store::{LockState, ProductData, Store, StoreBatch};

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
    pub migration: actions::MigrationSettings,
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

impl Default for HaSettings {
    fn default() -> Self {
        HaSettings {
            product_auth: String::new(),
            sync_timeout: Duration::from_secs(10),
            sync_link_timeout: Duration::from_secs(5),
            promote_catchup_timeout: Duration::from_secs(5),
            promote_max_write_pause: Duration::from_secs(1),
            sentinel: SentinelSettings {
                client_timeout: Duration::from_secs(10),
                quorum: 2,
                parallel_syncs: 1,
                down_after: Duration::from_secs(30),
                failover_timeout: Duration::from_secs(300),
                notification_script: String::new(),
                client_reconfig_script: String::new(),
            },
        }
    }
}

/// What the coordinator talks to.
pub struct Backends {
    /// The product's records.
    pub store: Store,
    /// Admin operations on Redis servers (probe, info).
    pub redis: Arc<dyn RedisAdmin>,
    /// Stats probes (pooled connections).
    pub probe: Arc<dyn StatsProbe>,
    /// Replication and Sentinel operations.
    pub ha: Arc<dyn HaAdmin>,
    /// Moves the keys of migrating slots between plain Redis masters.
    pub migrator: Arc<dyn Migrator>,
    /// Moves them when both masters are codis-server (slot commands).
    pub codis_migrator: Arc<dyn Migrator>,
}

/// The coordinator of one product.
pub struct Coordinator {
    settings: Settings,
    store: Store,
    redis: Arc<dyn RedisAdmin>,
    probe: Arc<dyn StatsProbe>,
    ha: Arc<dyn HaAdmin>,
    migrator: Arc<dyn Migrator>,
    codis_migrator: Arc<dyn Migrator>,
    /// Master switches and promotes.
    events: events::Events,
    /// Masters as the Sentinels last reported them.
    ha_masters: Mutex<BTreeMap<u32, String>>,
    /// Keeps promotes from interleaving.
    promote: tokio::sync::Mutex<()>,
    /// The last published tables, so a reconnecting proxy gets only the changes.
    history: Mutex<std::collections::VecDeque<Arc<SlotTable>>>,
    /// Proxies' stream state and leases (not stored).
    leases: leases::LeaseBook,
    /// The slot-action engine's runtime state.
    engine: actions::Engine,
    /// Signals the Sentinel watcher that the sentinel list changed.
    sentinels_changed: tokio::sync::Notify,
    /// Wakes the sync task when a mutation queued a sync action.
    sync_queued: tokio::sync::Notify,
    /// Wakes the slot-action task when a mutation queued a slot action.
    slots_queued: tokio::sync::Notify,
    /// The latest stats round.
    stats: watch::Sender<Arc<StatsRound>>,
    /// Keeps stats rounds from overlapping.
    refresh: tokio::sync::Mutex<()>,
    owner: TopomRecord,
    /// The records as last written; a std mutex, never held across `.await`.
    cache: Mutex<ProductData>,
    /// Serializes mutations across their store write (a tokio mutex: it is held
    /// across the store's `.await`, but never across Redis I/O).
    writes: tokio::sync::Mutex<()>,
    table: watch::Sender<Arc<SlotTable>>,
    lock_state: watch::Receiver<LockState>,
    /// What `/metrics` shows of the core's work.
    metrics: metrics::CoreMetrics,
}

/// What a mutation writes. Built by a pure validation step, then written in one
/// store batch.
#[derive(Debug, Default)]
pub(crate) struct Change {
    groups: Vec<Group>,
    removed_groups: Vec<u32>,
    slots: Vec<SlotMapping>,
    proxies: Vec<Proxy>,
    removed_proxies: Vec<String>,
    sentinel: Option<Sentinel>,
    slot_action: Option<SlotActionConfig>,
    /// Publish a new revision even if no view changed (an explicit resync).
    bump: bool,
}

impl Coordinator {
    /// Loads the product from `store` and starts serving it. `lock_state` follows
    /// the ownership lock: while it is not `Held`, every mutation is refused.
    pub async fn open(
        settings: Settings,
        backends: Backends,
        owner: TopomRecord,
        lock_state: watch::Receiver<LockState>,
    ) -> Result<Arc<Coordinator>> {
        let Backends {
            store,
            redis,
            probe,
            ha,
            migrator,
            codis_migrator,
        } = backends;
        let data = store.load().await?;
        let epoch: Arc<str> = new_epoch(&owner).into();
        let table = SlotTable::initial(epoch, &data.slots, &data.groups, settings.method);
        let table = Arc::new(table);
        let history = Mutex::new(std::collections::VecDeque::from([table.clone()]));
        let (table, _) = watch::channel(table);
        let leases = leases::LeaseBook::new(settings.proxy.lease_ttl);
        Ok(Arc::new(Coordinator {
            settings,
            store,
            redis,
            probe,
            ha,
            migrator,
            codis_migrator,
            events: events::Events::default(),
            ha_masters: Mutex::new(BTreeMap::new()),
            promote: tokio::sync::Mutex::new(()),
            sentinels_changed: tokio::sync::Notify::new(),
            sync_queued: tokio::sync::Notify::new(),
            slots_queued: tokio::sync::Notify::new(),
            history,
            leases,
            engine: actions::Engine::default(),
            stats: watch::channel(Arc::new(StatsRound::empty())).0,
            refresh: tokio::sync::Mutex::new(()),
            owner,
            cache: Mutex::new(data),
            writes: tokio::sync::Mutex::new(()),
            table,
            lock_state,
            metrics: metrics::CoreMetrics::default(),
        }))
    }

    /// The product name.
    pub fn product(&self) -> &str {
        &self.settings.product
    }

    /// The owner record of this instance.
    pub fn owner(&self) -> &TopomRecord {
        &self.owner
    }

    /// The configured forward method.
    pub fn method(&self) -> ForwardMethod {
        self.settings.method
    }

    /// Resolves when the list of Sentinels has changed since the last call.
    pub async fn sentinels_changed(&self) {
        self.sentinels_changed.notified().await;
    }

    /// Returns once a mutation has queued a sync action (at once if one did
    /// since the last call): the sync task starts it now, not at its next tick.
    pub async fn sync_queued(&self) {
        self.sync_queued.notified().await;
    }

    /// Returns once a mutation has queued a slot action (as [`Self::sync_queued`]).
    pub async fn slots_queued(&self) {
        self.slots_queued.notified().await;
    }

    /// Recent master changes, oldest first.
    pub fn events(&self) -> Vec<events::Event> {
        self.events.list()
    }

    /// Slot migration batches running now (promote waits for none).
    pub fn migrations_running(&self) -> u32 {
        self.engine.running()
    }

    /// The core's metrics (the edge registers and serves them).
    pub fn metrics(&self) -> &metrics::CoreMetrics {
        &self.metrics
    }

    /// Whether this instance holds its ownership lock (and so may write).
    pub fn is_online(&self) -> bool {
        *self.lock_state.borrow() == LockState::Held
    }

    /// The current slot table.
    pub fn table(&self) -> Arc<SlotTable> {
        self.table.borrow().clone()
    }

    /// Follows the slot table: the receiver sees every new revision.
    pub fn watch_table(&self) -> watch::Receiver<Arc<SlotTable>> {
        self.table.subscribe()
    }

    /// Every group, by id.
    pub fn groups(&self) -> BTreeMap<u32, Group> {
        self.cache().groups.clone()
    }

    /// Every registered proxy, by token.
    pub fn proxies(&self) -> BTreeMap<String, Proxy> {
        self.cache().proxies.clone()
    }

    /// The configured sentinels.
    pub fn sentinel(&self) -> Sentinel {
        self.cache().sentinel.clone()
    }

    /// The slot-action engine settings.
    pub fn slot_action_config(&self) -> SlotActionConfig {
        self.cache().slot_action
    }

    /// INFO of any Redis server (it need not be a group member).
    pub async fn server_info(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        check_addr(addr)?;
        Ok(self.redis.server_info(addr).await?)
    }

    /// Drops the cache and reloads every record from the store, publishing a new
    /// revision if anything changed.
    pub async fn reload(&self) -> Result<Arc<SlotTable>> {
        self.ensure_online()?;
        let _w = self.writes.lock().await;
        self.reload_locked().await?;
        Ok(self.table())
    }

    fn cache(&self) -> MutexGuard<'_, ProductData> {
        // A panic while holding the guard cannot leave the cache half-updated (it
        // is replaced field by field from validated values), so poisoning is moot.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ensure_online(&self) -> Result<()> {
        match *self.lock_state.borrow() {
            LockState::Held => Ok(()),
            LockState::Renewing => Err(Error::NotOnline(
                "the store is not answering, so this instance cannot renew its ownership lock; writes resume once a renewal succeeds".into(),
            )),
            LockState::Lost => Err(Error::NotOnline(
                "this instance lost its ownership lock on the store; it resumes when the lock is held again".into(),
            )),
        }
    }

    /// The mutation recipe: validate against the cache with `plan`, write what it
    /// returns, then update the cache and publish the table.
    pub(crate) async fn mutate<T>(
        &self,
        plan: impl FnOnce(&ProductData) -> Result<(Change, T)>,
    ) -> Result<T> {
        self.ensure_online()?;
        let _w = self.writes.lock().await;
        let (change, out) = plan(&self.cache())?;
        let mut batch = StoreBatch::default();
        for g in &change.groups {
            batch.put_group(g);
        }
        for id in &change.removed_groups {
            batch.delete_group(*id);
        }
        for m in &change.slots {
            batch.put_slot(m);
        }
        for p in &change.proxies {
            batch.put_proxy(p);
        }
        for t in &change.removed_proxies {
            batch.delete_proxy(t);
        }
        if let Some(s) = &change.sentinel {
            batch.put_sentinel(s);
        }
        if let Some(c) = &change.slot_action {
            batch.put_slot_action_config(c);
        }
        // Many plans change nothing (a task finding no work): not a write.
        let writes = !batch.is_empty();
        let started = std::time::Instant::now();
        let written = self.store.commit(batch).await;
        if writes {
            self.metrics.store_write(started.elapsed(), written.is_ok());
        }
        if let Err(e) = written {
            // Part of a batch may have landed (the local backend writes file by
            // file): make the cache tell the store's truth again.
            if let Err(reload) = self.reload_locked().await {
                tracing::error!(error = %reload, "reload after a failed write failed too");
            }
            return Err(e.into());
        }
        self.apply(change);
        Ok(out)
    }

    fn apply(&self, change: Change) {
        let queued_sync = change.groups.iter().any(|g| {
            g.servers.iter().any(|s| {
                s.action
                    .as_ref()
                    .is_some_and(|a| a.state == SyncState::Pending)
            })
        });
        let queued_slots = change
            .slots
            .iter()
            .any(|m| m.state() == Some(SlotState::Pending));
        // One task each: a permit stored while it is busy is not lost.
        if queued_sync {
            self.sync_queued.notify_one();
        }
        if queued_slots {
            self.slots_queued.notify_one();
        }
        let mut cache = self.cache();
        for g in change.groups {
            cache.groups.insert(g.id, g);
        }
        for id in change.removed_groups {
            cache.groups.remove(&id);
        }
        for m in change.slots {
            let id = m.id as usize;
            cache.slots[id] = m;
        }
        for p in change.proxies {
            cache.proxies.insert(p.token.clone(), p);
        }
        for t in change.removed_proxies {
            cache.proxies.remove(&t);
        }
        if let Some(s) = change.sentinel {
            if s.servers != cache.sentinel.servers {
                // One watcher: a stored permit is never lost.
                self.sentinels_changed.notify_one();
            }
            cache.sentinel = s;
        }
        if let Some(c) = change.slot_action {
            cache.slot_action = c;
        }
        self.publish(&cache, change.bump);
    }

    /// Publishes a new table revision when the slots or their views changed.
    fn publish(&self, data: &ProductData, bump: bool) {
        let current = self.table();
        let next = current.next(&data.slots, &data.groups, self.settings.method);
        let next = match (next, bump) {
            (Some(t), _) => t,
            (None, true) => current.bumped(),
            (None, false) => return,
        };
        tracing::debug!(revision = next.revision, "slot table published");
        let next = Arc::new(next);
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == table::HISTORY {
                h.pop_front();
            }
            h.push_back(next.clone());
        }
        self.table.send_replace(next);
    }

    async fn reload_locked(&self) -> Result<()> {
        let data = self.store.load().await?;
        let mut cache = self.cache();
        *cache = data;
        self.publish(&cache, false);
        Ok(())
    }
}

/// A fresh epoch per start: revisions restart at 1, so proxies must be able to tell
/// an old sequence from a new one.
fn new_epoch(owner: &TopomRecord) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", nanos, owner.pid)
}

fn check_addr(addr: &str) -> Result<()> {
    crate::model::validate_addr(addr).map_err(error::invalid)
}

fn check_group_id(id: u32) -> Result<()> {
    if id == 0 || id > crate::model::MAX_GROUP_ID {
        Err(error::invalid(format!(
            "invalid group id {id}: group ids are 1..=9999"
        )))
    } else {
        Ok(())
    }
}

fn check_slot_id(id: u32) -> Result<()> {
    if id as usize >= crate::model::MAX_SLOTS {
        Err(error::invalid(format!(
            "invalid slot id {id}: slot ids are 0..=1023"
        )))
    } else {
        Ok(())
    }
}
