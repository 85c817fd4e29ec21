//! Proxies: registration, the live state of their slot-table streams (applied
//! revision, lease, last NACK), the per-proxy table updates, and the barrier that
//! waits until every proxy with a live lease has applied a revision.
//!
//! Safety argument (also in the README): a step that needs every proxy to have
//! applied revision R waits until each proxy whose lease is live has ACKed R. A
//! proxy's lease, on topom's side, runs `lease_ttl` plus a margin from the last
//! heartbeat topom *received*; on the proxy's side it runs `lease_ttl` from when
//! the proxy *sent* that heartbeat (renewed only once topom's answer arrives).
//! So when topom stops waiting for a silent proxy, that proxy's own lease has
//! already run out and it has stopped serving every slot: no proxy can still be
//! routing with a table older than R while topom acts on R.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::error::{exists, invalid, not_found, precondition};
use super::table::SlotTable;
use super::view::{ProxyPlace, addr_host, slot_view};
use super::{Change, Coordinator, Result, check_addr};
use crate::model::{Proxy, Sentinel, SlotView};

/// Lease and barrier settings.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// How long a proxy may go without renewing its lease.
    pub lease_ttl: Duration,
    /// How often proxies send heartbeats (and topom sends its own when idle).
    pub heartbeat: Duration,
    /// The longest a step waits for every live proxy to apply a revision.
    pub barrier_timeout: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            lease_ttl: Duration::from_secs(10),
            heartbeat: Duration::from_secs(3),
            barrier_timeout: Duration::from_secs(30),
        }
    }
}

/// What a proxy reports about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyReport {
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
    /// Backend connections.
    pub backends: i64,
    /// Resident memory, bytes.
    pub rss_bytes: i64,
    /// CPU use.
    pub cpu: f64,
    /// When the proxy took the figures.
    pub time: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Runtime {
    applied: u64,
    last_heard: Option<Instant>,
    last_heard_at: Option<SystemTime>,
    last_nack: String,
    streams: u32,
    /// Updates sent and not yet answered: revision → nonce.
    sent: BTreeMap<u64, String>,
    report: Option<ProxyReport>,
    /// Set by RemoveProxy: open streams end.
    removed: bool,
    /// Set by ReinitProxy: the next update is a full snapshot.
    reinit: bool,
    /// Wakes this proxy's own streams (reinit, removal). Each stream waits on
    /// its proxy's alone: waking every stream on every proxy's message would
    /// cost N² wake-ups per heartbeat round with N proxies.
    wake: Arc<tokio::sync::Notify>,
}

/// The live state of every proxy's stream.
#[derive(Debug)]
pub struct ProxyStates {
    state: Mutex<BTreeMap<String, Runtime>>,
    /// Bumped on every ack, nack or lease change, to wake barrier waiters.
    changed: watch::Sender<u64>,
    nonce: std::sync::atomic::AtomicU64,
}

impl Default for ProxyStates {
    fn default() -> Self {
        ProxyStates {
            state: Mutex::new(BTreeMap::new()),
            changed: watch::channel(0).0,
            nonce: std::sync::atomic::AtomicU64::new(1),
        }
    }
}

/// A proxy's live status, as shown to operators.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyStatus {
    /// Whether its lease is live.
    pub lease_live: bool,
    /// The highest revision it acknowledged.
    pub applied_revision: u64,
    /// When topom last heard from it.
    pub last_heartbeat: Option<SystemTime>,
    /// Its last NACK reason.
    pub last_nack: String,
    /// Whether a stream is open.
    pub connected: bool,
    /// Its last self-reported stats.
    pub report: Option<ProxyReport>,
}

/// One table update for one proxy.
#[derive(Debug, Clone)]
pub struct SlotsUpdate {
    /// The table epoch.
    pub epoch: String,
    /// The revision it brings the proxy to.
    pub revision: u64,
    /// Echo in the ACK/NACK.
    pub nonce: String,
    /// A full table replacing whatever the proxy holds.
    pub reset: bool,
    /// The slots (all 1024 on a reset; only the changed ones otherwise), as this
    /// proxy must serve them.
    pub slots: Vec<SlotView>,
    /// The sentinels (on resets).
    pub sentinel: Option<Sentinel>,
}

/// Why a barrier gave up on a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Laggard {
    /// The proxy's token.
    pub token: String,
    /// Its applied revision.
    pub applied: u64,
    /// Why it is behind.
    pub why: String,
}

impl Coordinator {
    /// Lease and heartbeat settings for proxies.
    pub fn proxy_settings(&self) -> &ProxySettings {
        &self.settings.proxy
    }

