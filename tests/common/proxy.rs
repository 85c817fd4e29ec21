//! A simulated proxy: registers, follows the slot table over WatchSlots (acking
//! each applied update, heartbeating to keep its lease, fencing itself when the
//! lease runs out), and routes keys by the contract of `proxy.proto`: for a slot
//! with `migrate_from`, first `MIGRATE` the key from the source to the target,
//! then send the command to the target.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use topom::pb;
use topom::pb::proxy_control_client::ProxyControlClient;
use topom::pb::watch_slots_request::Kind as In;
use topom::pb::watch_slots_response::Kind as Out;

/// What the proxy holds.
#[derive(Default)]
pub struct Table {
    /// Epoch of the table.
    pub epoch: String,
    /// Applied revision.
    pub revision: u64,
    /// Slot views by id.
    pub slots: BTreeMap<u32, pb::Slot>,
    /// Updates received: (revision, reset, number of slots).
    pub updates: Vec<(u64, bool, usize)>,
    /// When each revision was applied (for latency measurements).
    pub applied_at: BTreeMap<u64, Instant>,
}

/// Shared state of one simulated proxy.
pub struct SimProxy {
    /// Token.
    pub token: String,
    /// The table.
    pub table: Arc<Mutex<Table>>,
    /// Lease end on this proxy's clock.
    lease_until: Arc<Mutex<Option<Instant>>>,
    /// When set, the proxy neither acks nor heartbeats (a hung proxy).
    pub hung: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    conns: Mutex<BTreeMap<String, redis::aio::MultiplexedConnection>>,
}

impl Drop for SimProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimProxy {
    /// Registers `token` with topom at `addr` and opens its stream (from scratch).
    pub async fn start(addr: &str, token: &str) -> SimProxy {
        Self::start_from(addr, token, "", 0).await
    }

