//! The core's own recorder: the counters and histograms the coordinator moves as
//! it works (stats rounds, store writes, barriers, migration, sync, promote,
//! Sentinel switches), exposed on `/metrics` by [`crate::metrics`].
//!
//! Why the core owns a struct of `prometheus-client` handles, rather than
//! calling the `metrics` facade or an observer trait:
//! - the handles are plain atomics: no I/O, no async, nothing of HTTP or gRPC,
//!   so the core still knows no transport. Encoding and serving stay at the edge,
//!   which registers these same handles in its registry ([`CoreMetrics::register`]);
//! - no global state: each [`Coordinator`](super::Coordinator) has its own, so two
//!   in one process (unit tests) do not mix their numbers, as a process-wide
//!   facade recorder would;
//! - one place names each series and its labels; an observer trait would need a
//!   method per event here and the same list again in its implementation.
//!
//! Every label takes its values from a fixed set of `&'static str` chosen here
//! (the methods take `bool`s and enums, never strings), so no key, address, proxy
//! or client can ever become a label and the number of series stays bounded.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::model::ProbeOutcome;

use super::StatsRound;

/// A histogram family whose buckets are chosen once, at construction.
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// `outcome="ok"|"error"` (or another fixed pair).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// A stats target that failed: `kind="server"|"sentinel"`, `reason="timeout"|"error"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailedTarget {
    kind: &'static str,
    reason: &'static str,
}

/// The coordinator's metrics. Cheap to update: every method is a few atomic adds.
#[derive(Debug)]
pub struct CoreMetrics {
    stats_rounds: Counter,
    stats_round_duration: Histogram,
    stats_targets_failed: Family<FailedTarget, Counter>,
    store_write_duration: Histogram,
    store_write_errors: Counter,
    barrier_wait_duration: HistogramFamily<Outcome>,
    barrier_laggards: Counter,
    migration_keys: Counter,
    migration_bytes: Counter,
    migration_pass_errors: Counter,
    sync_actions: Family<Outcome, Counter>,
    promotes: Family<Outcome, Counter>,
    sentinel_switches: Counter,
}

/// 1 ms to ~65 s, doubling: barriers and rounds wait on the network.
fn wait_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// 0.1 ms to ~3 s, doubling: one store batch (an fsync, or an etcd round trip).
fn write_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

impl Default for CoreMetrics {
    fn default() -> Self {
        CoreMetrics {
            stats_rounds: Counter::default(),
            stats_round_duration: wait_buckets(),
            stats_targets_failed: Family::default(),
            store_write_duration: write_buckets(),
            store_write_errors: Counter::default(),
            barrier_wait_duration: Family::new_with_constructor(wait_buckets),
            barrier_laggards: Counter::default(),
            migration_keys: Counter::default(),
            migration_bytes: Counter::default(),
            migration_pass_errors: Counter::default(),
            sync_actions: Family::default(),
            promotes: Family::default(),
            sentinel_switches: Counter::default(),
        }
    }
}

fn outcome(ok: bool) -> Outcome {
    Outcome {
        outcome: if ok { "ok" } else { "error" },
    }
}

impl CoreMetrics {
    /// A stats round completed: its duration, and each target that did not answer.
    pub fn stats_round(&self, round: &StatsRound) {
        self.stats_rounds.inc();
        let took = round
            .finished
            .duration_since(round.started)
            .unwrap_or_default();
        self.stats_round_duration.observe(took.as_secs_f64());
        let servers = round
            .servers
            .iter()
            .map(|s| ("server", reason(&s.probe.outcome)));
        let sentinels = round
            .sentinels
            .iter()
            .map(|s| ("sentinel", reason(&s.probe.outcome)));
        for (kind, reason) in servers.chain(sentinels) {
            if let Some(reason) = reason {
                self.stats_targets_failed
                    .get_or_create(&FailedTarget { kind, reason })
                    .inc();
            }
        }
    }

