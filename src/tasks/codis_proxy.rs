//! Driving unmodified codis-proxies: one driver per stored codis-proxy, run by a
//! supervisor in the leader's term and joined with it.
//!
//! A driver brings its proxy to every new table revision with one `PUT
//! fillslots` of the slots that changed for it (all 1024 after a start, a new
//! epoch or a proxy restart, followed by `PUT start` and `PUT sentinels`). A
//! successful `fillslots` of revision R is the proxy's ACK of R in the lease
//! book, so codis-proxies and topom proxies stand in one barrier. A failed call
//! is retried every [`RETRY`]; the barrier names the proxy and the error
//! meanwhile. Every second `GET stats` (1 s deadline) feeds GetStats and
//! ListProxies, and tells a restarted proxy (offline again) from a live one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codis_proxy::{CodisProxyError, CodisProxyStats};
use crate::coordinator::Coordinator;
use crate::coordinator::proxies::ProxyReport;
use crate::model::{Proxy, Sentinel};

/// Pause before a failed call is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// Codis's dashboard polls every proxy's stats this often, with this deadline.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// How often the supervisor re-reads the stored proxies unwoken: a safety net,
/// since adds and removals wake it.
const RESCAN: Duration = Duration::from_secs(1);

/// Starts a driver per stored codis-proxy and stops the driver of one removed.
pub struct CodisProxyTask {
    /// The coordinator.
    pub coordinator: Arc<Coordinator>,
}

impl CodisProxyTask {
    /// Runs until `shutdown` is cancelled; every driver is joined before it returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let c = self.coordinator;
        let drivers = TaskTracker::new();
        let mut running: BTreeMap<String, CancellationToken> = BTreeMap::new();
        loop {
            let want = c.codis_proxy_tokens();
            running.retain(|token, stop| {
                let keep = want.contains(token);
                if !keep {
                    stop.cancel();
                }
                keep
            });
            for token in want {
                if running.contains_key(&token) {
                    continue;
                }
                let stop = shutdown.child_token();
                drivers.spawn(
                    Driver {
                        coordinator: c.clone(),
                        token: token.clone(),
                    }
                    .run(stop.clone()),
                );
                running.insert(token, stop);
            }
            tokio::select! {
                () = c.codis_proxies_changed() => {}
                () = tokio::time::sleep(RESCAN) => {}
                () = shutdown.cancelled() => break,
            }
        }
        drivers.close();
        drivers.wait().await;
    }
}

/// What a driver believes its proxy holds.
#[derive(Debug, Default)]
struct Held {
    /// The (epoch, revision) it applied; `None` until a full fill succeeded.
    table: Option<(String, u64)>,
    /// Whether `PUT start` succeeded since the last full fill.
    started: bool,
    /// The Sentinels last sent.
    sentinel: Option<Sentinel>,
}

struct Driver {
    coordinator: Arc<Coordinator>,
    token: String,
}

impl Driver {
    async fn run(self, stop: CancellationToken) {
        let c = &self.coordinator;
        let mut table = c.watch_table();
        let mut stats = tokio::time::interval(STATS_EVERY);
        stats.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut held = Held::default();
        let mut retry_at: Option<Instant> = None;
        loop {
            let Some(p) = c.codis_proxy(&self.token) else {
                return;
            };
            if retry_at.is_none_or(|t| Instant::now() >= t) && self.behind(&held) {
                retry_at = match self.sync(&p, &mut held).await {
                    Ok(()) => None,
                    Err(e) => {
                        if e.is_unreachable() {
                            // A call that got no answer may still be applied
                            // later (a stopped process reads it on resume):
                            // the next fill is complete, so it wins.
                            held.table = None;
                        }
                        tracing::warn!(proxy = %self.token, error = %e, "codis-proxy not in sync; retrying");
                        Some(Instant::now() + RETRY)
                    }
                };
            }
            let retry = async {
                match retry_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = table.changed() => if r.is_err() { return },
                _ = stats.tick() => self.poll_stats(&p, &mut held).await,
                () = retry => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Whether the proxy misses a revision, its start, or the current Sentinels.
    fn behind(&self, held: &Held) -> bool {
        let c = &self.coordinator;
        let t = c.table();
        let current = held
            .table
            .as_ref()
            .is_some_and(|(e, r)| **e == *t.epoch && *r >= t.revision);
        !current || !held.started || held.sentinel.as_ref() != Some(&c.sentinel())
    }

    /// One pass: fillslots (changes, or all), then start and sentinels as needed.
    async fn sync(&self, p: &Proxy, held: &mut Held) -> Result<(), CodisProxyError> {
        let c = &self.coordinator;
        let api = c.codis_api();
        let x = c.codis_xauth(&p.token);
        let have = held.table.as_ref().map(|(e, r)| (e.as_str(), *r));
        let update = c.proxy_update(&p.token, have);
        if update.reset {
            held.started = false;
        }
        if update.reset || !update.slots.is_empty() {
            let r = api.fillslots(&p.admin_addr, &x, &update.slots).await;
            self.record(&r);
            r?;
        }
        c.codis_applied(&p.token, update.revision, &update.nonce);
        held.table = Some((update.epoch, update.revision));
        if !held.started {
            let r = api.start(&p.admin_addr, &x).await;
            self.record(&r);
            r?;
            held.started = true;
            c.codis_online(&p.token, true);
        }
        let sentinel = c.sentinel();
        if held.sentinel.as_ref() != Some(&sentinel) {
            let r = api.sentinels(&p.admin_addr, &x, &sentinel).await;
            self.record(&r);
            r?;
            held.sentinel = Some(sentinel);
        }
        Ok(())
    }

    async fn poll_stats(&self, p: &Proxy, held: &mut Held) {
        let c = &self.coordinator;
        let x = c.codis_xauth(&p.token);
        let r = c.codis_api().stats(&p.admin_addr, &x, STATS_EVERY).await;
        self.record(&r);
        let Ok(s) = r else { return };
        c.codis_online(&p.token, s.online);
        if held.started && !s.online && !s.closed {
            // A proxy that forgot it was started restarted (same addresses,
            // so the same token): it holds no slots either.
            tracing::warn!(proxy = %self.token, "codis-proxy is offline again (restarted?): sending every slot");
            *held = Held::default();
        }
        c.codis_report(&p.token, report(&s));
    }

    fn record<T>(&self, r: &Result<T, CodisProxyError>) {
        let outcome = match r {
            Ok(_) => Ok(()),
            Err(e) => Err((
                e.to_string(),
                matches!(
                    e,
                    CodisProxyError::Remote { .. } | CodisProxyError::NotCodis { .. }
                ),
            )),
        };
        self.coordinator.codis_called(&self.token, outcome);
    }
}

fn report(s: &CodisProxyStats) -> ProxyReport {
    ProxyReport {
        ops_total: s.ops_total,
        ops_fails: s.ops_fails,
        redis_errors: s.redis_errors,
        ops_qps: s.ops_qps,
        sessions_total: s.sessions_total,
        sessions_alive: s.sessions_alive,
        backends: 0,
        rss_bytes: s.rss_bytes,
        cpu: s.cpu,
        time: Some(SystemTime::now()),
    }
}
