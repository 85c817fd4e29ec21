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
//!
//! # Layout
//!
//! | file            | holds                                                          |
//! |-----------------|----------------------------------------------------------------|
//! | this one        | [`Coordinator`] and its parts, `open`, the mutation recipe     |
//! | `settings`      | what the core is configured with                               |
//! | `groups`        | groups and their servers                                       |
//! | `slots`         | slot assignment and queueing slot actions                      |
//! | `slot_actions`  | the slot-action engine (pending → … → done); in `progress`,    |
//! |                 | what each migrating slot reports (speed, ETA, stalls)          |
//! | `rebalance`     | the pure rebalance planner                                     |
//! | `sync`          | sync actions (SLAVEOF transactions)                            |
//! | `promote`       | planned switchover to a replica                                |
//! | `sentinels`     | Sentinel admin and applying the masters they report            |
//! | `events`        | the history of master changes, and the HA parts                |
//! | `leadership`    | leader or standby, taking over, following the store, resigning |
//! | `proxies`       | proxy registration, per-proxy table updates, the barrier       |
//! | `codis_proxies` | adding/removing unmodified codis-proxies (driven over HTTP)    |
//! | `leases`        | the lease book: nonces, acks, leases (pure, tokio's clock)     |
//! | `table`         | the published slot table and its recent history                |
//! | `view`          | the slot view a proxy serves (replica buckets, methods)        |
//! | `stats`         | stats rounds                                                   |
//! | `metrics`       | what `/metrics` shows of the core                              |
//! | `error`         | the core's error                                               |
//! | `testing`       | (tests only) fakes of the backends and a test harness          |
//! | `tests/`        | (tests only) in-process tests over those fakes, paused time    |

mod codis_proxies;
mod error;
pub mod events;
mod groups;
mod leadership;
pub mod leases;
pub mod metrics;
pub mod promote;
pub mod proxies;
pub mod rebalance;
pub mod sentinels;
mod settings;
pub mod slot_actions;
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

use tokio::sync::watch;

pub use error::{Error, ErrorCode, Result};
pub use leadership::Role;
pub use settings::{HaSettings, SentinelSettings, Settings};
pub use slots::Move;
pub use stats::StatsRound;
pub use table::SlotTable;

use crate::codis_proxy::CodisProxyApi;
use crate::model::{
    ForwardMethod, Group, Proxy, Sentinel, SlotActionConfig, SlotMapping, SlotState, SyncState,
    TopomRecord,
};
use crate::redis::{HaAdmin, Migrator, RedisAdmin, StatsProbe};
use crate::store::{LockState, ProductData, Store, StoreBatch};

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
    /// The admin API of unmodified codis-proxies.
    pub codis_proxies: Arc<dyn CodisProxyApi>,
}

/// The coordinator of one product.
pub struct Coordinator {
    settings: Settings,
    owner: TopomRecord,
    /// What it talks to: the store, Redis, Sentinels, migrators.
    backends: Backends,
    /// The records as last written; a std mutex, never held across `.await`.
    cache: Mutex<ProductData>,
    /// Serializes mutations across their store write (a tokio mutex: it is held
    /// across the store's `.await`, but never across Redis I/O).
    writes: tokio::sync::Mutex<()>,
    lock_state: watch::Receiver<LockState>,
    /// The slot table as published to proxies.
    published: table::Publication,
    /// Proxies' stream state and leases (not stored).
    leases: leases::LeaseBook,
    /// The slot-action engine's runtime state.
    engine: slot_actions::Engine,
    /// Master changes, Sentinel reports, the promote mutex.
    ha: events::HaState,
    /// Stats rounds.
    stats: stats::Rounds,
    /// Wakes the background tasks when a mutation gave them work.
    wake: Wakeups,
    /// What `/metrics` shows of the core's work.
    metrics: metrics::CoreMetrics,
    /// Leadership among several instances.
    leader: leadership::LeaderState,
}