    /// One store batch was written (or failed to be).
    pub fn store_write(&self, took: Duration, ok: bool) {
        self.store_write_duration.observe(took.as_secs_f64());
        if !ok {
            self.store_write_errors.inc();
        }
    }

    /// A barrier wait ended: `ok` when every live proxy applied the revision.
    pub fn barrier_wait(&self, took: Duration, ok: bool) {
        let label = Outcome {
            outcome: if ok { "ok" } else { "timeout" },
        };
        self.barrier_wait_duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// A barrier gave up on these many proxies.
    pub fn barrier_laggards(&self, n: usize) {
        self.barrier_laggards.inc_by(n as u64);
    }

    /// A migration pass ended, having moved these keys and (estimated) bytes.
    pub fn migration_moved(&self, keys: u64, bytes: u64) {
        self.migration_keys.inc_by(keys);
        self.migration_bytes.inc_by(bytes);
    }

    /// A migration pass over one source failed.
    pub fn migration_pass_failed(&self) {
        self.migration_pass_errors.inc();
    }

    /// A sync action ran (synced, or failed).
    pub fn sync_action(&self, ok: bool) {
        self.sync_actions.get_or_create(&outcome(ok)).inc();
    }

    /// A PromoteServer call ended.
    pub fn promote(&self, ok: bool) {
        self.promotes.get_or_create(&outcome(ok)).inc();
    }

    /// A master switch reported by the Sentinels was applied.
    pub fn sentinel_switch(&self) {
        self.sentinel_switches.inc();
    }

    /// Registers every series (the handles are shared, not copied).
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "topom_stats_rounds",
            "Stats rounds completed (periodic and RefreshRedisStats)",
            self.stats_rounds.clone(),
        );
        r.register_with_unit(
            "topom_stats_round_duration",
            "Duration of a stats round, first probe sent to last answer or deadline",
            Unit::Seconds,
            self.stats_round_duration.clone(),
        );
        r.register(
            "topom_stats_targets_failed",
            "Stats probes that got no answer: kind is server or sentinel, reason timeout or error",
            self.stats_targets_failed.clone(),
        );
        r.register_with_unit(
            "topom_store_write_duration",
            "Duration of one store write (a batch of records)",
            Unit::Seconds,
            self.store_write_duration.clone(),
        );
        r.register(
            "topom_store_write_errors",
            "Store writes that failed (the cache was reloaded from the store)",
            self.store_write_errors.clone(),
        );
        r.register_with_unit(
            "topom_barrier_wait_duration",
            "Time a migration step waited for every live proxy to apply a table; outcome ok or timeout",
            Unit::Seconds,
            self.barrier_wait_duration.clone(),
        );
        r.register(
            "topom_barrier_laggards",
            "Proxies named by barriers that timed out",
            self.barrier_laggards.clone(),
        );
        r.register(
            "topom_migration_moved_keys",
            "Keys moved by slot migration",
            self.migration_keys.clone(),
        );
        r.register_with_unit(
            "topom_migration_moved",
            "Bytes moved by slot migration (estimated from the values' sizes)",
            Unit::Bytes,
            self.migration_bytes.clone(),
        );
        r.register(
            "topom_migration_pass_errors",
            "Migration passes over one source master that failed",
            self.migration_pass_errors.clone(),
        );
        r.register(
            "topom_sync_actions",
            "Sync actions run; outcome ok (synced) or error (synced_failed)",
            self.sync_actions.clone(),
        );
        r.register(
            "topom_promotes",
            "PromoteServer calls; outcome ok or error",
            self.promotes.clone(),
        );
        r.register(
            "topom_sentinel_switches",
            "Master switches reported by the Sentinels and applied to a group",
            self.sentinel_switches.clone(),
        );
    }
}

fn reason<T>(o: &ProbeOutcome<T>) -> Option<&'static str> {
    match o {
        ProbeOutcome::Ok(_) => None,
        ProbeOutcome::Timeout => Some("timeout"),
        ProbeOutcome::Error(_) => Some("error"),
    }
}