    /// Registers (or re-registers) a proxy: a new token gets 1 + the highest id,
    /// a known one keeps its id. A token whose proxy is connected with a live lease
    /// from another process is refused.
    pub async fn register_proxy(&self, mut p: Proxy) -> Result<Proxy> {
        if p.token.is_empty() || p.token.contains('/') || p.token.len() > 128 {
            return Err(invalid(
                "a proxy token must be 1..128 characters without '/'",
            ));
        }
        if !p.proxy_addr.is_empty() {
            check_addr(&p.proxy_addr)?;
        }
        if !p.admin_addr.is_empty() {
            check_addr(&p.admin_addr)?;
        }
        if !p.product_name.is_empty() && p.product_name != self.product() {
            return Err(precondition(format!(
                "this topom coordinates product {:?}, not {:?}",
                self.product(),
                p.product_name
            )));
        }
        p.product_name = self.product().to_owned();
        let ttl = self.settings.proxy.lease_ttl;
        self.mutate(|d| {
            if let Some(old) = d.proxies.get(&p.token) {
                let live_elsewhere = self.proxy_state.is_live(&p.token, ttl)
                    && self.proxy_state.is_connected(&p.token)
                    && (old.pid != p.pid || old.admin_addr != p.admin_addr || old.start_time != p.start_time);
                if live_elsewhere {
                    return Err(exists(format!(
                        "proxy token {} is live elsewhere ({} pid {}); stop that proxy or wait for its lease to expire",
                        p.token, old.admin_addr, old.pid
                    )));
                }
                p.id = old.id;
            } else {
                p.id = d.proxies.values().map(|x| x.id).max().unwrap_or(0) + 1;
            }
            Ok((
                Change {
                    proxies: vec![p.clone()],
                    ..Change::default()
                },
                p.clone(),
            ))
        })
        .await
    }

    /// Unregisters a proxy. A connected proxy with a live lease needs `force`;
    /// its streams are then closed.
    pub async fn remove_proxy(&self, token: &str, force: bool) -> Result<()> {
        if !self.cache().proxies.contains_key(token) {
            return Err(not_found(format!("proxy {token} is not registered")));
        }
        if !force
            && self.proxy_state.is_connected(token)
            && self
                .proxy_state
                .is_live(token, self.settings.proxy.lease_ttl)
        {
            return Err(precondition(format!(
                "proxy {token} is connected with a live lease; stop it first or use force"
            )));
        }
        self.mutate(|_| {
            Ok((
                Change {
                    removed_proxies: vec![token.to_owned()],
                    ..Change::default()
                },
                (),
            ))
        })
        .await?;
        self.proxy_state.remove(token);
        Ok(())
    }

