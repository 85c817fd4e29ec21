//! Fakes of the coordinator's backends (Redis admin, stats probes, replication
//! and Sentinel, migrators) over the memory store, and [`harness`], which builds a
//! whole [`Coordinator`] from them for in-process unit tests.
//!
//! Compiled for the crate's own tests only (`cfg(test)`), not behind a cargo
//! feature: the tests in `tests/` drive real servers over gRPC and must not reach
//! into the core, so nothing outside the crate needs these, and a feature would
//! put them in the public API for nothing.
//!
//! The fakes keep just enough state to answer as a Redis server would for the
//! step under test, and record what they were asked, so a test can check that
//! a step did or did not happen.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Backends, Coordinator, Settings};
use crate::model::{ForwardMethod, Info, InfoMap, SentinelReport, ServerKind, TopomRecord};
use crate::redis::{
    Cost, HaAdmin, MigrateOptions, Migrator, MonitorSpec, Persisted, RedisAdmin, RedisError,
    ServerIdentity, SlotPass, StatsProbe, SwitchStream,
};
use crate::store::memory::MemoryStore;
use crate::store::{LockState, Store};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn refused(addr: &str) -> RedisError {
    RedisError::Connect {
        addr: addr.to_owned(),
        reason: "connection refused (fake)".to_owned(),
    }
}

/// Every address answers as plain Redis, except those [`FakeRedis::refuse`]d.
#[derive(Debug, Default)]
pub struct FakeRedis {
    refused: Mutex<BTreeSet<String>>,
}

impl FakeRedis {
    /// `addr` stops answering.
    pub fn refuse(&self, addr: &str) {
        lock(&self.refused).insert(addr.to_owned());
    }
}

#[async_trait]
impl RedisAdmin for FakeRedis {
    async fn probe(&self, addr: &str) -> Result<ServerIdentity, RedisError> {
        if lock(&self.refused).contains(addr) {
            return Err(refused(addr));
        }
        Ok(ServerIdentity {
            kind: ServerKind::Redis,
            run_id: format!("run-{addr}"),
            resolved: Vec::new(),
        })
    }

    async fn resolve(&self, _addr: &str) -> Vec<SocketAddr> {
        Vec::new()
    }

    async fn server_info(&self, addr: &str) -> Result<BTreeMap<String, String>, RedisError> {
        self.probe(addr).await.map(|_| BTreeMap::new())
    }
}

/// Stats probes: INFO as set by [`FakeProbe::set_info`]; other targets refuse,
/// and [`FakeProbe::hang`]ed ones never answer.
#[derive(Debug, Default)]
pub struct FakeProbe {
    infos: Mutex<BTreeMap<String, Info>>,
    hung: Mutex<BTreeSet<String>>,
    in_flight: Arc<AtomicUsize>,
}

impl FakeProbe {
    /// What `addr` answers to INFO from now on.
    pub fn set_info(&self, addr: &str, info: InfoMap) {
        lock(&self.infos).insert(addr.to_owned(), info.iter().collect());
    }

    /// `addr` accepts INFO and never answers.
    pub fn hang(&self, addr: &str) {
        lock(&self.hung).insert(addr.to_owned());
    }

