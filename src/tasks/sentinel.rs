//! Following the Sentinels' master switches (reference §5.4, §4.6).
//!
//! One subscriber per configured Sentinel listens to `+switch-master`,
//! resubscribing with backoff. When a majority of the Sentinels has announced the
//! same new master for a group, the watcher reads `SENTINEL masters` (a majority
//! must answer; the highest config epoch wins) and the coordinator moves that
//! server to index 0 and publishes a new table revision at once. A reconciliation
//! every few seconds catches announcements missed while a subscription was down.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::coordinator::Coordinator;
use crate::redis::{HaAdmin, SwitchMaster};

/// How often the set of Sentinels is re-read and the masters reconciled.
const RECONCILE: Duration = Duration::from_secs(5);

/// Watches the Sentinels for master switches.
pub struct SentinelWatchTask {
    /// The coordinator.
    pub coordinator: Arc<Coordinator>,
    /// Subscriptions.
    pub ha: Arc<dyn HaAdmin>,
}

struct Announcement {
    sentinel: String,
    switch: SwitchMaster,
    at: Instant,
}

impl SentinelWatchTask {
    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::channel::<Announcement>(1024);
        // One subscriber per Sentinel, by address; the set owns (and joins) them.
        let mut subscribers: BTreeMap<String, AbortHandle> = BTreeMap::new();
        let mut running = JoinSet::new();
        // (group, new master) → the sentinels that announced it.
        let mut heard: BTreeMap<(u32, String), BTreeSet<String>> = BTreeMap::new();
        let mut tick = tokio::time::interval(RECONCILE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.coordinator.sentinels_changed() => {
                    self.follow_sentinel_list(&mut subscribers, &mut running, &tx, &shutdown);
                }
                _ = tick.tick() => {
                    self.follow_sentinel_list(&mut subscribers, &mut running, &tx, &shutdown);
                    if !subscribers.is_empty() && self.coordinator.is_online() {
                        self.reconcile(None).await;
                    }
                }
                Some(a) = rx.recv() => {
                    let Some(gid) = self.coordinator.group_of_name(&a.switch.name) else {
                        continue;
                    };
                    let voters = heard.entry((gid, a.switch.new.clone())).or_default();
                    voters.insert(a.sentinel.clone());
                    let votes = voters.len();
                    let majority = self.coordinator.sentinel().servers.len() / 2 + 1;
                    tracing::info!(group = gid, sentinel = %a.sentinel, old = %a.switch.old,
                        new = %a.switch.new, votes, majority, "+switch-master");
                    if votes >= majority && self.coordinator.is_online() {
                        heard.retain(|(g, _), _| *g != gid);
                        self.reconcile(Some(a.at)).await;
                    }
                }
            }
        }
        running.shutdown().await;
    }

    /// Starts a subscriber for each configured Sentinel and stops the others.
    fn follow_sentinel_list(
        &self,
        subscribers: &mut BTreeMap<String, AbortHandle>,
        running: &mut JoinSet<()>,
        tx: &mpsc::Sender<Announcement>,
        shutdown: &CancellationToken,
    ) {
        let wanted: BTreeSet<String> = self.coordinator.sentinel().servers.into_iter().collect();
        subscribers.retain(|addr, h| {
            let keep = wanted.contains(addr) && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        // Reap the ended ones, so the set does not grow with resubscriptions.
        while running.try_join_next().is_some() {}
        for addr in wanted {
            subscribers.entry(addr).or_insert_with_key(|addr| {
                running.spawn(subscribe(
                    self.ha.clone(),
                    addr.clone(),
                    tx.clone(),
                    shutdown.clone(),
                ))
            });
        }
    }

    async fn reconcile(&self, announced: Option<Instant>) {
        match self.coordinator.sentinel_masters().await {
            Ok(masters) => {
                if let Err(e) = self
                    .coordinator
                    .apply_sentinel_masters(&masters, announced)
                    .await
                {
                    tracing::warn!(error = %e, "could not apply the sentinels' masters");
                }
            }
            Err(e) if announced.is_some() => {
                tracing::warn!(error = %e, "could not read the sentinels' masters");
            }
            Err(e) => tracing::debug!(error = %e, "reconciliation skipped"),
        }
    }
}

/// Keeps one subscription to `addr` alive, forwarding announcements.
async fn subscribe(
    ha: Arc<dyn HaAdmin>,
    addr: String,
    tx: mpsc::Sender<Announcement>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match ha
            .subscribe_switch_master(&addr, Duration::from_secs(5))
            .await
        {
            Ok(mut stream) => {
                backoff = Duration::from_millis(100);
                loop {
                    let next = tokio::select! {
                        n = stream.next() => n,
                        () = shutdown.cancelled() => return,
                    };
                    match next {
                        Ok(switch) => {
                            let a = Announcement {
                                sentinel: addr.clone(),
                                switch,
                                at: Instant::now(),
                            };
                            if tx.send(a).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(sentinel = %addr, error = %e,
                                "+switch-master subscription lost; resubscribing");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(sentinel = %addr, error = %e, ?backoff,
                    "cannot subscribe to +switch-master");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
