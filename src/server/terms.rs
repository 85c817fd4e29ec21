//! Leader terms. While this instance holds the ownership lock it runs the
//! leader-only tasks (stats refresh, sync engine, slot-action engine, Sentinel
//! watch, codis-proxy drivers); the moment the lock is not held — a missed renewal, a lost lease, a
//! resign — they are stopped and joined before anything else happens, and a
//! standby instead follows the store so its reads stay current.
//!
//! Health follows the role: SERVING while leading or as a standby (it serves
//! reads), NOT_SERVING while the lock is in doubt or lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::coordinator::Coordinator;
use crate::redis::PooledHa;
use crate::store::{LockState, MetaStore};
use crate::tasks::{
    CodisProxyTask, SentinelWatchTask, SlotActionTask, StatsRefreshTask, SyncActionTask,
};

/// How often a standby reloads at most while the leader keeps writing.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// What a term needs to start the leader-only tasks.
pub(super) struct Terms {
    pub(super) coordinator: Arc<Coordinator>,
    pub(super) ha: Arc<PooledHa>,
    pub(super) stats_period: Duration,
    pub(super) stats_timeout: Duration,
    /// The raw store and the product's directory in it, for a standby to follow.
    pub(super) store: Arc<dyn MetaStore>,
    pub(super) product_dir: String,
}

impl Terms {
    /// Follows the lock until `shutdown`: a term of leader tasks per hold, the
    /// store followed while standby, health set for each state.
    pub(super) async fn run(
        self,
        mut state: watch::Receiver<LockState>,
        health: HealthReporter,
        shutdown: CancellationToken,
    ) {
        // `open` loaded the product just now; a term that begins later must
        // reload it, since another leader may have written meanwhile.
        let mut fresh = true;
        loop {
            let now = *state.borrow_and_update();
            if shutdown.is_cancelled() {
                break;
            }
            set_health(&health, status_of(now)).await;
            let until_change = CancellationToken::new();
            match now {
                LockState::Held => {
                    if !fresh {
                        match self.coordinator.take_leadership().await {
                            Ok(t) => tracing::info!(
                                revision = t.revision,
                                epoch = %t.epoch,
                                "leading: product reloaded, new epoch"
                            ),
                            Err(e) => {
                                // Leading on a stale cache would undo the old
                                // leader's writes; step back and retry.
                                tracing::error!(error = %e, "leading, but the product cannot be reloaded; retrying");
                                set_health(&health, ServingStatus::NotServing).await;
                                tokio::select! {
                                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                                    () = shutdown.cancelled() => break,
                                }
                            }
                        }
                    }
                    self.coordinator.record_leadership(true);
                    let term = self.start_term(until_change.clone());
                    self.wait_change(&mut state, &shutdown).await;
                    until_change.cancel();
                    term.close();
                    term.wait().await;
                    if *state.borrow() != LockState::Held {
                        self.coordinator.record_leadership(false);
                        tracing::warn!(state = ?*state.borrow(), "stepped down: leader tasks stopped");
                    }
                    // A term that ended only in doubt (Renewing) kept its lease:
                    // nobody else could write, so no reload is needed after it.
                    fresh = *state.borrow() == LockState::Renewing;
                }
                LockState::Standby => {
                    fresh = false;
                    let follower = TaskTracker::new();
                    follower.spawn(follow(
                        self.coordinator.clone(),
                        self.store.clone(),
                        self.product_dir.clone(),
                        until_change.clone(),
                    ));
                    follower.close();
                    self.wait_change(&mut state, &shutdown).await;
                    until_change.cancel();
                    follower.wait().await;
                }
                LockState::Renewing | LockState::Lost => {
                    fresh &= now == LockState::Renewing;
                    self.wait_change(&mut state, &shutdown).await;
                }
            }
        }
        set_health(&health, ServingStatus::NotServing).await;
    }

    /// The leader-only tasks of one term, stopped by `term`.
    fn start_term(&self, term: CancellationToken) -> TaskTracker {
        let c = &self.coordinator;
        let tasks = TaskTracker::new();
        tasks.spawn(
            StatsRefreshTask {
                coordinator: c.clone(),
                period: self.stats_period,
                timeout: self.stats_timeout,
            }
            .run(term.clone()),
        );
        tasks.spawn(
            SyncActionTask {
                coordinator: c.clone(),
                period: Duration::from_secs(1),
            }
            .run(term.clone()),
        );
        tasks.spawn(
            SentinelWatchTask {
                coordinator: c.clone(),
                ha: self.ha.clone(),
            }
            .run(term.clone()),
        );
        tasks.spawn(
            CodisProxyTask {
                coordinator: c.clone(),
            }
            .run(term.clone()),
        );
        tasks.spawn(
            SlotActionTask {
                coordinator: c.clone(),
            }
            .run(term),
        );
        tasks
    }

    async fn wait_change(
        &self,
        state: &mut watch::Receiver<LockState>,
        shutdown: &CancellationToken,
    ) {
        tokio::select! {
            _ = state.changed() => {}
            () = shutdown.cancelled() => {}
        }
    }
}

/// A standby's cache follows the leader's writes: a reload per change of the
/// product's records, at most every [`FOLLOW_EVERY`].
async fn follow(
    coordinator: Arc<Coordinator>,
    store: Arc<dyn MetaStore>,
    dir: String,
    stop: CancellationToken,
) {
    let mut since = 0;
    let mut failing = false;
    loop {
        let changed = tokio::select! {
            r = store.changed(&dir, since) => r,
            () = stop.cancelled() => return,
        };
        match changed {
            Ok(revision) => {
                since = revision;
                failing = false;
                if let Err(e) = coordinator.follow_store().await {
                    tracing::warn!(error = %e, "standby: cannot reload the product");
                }
                tokio::select! {
                    () = tokio::time::sleep(FOLLOW_EVERY) => {}
                    () = stop.cancelled() => return,
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "standby: cannot follow the store; retrying");
                    failing = true;
                }
                // Restart from the current revision: changes missed meanwhile
                // are covered by the reload that follows.
                since = 0;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }
}

fn status_of(state: LockState) -> ServingStatus {
    match state {
        LockState::Held | LockState::Standby => ServingStatus::Serving,
        LockState::Renewing => {
            tracing::warn!(
                "the store is not answering: refusing writes until the ownership lease is renewed"
            );
            ServingStatus::NotServing
        }
        LockState::Lost => {
            tracing::warn!("ownership lock lost: refusing writes until it is held again");
            ServingStatus::NotServing
        }
    }
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status("topom.v1.Topom", status).await;
}
