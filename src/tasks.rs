//! Background tasks. Each is a struct with `run(self, shutdown)`; the server
//! spawns them into one tracker and joins them on shutdown.

mod codis_proxy;
mod sentinel;

pub use codis_proxy::CodisProxyTask;
pub use sentinel::SentinelWatchTask;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::coordinator::Coordinator;

/// Refreshes the stats of every server and sentinel: one round, then wait for the
/// next tick. Rounds never overlap; a slow round delays the next tick instead of
/// piling rounds up (missed ticks are skipped). Rounds run only while this
/// instance holds its ownership lock.
pub struct StatsRefreshTask {
    /// The coordinator.
    pub coordinator: Arc<Coordinator>,
    /// Time between round starts.
    pub period: Duration,
    /// Per-target deadline of a round.
    pub timeout: Duration,
}

impl StatsRefreshTask {
    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval_at(Instant::now(), self.period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if !self.coordinator.is_online() {
                continue;
            }
            tokio::select! {
                r = self.coordinator.refresh_stats(self.timeout) => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "stats round failed");
                    }
                }
                // A round is bounded by its deadline, but shutdown need not wait for it.
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// Runs pending sync actions, one after another until none is pending: woken
/// at once when a mutation queues one, else every `period`; after an error,
/// waits 5 s before trying again.
pub struct SyncActionTask {
    /// The coordinator.
    pub coordinator: Arc<Coordinator>,
    /// Time between checks.
    pub period: Duration,
}

impl SyncActionTask {
    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let mut pause = self.period;
            while self.coordinator.is_online() && !shutdown.is_cancelled() {
                match self.coordinator.process_sync_action().await {
                    Ok(Some(step)) => {
                        tracing::info!(server = %step.addr, group = step.group_id, state = step.state.as_str(), "sync action done");
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "sync action step failed");
                        pause = Duration::from_secs(5);
                        break;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                // Queued now: start it now, not at the next tick (after an
                // error the backoff still applies).
                () = self.coordinator.sync_queued(), if pause == self.period => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// Drives the slot-action engine: steps while there is work; when idle, is woken
/// at once by a queued slot action (and checks every second anyway); after a
/// step with errors, backs off (doubling up to 5 s) instead of spinning.
pub struct SlotActionTask {
    /// The coordinator.
    pub coordinator: Arc<Coordinator>,
}

impl SlotActionTask {
    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(250);
        loop {
            let pause = if !self.coordinator.is_online() {
                Duration::from_secs(1)
            } else {
                let step = tokio::select! {
                    r = self.coordinator.process_slot_action() => r,
                    () = shutdown.cancelled() => return,
                };
                match step {
                    Ok(steps) if steps.is_empty() => Duration::from_secs(1),
                    Ok(steps) if steps.iter().all(|s| s.error.is_empty()) => {
                        backoff = Duration::from_millis(250);
                        Duration::ZERO
                    }
                    Ok(steps) => {
                        for s in steps.iter().filter(|s| !s.error.is_empty()).take(3) {
                            tracing::warn!(slot = s.slot, error = %s.error, "slot action step failed");
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        backoff
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "slot action step failed");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        backoff
                    }
                }
            };
            if pause.is_zero() {
                continue;
            }
            let idle = pause == Duration::from_secs(1);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.coordinator.slots_queued(), if idle => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::SlotActionTask;
    use crate::coordinator::testing::{harness, settings};
    use crate::model::SlotState;

    async fn queue_and_time_start(paused: bool) -> Duration {
        let h = harness(settings()).await;
        h.group(1, &["127.0.0.1:7001"]).await;
        h.group(2, &["127.0.0.1:7002"]).await;
        h.coordinator.assign_slots(&[(0, 1)]).await.expect("assign");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(
            SlotActionTask {
                coordinator: h.coordinator.clone(),
            }
            .run(shutdown.clone()),
        );
        // Let the task find nothing to do and go idle.
        if paused {
            tokio::time::sleep(Duration::from_millis(10)).await;
        } else {
            tokio::task::yield_now().await;
        }
        let mut table = h.coordinator.watch_table();
        let queued = tokio::time::Instant::now();
        h.coordinator.create_slot_action(0, 2).await.expect("queue");
        table
            .wait_for(|t| t.mappings[0].state() != Some(SlotState::Pending))
            .await
            .expect("table");
        let latency = queued.elapsed();
        shutdown.cancel();
        task.await.expect("task ends on shutdown");
        latency
    }

    /// On paused time the idle task's 1 s re-check would show as a whole
    /// second: a queued action must start without waiting for it.
    #[tokio::test(start_paused = true)]
    async fn a_queued_slot_action_starts_at_once() {
        let latency = queue_and_time_start(true).await;
        assert!(latency < Duration::from_millis(100), "{latency:?}");
    }

    /// The figure on the real clock (run with `--ignored --nocapture`).
    #[tokio::test]
    #[ignore = "a measurement, not a check"]
    async fn measure_queue_to_start_latency() {
        let mut all = Vec::new();
        for _ in 0..20 {
            all.push(queue_and_time_start(false).await);
        }
        all.sort();
        println!(
            "queue → start of a slot action: p50 {:?}, max {:?} (20 runs)",
            all[10], all[19]
        );
    }
}