    /// Makes the proxy's stream send a full snapshot (a reset) next.
    pub fn reinit_proxy(&self, token: &str) -> Result<u64> {
        if !self.cache().proxies.contains_key(token) {
            return Err(not_found(format!("proxy {token} is not registered")));
        }
        if !self.proxy_state.is_connected(token) {
            return Err(precondition(format!(
                "proxy {token} has no open WatchSlots stream; it gets a full snapshot when it connects"
            )));
        }
        self.proxy_state.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.reinit = true;
            r.wake.notify_one();
        });
        self.proxy_state.bump();
        Ok(self.table().revision)
    }

    /// Wakes on every change of any proxy's state (ack, removal, reinit).
    pub fn proxy_changes(&self) -> watch::Receiver<u64> {
        self.proxy_state.changed.subscribe()
    }

    /// A proxy's live status.
    pub fn proxy_status(&self, token: &str) -> ProxyStatus {
        self.proxy_state
            .status(token, self.settings.proxy.lease_ttl)
    }

    /// Marks a stream from `token` open; the guard marks it closed when dropped.
    pub fn open_proxy_stream(self: &Arc<Self>, token: &str) -> Result<ProxyStream> {
        if !self.cache().proxies.contains_key(token) {
            return Err(not_found(format!(
                "proxy {token} is not registered: call RegisterProxy first"
            )));
        }
        let wake = self.proxy_state.opened(token);
        Ok(ProxyStream {
            coordinator: self.clone(),
            token: token.to_owned(),
            wake,
        })
    }

    /// The update that brings `token` from `have` (epoch, revision) to the current
    /// table: only the changed slots when `have` is retained, else a reset.
    pub fn proxy_update(&self, token: &str, have: Option<(&str, u64)>) -> SlotsUpdate {
        let current = self.table();
        let base = have.and_then(|(epoch, rev)| {
            if epoch != &*current.epoch || rev > current.revision {
                return None;
            }
            let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            h.iter().find(|t| t.revision == rev).cloned()
        });
        // Only what places the proxy, not a copy of its record: this runs once
        // per proxy per revision.
        let (datacenter, host_ip) = self
            .cache()
            .proxies
            .get(token)
            .map(|p| {
                let ip = addr_host(&p.admin_addr).parse::<IpAddr>().ok();
                (p.datacenter.clone(), ip)
            })
            .unwrap_or_default();
        let place = ProxyPlace {
            datacenter: &datacenter,
            host_ip,
        };
        let resolve = |h: &str| h.parse::<IpAddr>().ok();
        let view = |t: &SlotTable, id: usize| {
            slot_view(
                &t.mappings[id],
                &t.groups,
                self.method(),
                Some(&place),
                &resolve,
            )
        };
        let (reset, slots) = match &base {
            Some(old) => {
                let slots = current
                    .changed_since(old)
                    .iter()
                    .filter_map(|&id| {
                        let new = view(&current, id);
                        (view(old, id) != new).then_some(new)
                    })
                    .collect();
                (false, slots)
            }
            None => (
                true,
                (0..current.mappings.len())
                    .map(|id| view(&current, id))
                    .collect(),
            ),
        };
        let nonce = format!(
            "{}-{}-{}",
            current.epoch,
            current.revision,
            self.proxy_state
                .nonce
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.proxy_state.sent(token, current.revision, &nonce);
        SlotsUpdate {
            epoch: current.epoch.to_string(),
            revision: current.revision,
            nonce,
            reset,
            slots,
            sentinel: reset.then(|| self.sentinel()),
        }
    }

    /// Waits until every proxy with a live lease has applied `revision`, for at
    /// most the barrier timeout. Fails naming the laggards and why.
    pub async fn wait_applied(&self, revision: u64) -> Result<()> {
        let started = std::time::Instant::now();
        let r = self.barrier(revision).await;
        self.metrics.barrier_wait(started.elapsed(), r.is_ok());
        r
    }

    async fn barrier(&self, revision: u64) -> Result<()> {
        let ttl = self.settings.proxy.lease_ttl;
        let deadline = tokio::time::Instant::now() + self.settings.proxy.barrier_timeout;
        let mut changed = self.proxy_state.changed.subscribe();
        loop {
            let tokens: Vec<String> = self.cache().proxies.keys().cloned().collect();
            let laggards = self.proxy_state.laggards(&tokens, revision, ttl);
            if laggards.is_empty() {
                return Ok(());
            }
            // Leases expire without any message: wake up when the first could.
            let wake = self
                .proxy_state
                .next_expiry(&tokens, ttl)
                .map_or(deadline, |d| {
                    deadline.min(tokio::time::Instant::from_std(d))
                });
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                let tokens: Vec<String> = self.cache().proxies.keys().cloned().collect();
                let laggards = self.proxy_state.laggards(&tokens, revision, ttl);
                if laggards.is_empty() {
                    return Ok(());
                }
                self.metrics.barrier_laggards(laggards.len());
                let names: Vec<String> = laggards
                    .iter()
                    .map(|l| format!("proxy {} (applied {}): {}", l.token, l.applied, l.why))
                    .collect();
                return Err(precondition(format!(
                    "proxies did not apply revision {revision} within {:?}: {}",
                    self.settings.proxy.barrier_timeout,
                    names.join("; ")
                )));
            }
        }
    }
}

/// A proxy's open WatchSlots stream; closing it (drop) is recorded.
pub struct ProxyStream {
    coordinator: Arc<Coordinator>,
    token: String,
    wake: Arc<tokio::sync::Notify>,
}

impl ProxyStream {
    /// Returns when this proxy was reinitialised or removed (check
    /// [`Self::removed`] and [`Self::take_reinit`]).
    pub async fn poked(&self) {
        self.wake.notified().await;
    }

    /// The proxy sent something: its lease is renewed.
    pub fn heard(&self) {
        self.coordinator.proxy_state.heard(&self.token);
    }

    /// The proxy applied `revision` (`nonce` must be one we sent).
    pub fn ack(&self, revision: u64, nonce: &str) -> bool {
        self.coordinator
            .proxy_state
            .answer(&self.token, revision, nonce, None)
    }

    /// The proxy refused `revision`.
    pub fn nack(&self, revision: u64, nonce: &str, reason: &str) -> bool {
        self.coordinator
            .proxy_state
            .answer(&self.token, revision, nonce, Some(reason))
    }

    /// The proxy reported its stats.
    pub fn report(&self, r: ProxyReport) {
        self.coordinator.proxy_state.report(&self.token, r);
    }

    /// Whether the proxy was removed (the stream must end).
    pub fn removed(&self) -> bool {
        self.coordinator.proxy_state.removed(&self.token)
    }

    /// Whether a full snapshot was requested (clears the request).
    pub fn take_reinit(&self) -> bool {
        self.coordinator.proxy_state.with(|s| {
            s.get_mut(&self.token)
                .is_some_and(|r| std::mem::take(&mut r.reinit))
        })
    }