    /// Like [`SimProxy::start`], claiming to hold `epoch`/`revision` already.
    pub async fn start_from(addr: &str, token: &str, epoch: &str, revision: u64) -> SimProxy {
        let mut client = ProxyControlClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let reg = client
            .register_proxy(pb::RegisterProxyRequest {
                proxy: Some(pb::Proxy {
                    token: token.into(),
                    admin_addr: "127.0.0.1:1".into(),
                    proxy_addr: "127.0.0.1:2".into(),
                    pid: std::process::id(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        let ttl = Duration::try_from(reg.lease_ttl.unwrap()).unwrap();
        let every = Duration::try_from(reg.heartbeat_interval.unwrap()).unwrap();
        let (tx, rx) = mpsc::channel(64);
        tx.send(pb::WatchSlotsRequest {
            kind: Some(In::Hello(pb::WatchHello {
                token: token.into(),
                epoch: epoch.into(),
                applied_revision: revision,
            })),
        })
        .await
        .unwrap();
        let mut inbound = client
            .watch_slots(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let table = Arc::new(Mutex::new(Table {
            epoch: epoch.into(),
            revision,
            ..Default::default()
        }));
        let lease_until = Arc::new(Mutex::new(Some(Instant::now() + ttl)));
        let hung = Arc::new(AtomicBool::new(false));
        let task = {
            let (table, lease_until, hung) = (table.clone(), lease_until.clone(), hung.clone());
            tokio::spawn(async move {
                let seq = AtomicU64::new(0);
                let mut sent_at: BTreeMap<u64, Instant> = BTreeMap::new();
                let mut tick = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            if hung.load(Ordering::Relaxed) { continue }
                            let s = seq.fetch_add(1, Ordering::Relaxed) + 1;
                            sent_at.insert(s, Instant::now());
                            let hb = pb::WatchSlotsRequest { kind: Some(In::Heartbeat(pb::ProxyHeartbeat { seq: s })) };
                            if tx.send(hb).await.is_err() { return }
                        }
                        m = inbound.message() => {
                            let Ok(Some(m)) = m else { return };
                            match m.kind {
                                Some(Out::Update(u)) => {
                                    {
                                        let mut t = table.lock().unwrap();
                                        if u.reset { t.slots.clear(); }
                                        for s in &u.slots { t.slots.insert(s.id, s.clone()); }
                                        t.epoch = u.epoch.clone();
                                        t.revision = u.revision;
                                        t.updates.push((u.revision, u.reset, u.slots.len()));
                                        t.applied_at.insert(u.revision, Instant::now());
                                    }
                                    if hung.load(Ordering::Relaxed) { continue }
                                    let ack = pb::WatchSlotsRequest { kind: Some(In::Ack(pb::SlotsAck { revision: u.revision, nonce: u.nonce })) };
                                    if tx.send(ack).await.is_err() { return }
                                }
                                Some(Out::Heartbeat(h)) if h.ack_seq > 0 => {
                                    if let Some(t) = sent_at.remove(&h.ack_seq) {
                                        *lease_until.lock().unwrap() = Some(t + ttl);
                                    }
                                    sent_at.retain(|s, _| *s > h.ack_seq);
                                }
                                _ => {}
                            }
                        }
                    }
                }
            })
        };
        let p = SimProxy {
            token: token.into(),
            table,
            lease_until,
            hung,
            task,
            conns: Mutex::new(BTreeMap::new()),
        };
        // Wait for the first update.
        super::wait_until(
            Duration::from_secs(10),
            "the first table update",
            async || !p.table.lock().unwrap().updates.is_empty(),
        )
        .await;
        p
    }

    /// Whether the lease is live (else the proxy serves nothing).
    pub fn serving(&self) -> bool {
        self.lease_until
            .lock()
            .unwrap()
            .is_some_and(|t| Instant::now() < t)
    }

    /// The applied revision.
    pub fn revision(&self) -> u64 {
        self.table.lock().unwrap().revision
    }

    async fn conn(&self, addr: &str) -> redis::aio::MultiplexedConnection {
        if let Some(c) = self.conns.lock().unwrap().get(addr) {
            return c.clone();
        }
        let c = redis::Client::open(format!("redis://{addr}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        self.conns
            .lock()
            .unwrap()
            .insert(addr.to_owned(), c.clone());
        c
    }

    /// The route for `key`: (backend, migrate_from), waiting while the slot is
    /// locked. `Err` when fenced or offline.
    async fn route(&self, key: &str) -> Result<(String, String), String> {
        let slot = topom::model::slot_of(key.as_bytes());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if !self.serving() {
                return Err("fenced: lease expired".into());
            }
            let view = self.table.lock().unwrap().slots.get(&slot).cloned();
            match view {
                Some(v) if v.locked => {}
                Some(v) if !v.backend_addr.is_empty() => {
                    return Ok((v.backend_addr, v.migrate_from));
                }
                _ => return Err(format!("slot {slot} is not ready")),
            }
            if Instant::now() > deadline {
                return Err(format!("slot {slot} stayed locked"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Moves `key` from `source` to `target` if it is still on the source.
    async fn pull(&self, source: &str, target: &str, key: &str) -> Result<(), String> {
        let (host, port) = target.rsplit_once(':').unwrap();
        let mut c = self.conn(source).await;
        let r: redis::RedisResult<redis::Value> = redis::cmd("MIGRATE")
            .arg(host)
            .arg(port)
            .arg(key)
            .arg(0)
            .arg(5000)
            .query_async(&mut c)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("BUSYKEY") => {
                // The target's copy is newer: drop the stale one.
                let _: redis::RedisResult<()> =
                    redis::cmd("DEL").arg(key).query_async(&mut c).await;
                Ok(())
            }
            Err(e) => Err(format!("MIGRATE {key} from {source}: {e}")),
        }
    }

    /// `SET key value` through the proxy.
    pub async fn set(&self, key: &str, value: &str) -> Result<(), String> {
        let (backend, from) = self.route(key).await?;
        if !from.is_empty() {
            self.pull(&from, &backend, key).await?;
        }
        let mut c = self.conn(&backend).await;
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query_async::<()>(&mut c)
            .await
            .map_err(|e| e.to_string())
    }

    /// `GET key` through the proxy.
    pub async fn get(&self, key: &str) -> Result<Option<String>, String> {
        let (backend, from) = self.route(key).await?;
        if !from.is_empty() {
            self.pull(&from, &backend, key).await?;
        }
        let mut c = self.conn(&backend).await;
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())
    }
}