/// One `Notify` per background task, each waited on by that task alone, so a
/// permit stored while it is busy is not lost.
#[derive(Debug, Default)]
struct Wakeups {
    /// The sentinel list changed (the Sentinel watcher).
    sentinels: tokio::sync::Notify,
    /// A sync action was queued (the sync task).
    sync: tokio::sync::Notify,
    /// A slot action was queued (the slot-action task).
    slots: tokio::sync::Notify,
    /// A codis-proxy was added or removed (the codis-proxy drivers' supervisor).
    codis_proxies: tokio::sync::Notify,
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

impl Change {
    /// Writes these groups and nothing else.
    fn of_groups(groups: Vec<Group>) -> Change {
        Change {
            groups,
            ..Change::default()
        }
    }

    /// Writes these slot mappings and nothing else.
    fn of_slots(slots: Vec<SlotMapping>) -> Change {
        Change {
            slots,
            ..Change::default()
        }
    }

    /// Writes the sentinel list and nothing else.
    fn of_sentinel(sentinel: Sentinel) -> Change {
        Change {
            sentinel: Some(sentinel),
            ..Change::default()
        }
    }
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
        let data = backends.store.load().await?;
        let epoch: Arc<str> = new_epoch(&owner).into();
        let table = SlotTable::initial(epoch, &data.slots, &data.groups, settings.method);
        Ok(Arc::new(Coordinator {
            leases: leases::LeaseBook::new(settings.proxy.lease_ttl),
            engine: slot_actions::Engine::new(&settings.migration),
            settings,
            owner,
            backends,
            cache: Mutex::new(data),
            writes: tokio::sync::Mutex::new(()),
            lock_state,
            published: table::Publication::new(table),
            ha: events::HaState::default(),
            stats: stats::Rounds::default(),
            wake: Wakeups::default(),
            metrics: metrics::CoreMetrics::default(),
            leader: leadership::LeaderState::default(),
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
        self.wake.sentinels.notified().await;
    }

    /// Returns once a mutation has queued a sync action (at once if one did
    /// since the last call): the sync task starts it now, not at its next tick.
    pub async fn sync_queued(&self) {
        self.wake.sync.notified().await;
    }

    /// Returns once a mutation has queued a slot action (as [`Self::sync_queued`]).
    pub async fn slots_queued(&self) {
        self.wake.slots.notified().await;
    }

    /// Recent master changes, oldest first.
    pub fn events(&self) -> Vec<events::Event> {
        self.ha.events.list()
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
        self.published.current()
    }

    /// Follows the slot table: the receiver sees every new revision.
    pub fn watch_table(&self) -> watch::Receiver<Arc<SlotTable>> {
        self.published.subscribe()
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
        Ok(self.backends.redis.server_info(addr).await?)
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

    /// Ok while this instance leads and may write: what every mutation and
    /// leader-only stream checks first.
    pub fn check_leader(&self) -> Result<()> {
        self.ensure_online()
    }

    fn ensure_online(&self) -> Result<()> {
        match *self.lock_state.borrow() {
            LockState::Held if self.term_ready() => Ok(()),
            LockState::Held => Err(Error::TakingOver),
            LockState::Renewing => Err(Error::NotOnline(
                "the store is not answering, so this instance cannot renew its ownership lock; writes resume once a renewal succeeds".into(),
            )),
            LockState::Lost => Err(Error::NotOnline(
                "this instance lost its ownership lock on the store; it resumes when the lock is held again".into(),
            )),
            LockState::Standby => Err(self.not_leader()),
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
        let written = self.backends.store.commit(batch).await;
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
            self.wake.sync.notify_one();
        }
        if queued_slots {
            self.wake.slots.notify_one();
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
                self.wake.sentinels.notify_one();
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
        self.published.publish(next);
    }

    async fn reload_locked(&self) -> Result<()> {
        let data = self.backends.store.load().await?;
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