    /// Probes of hung targets still running (not yet dropped).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a running probe until it is dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(n: &Arc<AtomicUsize>) -> InFlight {
        n.fetch_add(1, Ordering::SeqCst);
        InFlight(n.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl StatsProbe for FakeProbe {
    async fn server_info(&self, addr: &str, _timeout: Duration) -> Result<Info, RedisError> {
        if lock(&self.hung).contains(addr) {
            let _counted = InFlight::new(&self.in_flight);
            std::future::pending::<()>().await;
        }
        lock(&self.infos)
            .get(addr)
            .cloned()
            .ok_or_else(|| refused(addr))
    }

    async fn sentinel_info(
        &self,
        addr: &str,
        _product: &str,
        _timeout: Duration,
    ) -> Result<SentinelReport, RedisError> {
        Err(refused(addr))
    }
}

/// One simulated server's replication state.
#[derive(Debug, Clone, Default)]
struct Node {
    master: Option<String>,
    /// The master's offset, or how far a replica got.
    offset: i64,
}

/// Replication as Redis does it, in memory: `set_master` makes a server follow
/// (or stop following) another; a replica's link is up and caught up unless
/// the test says otherwise. Sentinel calls succeed and do nothing.
#[derive(Debug, Default)]
pub struct FakeHa {
    nodes: Mutex<BTreeMap<String, Node>>,
    /// Replicas whose link never comes up.
    link_down: Mutex<BTreeSet<String>>,
    /// Servers that refuse connections.
    unreachable: Mutex<BTreeSet<String>>,
    /// Servers whose SetMaster transaction fails with this reply.
    set_master_fails: Mutex<BTreeMap<String, String>>,
    calls: Mutex<Vec<String>>,
}

impl FakeHa {
    /// `replica` replicates `master` (already linked and caught up).
    pub fn follow(&self, replica: &str, master: &str) {
        lock(&self.nodes).insert(
            replica.to_owned(),
            Node {
                master: Some(master.to_owned()),
                offset: 0,
            },
        );
    }

    /// `addr`'s replication link stays down whatever it is told.
    pub fn keep_link_down(&self, addr: &str) {
        lock(&self.link_down).insert(addr.to_owned());
    }

    /// `addr` refuses every connection.
    pub fn unreachable(&self, addr: &str) {
        lock(&self.unreachable).insert(addr.to_owned());
    }

    /// `addr`'s SetMaster transaction fails with `reply`.
    pub fn fail_set_master(&self, addr: &str, reply: &str) {
        lock(&self.set_master_fails).insert(addr.to_owned(), reply.to_owned());
    }

    /// The master `addr` follows (`None`: it is a master).
    pub fn master_of(&self, addr: &str) -> Option<String> {
        lock(&self.nodes).get(addr).and_then(|n| n.master.clone())
    }

    /// Every state-changing call so far (`SLAVEOF a b`, `PAUSE a`, `UNPAUSE a`).
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    fn reach(&self, addr: &str) -> Result<(), RedisError> {
        if lock(&self.unreachable).contains(addr) {
            Err(refused(addr))
        } else {
            Ok(())
        }
    }

    fn record(&self, call: String) {
        lock(&self.calls).push(call);
    }
}

#[async_trait]
impl HaAdmin for FakeHa {
    async fn set_master(
        &self,
        addr: &str,
        master: Option<&str>,
        _timeout: Duration,
    ) -> Result<Persisted, RedisError> {
        self.reach(addr)?;
        self.record(format!("SLAVEOF {addr} {}", master.unwrap_or("NO ONE")));
        if let Some(reply) = lock(&self.set_master_fails).get(addr) {
            return Err(RedisError::Reply {
                addr: addr.to_owned(),
                reason: reply.clone(),
            });
        }
        lock(&self.nodes).entry(addr.to_owned()).or_default().master = master.map(str::to_owned);
        Ok(Persisted::Yes)
    }

    async fn replication(&self, addr: &str, _timeout: Duration) -> Result<InfoMap, RedisError> {
        self.reach(addr)?;
        let node = lock(&self.nodes).get(addr).cloned().unwrap_or_default();
        let mut info = InfoMap::new();
        let Some(master) = node.master else {
            info.insert("role".into(), "master".into());
            info.insert("master_repl_offset".into(), node.offset.to_string());
            return Ok(info);
        };
        let up = !lock(&self.link_down).contains(addr);
        let (host, port) = crate::model::Addr::split(&master).unwrap_or((&master, 0));
        info.insert("role".into(), "slave".into());
        info.insert("master_host".into(), host.into());
        info.insert("master_port".into(), port.to_string());
        info.insert(
            "master_link_status".into(),
            if up { "up" } else { "down" }.into(),
        );
        info.insert("slave_repl_offset".into(), node.offset.to_string());
        Ok(info)
    }

    async fn pause_writes(
        &self,
        addr: &str,
        _pause: Duration,
        _timeout: Duration,
    ) -> Result<(), RedisError> {
        self.reach(addr)?;
        self.record(format!("PAUSE {addr}"));
        Ok(())
    }

    async fn unpause(&self, addr: &str, _timeout: Duration) -> Result<(), RedisError> {
        self.reach(addr)?;
        self.record(format!("UNPAUSE {addr}"));
        Ok(())
    }

    async fn sentinel_probe(&self, addr: &str, _timeout: Duration) -> Result<(), RedisError> {
        self.reach(addr)
    }

    async fn sentinel_masters(
        &self,
        addr: &str,
        _timeout: Duration,
    ) -> Result<Vec<BTreeMap<String, String>>, RedisError> {
        self.reach(addr).map(|()| Vec::new())
    }

    async fn sentinel_remove(
        &self,
        addr: &str,
        _name: &str,
        _timeout: Duration,
    ) -> Result<bool, RedisError> {
        self.reach(addr).map(|()| false)
    }

    async fn sentinel_monitor(
        &self,
        addr: &str,
        _spec: &MonitorSpec<'_>,
        _timeout: Duration,
    ) -> Result<(), RedisError> {
        self.reach(addr)
    }

    async fn subscribe_switch_master(
        &self,
        addr: &str,
        _timeout: Duration,
    ) -> Result<Box<dyn SwitchStream>, RedisError> {
        Err(refused(addr))
    }
}

/// Moves keys between simulated masters: each slot holds the keys set with
/// [`FakeMigrator::set_keys`] (none by default); a pass moves up to
/// `per_pass` of them, or fails while [`FakeMigrator::fail`] is set. The keys
/// a pass moves are taken from its throttle first, as the real ones do.
#[derive(Debug)]
pub struct FakeMigrator {
    keys: Mutex<BTreeMap<u32, u64>>,
    per_pass: Mutex<u64>,
    failure: Mutex<Option<String>>,
    /// Each pass's source and slots.
    passes: Mutex<Vec<(String, Vec<u32>)>>,
}

impl Default for FakeMigrator {
    fn default() -> Self {
        FakeMigrator {
            keys: Mutex::new(BTreeMap::new()),
            per_pass: Mutex::new(u64::MAX),
            failure: Mutex::new(None),
            passes: Mutex::new(Vec::new()),
        }
    }
}

impl FakeMigrator {
    /// Slot `slot` holds `keys` keys on its source.
    pub fn set_keys(&self, slot: u32, keys: u64) {
        lock(&self.keys).insert(slot, keys);
    }

    /// A pass moves at most `n` keys of each slot.
    pub fn per_pass(&self, n: u64) {
        *lock(&self.per_pass) = n;
    }

    /// Passes fail with `reason` (`None`: they work again).
    pub fn fail(&self, reason: Option<&str>) {
        *lock(&self.failure) = reason.map(str::to_owned);
    }

    /// The sources of every pass so far.
    pub fn passes(&self) -> Vec<String> {
        lock(&self.passes).iter().map(|(s, _)| s.clone()).collect()
    }

    /// The slots each pass so far served.
    pub fn pass_slots(&self) -> Vec<Vec<u32>> {
        lock(&self.passes).iter().map(|(_, s)| s.clone()).collect()
    }
}

#[async_trait]
impl Migrator for FakeMigrator {
    async fn migrate_pass(
        &self,
        source: &str,
        moves: &BTreeMap<u32, String>,
        opts: &MigrateOptions,
        progress: &(dyn for<'p> Fn(&'p BTreeMap<u32, SlotPass>) + Send + Sync),
    ) -> Result<BTreeMap<u32, SlotPass>, RedisError> {
        let slots = moves.keys().copied().collect();
        lock(&self.passes).push((source.to_owned(), slots));
        if let Some(reason) = lock(&self.failure).clone() {
            return Err(RedisError::Reply {
                addr: source.to_owned(),
                reason,
            });
        }
        let per_pass = *lock(&self.per_pass);
        let totals: BTreeMap<u32, SlotPass> = {
            let mut keys = lock(&self.keys);
            moves
                .keys()
                .map(|sid| {
                    let found = keys.get(sid).copied().unwrap_or(0);
                    let moved = found.min(per_pass);
                    keys.insert(*sid, found - moved);
                    let pass = SlotPass {
                        moved,
                        found,
                        left: found - moved,
                        ..SlotPass::default()
                    };
                    (*sid, pass)
                })
                .collect()
        };
        let moved = totals.values().map(|p| p.moved).sum();
        opts.throttle
            .take(Cost {
                keys: moved,
                bytes: 0,
            })
            .await;
        progress(&totals);
        Ok(totals)
    }
}

/// A coordinator over fakes, and the fakes, for a test to steer.
pub struct Harness {
    /// The coordinator under test.
    pub coordinator: Arc<Coordinator>,
    /// Its add-server probe.
    pub redis: Arc<FakeRedis>,
    /// Its stats probes.
    pub probe: Arc<FakeProbe>,
    /// Its replication and Sentinel admin.
    pub ha: Arc<FakeHa>,
    /// Both its migrators (plain and codis share one fake).
    pub migrator: Arc<FakeMigrator>,
    /// The store's raw backend, shared with the coordinator.
    pub store: MemoryStore,
    /// The ownership lock's state as the coordinator sees it.
    pub lock: watch::Sender<LockState>,
}

/// Settings for tests: the configuration's defaults, product `test`, and a
/// barrier that gives up after 2 s (paused time makes that free).
pub fn settings() -> Settings {
    let mut s = Settings::from(&crate::config::Config::default());
    s.product = "test".to_owned();
    s.method = ForwardMethod::default();
    s.proxy.barrier_timeout = Duration::from_secs(2);
    s
}

/// A coordinator over fresh fakes and an empty memory store, holding its lock.
pub async fn harness(settings: Settings) -> Harness {
    let store = MemoryStore::new();
    let (redis, probe) = (
        Arc::new(FakeRedis::default()),
        Arc::new(FakeProbe::default()),
    );
    let (ha, migrator) = (
        Arc::new(FakeHa::default()),
        Arc::new(FakeMigrator::default()),
    );
    let (lock, lock_state) = watch::channel(LockState::Held);
    let backends = Backends {
        store: Store::new(Arc::new(store.clone()), settings.product.clone()),
        redis: redis.clone(),
        probe: probe.clone(),
        ha: ha.clone(),
        migrator: migrator.clone(),
        codis_migrator: migrator.clone(),
        // In-process tests have no codis-proxy: any call fails to connect.
        codis_proxies: Arc::new(crate::codis_proxy::HttpCodisProxies::default()),
    };
    let owner = TopomRecord {
        product_name: settings.product.clone(),
        pid: std::process::id(),
        ..TopomRecord::default()
    };
    let coordinator = Coordinator::open(settings, backends, owner, lock_state)
        .await
        .expect("a coordinator opens on an empty memory store");
    Harness {
        coordinator,
        redis,
        probe,
        ha,
        migrator,
        store,
        lock,
    }
}

impl Harness {
    /// Creates group `gid` with `servers`, the first as master, the others
    /// already replicating it (no sync action queued).
    pub async fn group(&self, gid: u32, servers: &[&str]) {
        let c = &self.coordinator;
        c.create_group(gid).await.expect("create group");
        for (i, addr) in servers.iter().enumerate() {
            c.add_group_server(gid, addr, "", true)
                .await
                .expect("add server");
            if i > 0 {
                self.ha.follow(addr, servers[0]);
            }
        }
    }
}
