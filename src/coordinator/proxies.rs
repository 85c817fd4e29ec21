//! Proxies: registration, the live state of their slot-table streams (applied
//! revision, lease, last NACK), the per-proxy table updates, and the barrier that
//! waits until every proxy with a live lease, and every codis-proxy (which has
//! none: see [`super::codis_proxies`]), has applied a revision.
//!
//! Safety argument (also in the README): a step that needs every proxy to have
//! applied revision R waits until each proxy whose lease is live has ACKed R. A
//! proxy's lease, on topom's side, runs `lease_ttl` plus a margin from the last
//! heartbeat topom *received*; on the proxy's side it runs `lease_ttl` from when
//! the proxy *sent* that heartbeat (renewed only once topom's answer arrives).
//! So when topom stops waiting for a silent proxy, that proxy's own lease has
//! already run out and it has stopped serving every slot: no proxy can still be
//! routing with a table older than R while topom acts on R.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use super::leases::{DriverStatus, Laggard, ProxyReport, ProxyStatus};

use super::error::{exists, invalid, not_found, precondition};
use super::table::SlotTable;
use super::view::{ProxyPlace, addr_host, slot_view};
use super::{Change, Coordinator, Result, check_addr};
use crate::model::{Proxy, ProxyKind, Sentinel, SlotView};

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
        self.mutate(|d| {
            if let Some(old) = d.proxies.get(&p.token) {
                if old.kind == ProxyKind::Codis {
                    return Err(exists(format!(
                        "proxy token {} belongs to the codis-proxy at {}, which topom drives; \
                         remove it first",
                        p.token, old.admin_addr
                    )));
                }
                let live_elsewhere = self.leases.is_live(&p.token)
                    && self.leases.is_connected(&p.token)
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
        let Some(p) = self.cache().proxies.get(token).cloned() else {
            return Err(not_found(format!("proxy {token} is not registered")));
        };
        if p.kind == ProxyKind::Codis {
            self.ensure_online()?;
            self.shutdown_codis_proxy(&p, force).await?;
        }
        if !force && self.leases.is_connected(token) && self.leases.is_live(token) {
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
        self.leases.remove(token);
        if p.kind == ProxyKind::Codis {
            self.wake.codis_proxies.notify_one();
        }
        Ok(())
    }

    /// Makes the proxy's stream send a full snapshot (a reset) next.
    pub fn reinit_proxy(&self, token: &str) -> Result<u64> {
        if !self.cache().proxies.contains_key(token) {
            return Err(not_found(format!("proxy {token} is not registered")));
        }
        if !self.leases.is_connected(token) {
            return Err(precondition(format!(
                "proxy {token} has no open WatchSlots stream; it gets a full snapshot when it connects"
            )));
        }
        self.leases.request_reinit(token);
        Ok(self.table().revision)
    }

    /// Wakes on every change of any proxy's state (ack, removal, reinit).
    pub fn proxy_changes(&self) -> watch::Receiver<u64> {
        self.leases.subscribe()
    }

    /// A proxy's live status.
    pub fn proxy_status(&self, token: &str) -> ProxyStatus {
        self.leases.status(token)
    }

    /// Marks a stream from `token` open; the guard marks it closed when dropped.
    pub fn open_proxy_stream(self: &Arc<Self>, token: &str) -> Result<ProxyStream> {
        self.ensure_online()?;
        if !self.cache().proxies.contains_key(token) {
            return Err(not_found(format!(
                "proxy {token} is not registered: call RegisterProxy first"
            )));
        }
        let wake = self.leases.opened(token);
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
            self.published.recent(rev)
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
        let nonce = self.leases.issue(token, &current.epoch, current.revision);
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
        let deadline = tokio::time::Instant::now() + self.settings.proxy.barrier_timeout;
        let mut changed = self.leases.subscribe();
        loop {
            let (tokens, laggards) = self.laggards(revision);
            if laggards.is_empty() {
                return Ok(());
            }
            // Leases expire without any message: wake up when the first could.
            let wake = self
                .leases
                .next_expiry(&tokens)
                .map_or(deadline, |d| deadline.min(d));
            tokio::select! {
                _ = changed.changed() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                let (_, laggards) = self.laggards(revision);
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

impl Coordinator {
    /// The tokens of the topom proxies (whose leases may expire) and every
    /// proxy behind `revision`: topom proxies with a live lease, and every
    /// codis-proxy, which has no lease to run out.
    fn laggards(&self, revision: u64) -> (Vec<String>, Vec<Laggard>) {
        let (mut topom, mut codis) = (Vec::new(), Vec::new());
        for p in self.cache().proxies.values() {
            match p.kind {
                ProxyKind::Topom => topom.push(p.token.clone()),
                ProxyKind::Codis => codis.push(p.token.clone()),
            }
        }
        let mut laggards = self.leases.laggards(&topom, revision);
        laggards.extend(self.leases.driven_laggards(&codis, revision));
        (topom, laggards)
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
        self.coordinator.leases.heard(&self.token);
    }

    /// The proxy applied `revision` (`nonce` must be one we sent).
    pub fn ack(&self, revision: u64, nonce: &str) -> bool {
        self.coordinator
            .leases
            .answer(&self.token, revision, nonce, None)
    }

    /// The proxy refused `revision`.
    pub fn nack(&self, revision: u64, nonce: &str, reason: &str) -> bool {
        self.coordinator
            .leases
            .answer(&self.token, revision, nonce, Some(reason))
    }

    /// The proxy reported its stats.
    pub fn report(&self, r: ProxyReport) {
        self.coordinator.leases.report(&self.token, r);
    }

    /// Whether the proxy was removed (the stream must end).
    pub fn removed(&self) -> bool {
        self.coordinator.leases.removed(&self.token)
    }

    /// Whether a full snapshot was requested (clears the request).
    pub fn take_reinit(&self) -> bool {
        self.coordinator.leases.take_reinit(&self.token)
    }

    /// The proxy's token.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for ProxyStream {
    fn drop(&mut self) {
        self.coordinator.leases.closed(&self.token);
    }
}