    /// The proxy's token.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for ProxyStream {
    fn drop(&mut self) {
        self.coordinator.proxy_state.closed(&self.token);
    }
}

impl ProxyStates {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Runtime>) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn opened(&self, token: &str) -> Arc<tokio::sync::Notify> {
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.streams += 1;
            r.removed = false;
            r.wake.clone()
        })
    }

    fn closed(&self, token: &str) {
        self.with(|s| {
            if let Some(r) = s.get_mut(token) {
                r.streams = r.streams.saturating_sub(1);
            }
        });
        self.bump();
    }

    fn heard(&self, token: &str) {
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.last_heard = Some(Instant::now());
            r.last_heard_at = Some(SystemTime::now());
        });
        self.bump();
    }

    fn sent(&self, token: &str, revision: u64, nonce: &str) {
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.sent.insert(revision, nonce.to_owned());
            // Keep the map small: older updates can no longer be answered usefully.
            while r.sent.len() > 256 {
                r.sent.pop_first();
            }
        });
    }

    fn answer(&self, token: &str, revision: u64, nonce: &str, nack: Option<&str>) -> bool {
        let ok = self.with(|s| {
            let Some(r) = s.get_mut(token) else {
                return false;
            };
            if r.sent.get(&revision).map(String::as_str) != Some(nonce) {
                return false;
            }
            r.sent.retain(|rev, _| *rev > revision);
            match nack {
                None => {
                    r.applied = r.applied.max(revision);
                    r.last_nack.clear();
                }
                Some(why) => r.last_nack = why.to_owned(),
            }
            true
        });
        if ok {
            self.bump();
        } else {
            tracing::warn!(
                proxy = token,
                revision,
                nonce,
                "answer to an update never sent (or stale nonce); ignored"
            );
        }
        ok
    }

    fn report(&self, token: &str, rep: ProxyReport) {
        self.with(|s| s.entry(token.to_owned()).or_default().report = Some(rep));
    }

    fn removed(&self, token: &str) -> bool {
        self.with(|s| s.get(token).is_some_and(|r| r.removed))
    }

    fn remove(&self, token: &str) {
        self.with(|s| {
            if let Some(r) = s.get_mut(token) {
                r.removed = true;
                r.last_heard = None;
                // Every open stream of it ends, and one not waiting right now
                // finds the stored permit.
                r.wake.notify_waiters();
                r.wake.notify_one();
            }
        });
        self.bump();
    }

    fn is_connected(&self, token: &str) -> bool {
        self.with(|s| s.get(token).is_some_and(|r| r.streams > 0))
    }

    fn is_live(&self, token: &str, ttl: Duration) -> bool {
        self.with(|s| s.get(token).is_some_and(|r| live(r, ttl)))
    }

    fn status(&self, token: &str, ttl: Duration) -> ProxyStatus {
        self.with(|s| match s.get(token) {
            None => ProxyStatus {
                lease_live: false,
                applied_revision: 0,
                last_heartbeat: None,
                last_nack: String::new(),
                connected: false,
                report: None,
            },
            Some(r) => ProxyStatus {
                lease_live: live(r, ttl),
                applied_revision: r.applied,
                last_heartbeat: r.last_heard_at,
                last_nack: r.last_nack.clone(),
                connected: r.streams > 0,
                report: r.report.clone(),
            },
        })
    }

    fn laggards(&self, tokens: &[String], revision: u64, ttl: Duration) -> Vec<Laggard> {
        self.with(|s| {
            tokens
                .iter()
                .filter_map(|t| {
                    let r = s.get(t)?;
                    if !live(r, ttl) || r.applied >= revision {
                        return None;
                    }
                    let why = if !r.last_nack.is_empty() {
                        format!("rejected it: {}", r.last_nack)
                    } else if r.streams == 0 {
                        "disconnected, lease still live".to_owned()
                    } else {
                        "silent (no ack yet)".to_owned()
                    };
                    Some(Laggard {
                        token: t.clone(),
                        applied: r.applied,
                        why,
                    })
                })
                .collect()
        })
    }

    fn next_expiry(&self, tokens: &[String], ttl: Duration) -> Option<Instant> {
        self.with(|s| {
            tokens
                .iter()
                .filter_map(|t| s.get(t)?.last_heard)
                .map(|h| h + expiry(ttl))
                .filter(|e| *e > Instant::now())
                .min()
        })
    }
}

/// topom's side of a lease lasts `ttl` plus half of it: the proxy, counting from
/// when it sent the heartbeat, has fenced itself by then.
fn expiry(ttl: Duration) -> Duration {
    ttl + ttl / 2
}

fn live(r: &Runtime, ttl: Duration) -> bool {
    !r.removed && r.last_heard.is_some_and(|h| h.elapsed() < expiry(ttl))
}
