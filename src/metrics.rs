//! topom's own metrics, served over HTTP on `metrics_addr` (`/metrics` in the
//! OpenMetrics text format, `/healthz`); the same listener answers the
//! registration of a `codis-proxy --dashboard=ADDR` ([`codis_dashboard`]).
//!
//! Three sources feed one `prometheus-client` registry:
//! - [`rpc`]: a tower layer in front of the gRPC services (calls by service,
//!   method and code; their duration);
//! - the core's recorder, [`CoreMetrics`](crate::coordinator::metrics::CoreMetrics):
//!   counters and histograms the coordinator moves as it works;
//! - [`CoreGauges`]: gauges read from the coordinator at scrape time (slot table
//!   revision, lock, proxies and slots by state), so they can never go stale.
//!
//! No label takes a value from outside a fixed set: no key, address, proxy
//! token or client ever becomes a label, so the number of series is bounded.
//!
//! This module sits beside `grpc` (it sees HTTP, never protobuf types) and may
//! use the coordinator; only `server` wires it in.

pub mod codis_dashboard;
pub mod http;
pub mod rpc;

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::coordinator::Coordinator;

pub use rpc::{RpcMetrics, RpcMetricsLayer};

/// Everything `/metrics` shows.
pub struct Exporter {
    registry: Registry,
}

impl Exporter {
    /// A registry over the coordinator's metrics and the RPC layer's.
    pub fn new(coordinator: Arc<Coordinator>, rpc: &RpcMetrics) -> Exporter {
        let mut registry = Registry::default();
        rpc.register(&mut registry);
        coordinator.metrics().register(&mut registry);
        registry.register_collector(Box::new(CoreGauges(coordinator)));
        Exporter { registry }
    }

    /// The exposition text (OpenMetrics, ending in `# EOF`).
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `state=...`
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

/// Gauges computed from the coordinator at each scrape.
struct CoreGauges(Arc<Coordinator>);

impl fmt::Debug for CoreGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CoreGauges")
    }
}

/// Every slot state a slot can be in, action states winning over ownership.
const SLOT_STATES: [&str; 7] = [
    "online",
    "offline",
    "pending",
    "preparing",
    "prepared",
    "migrating",
    "finished",
];

/// Proxy states (a partition: each registered proxy is in exactly one).
const PROXY_STATES: [&str; 3] = ["connected", "live", "expired"];

impl CoreGauges {
    fn slots(&self) -> Family<State, Gauge> {
        let table = self.0.table();
        let family = family_of(&SLOT_STATES);
        for m in table.mappings.iter() {
            let state = match m.action.map(|a| a.state) {
                Some(s) => s.as_str(),
                None if m.group_id == 0 => "offline",
                None => "online",
            };
            family.get_or_create(&State { state }).inc();
        }
        family
    }

    fn proxies(&self) -> Family<State, Gauge> {
        let family = family_of(&PROXY_STATES);
        for token in self.0.proxies().keys() {
            let s = self.0.proxy_status(token);
            let state = match (s.lease_live, s.connected) {
                (false, _) => "expired",
                (true, true) => "connected",
                (true, false) => "live",
            };
            family.get_or_create(&State { state }).inc();
        }
        family
    }
}

/// A gauge family with every state present (at 0), so a state that empties
/// shows 0 rather than vanishing.
fn family_of(states: &[&'static str]) -> Family<State, Gauge> {
    let family = Family::<State, Gauge>::default();
    for &state in states {
        drop(family.get_or_create(&State { state }));
    }
    family
}

fn gauge(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), fmt::Error> {
    let m = e.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

impl Collector for CoreGauges {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let c = &self.0;
        gauge(
            &mut e,
            "topom_slot_table_revision",
            "Revision of the published slot table (restarts at 1 with each start's epoch)",
            &ConstGauge::new(c.table().revision as i64),
        )?;
        gauge(
            &mut e,
            "topom_ownership_lock_held",
            "1 while this instance holds the product's ownership lock (lease) and may write, else 0",
            &ConstGauge::new(i64::from(c.is_online())),
        )?;
        gauge(
            &mut e,
            "topom_groups",
            "Groups in the product",
            &ConstGauge::new(c.groups().len() as i64),
        )?;
        gauge(
            &mut e,
            "topom_slots",
            "Slots by state: online/offline (no action; offline = no group), else the migration state",
            &self.slots(),
        )?;
        gauge(
            &mut e,
            "topom_migrations_running",
            "Migration passes (one per source master) running now",
            &ConstGauge::new(i64::from(c.migrations_running())),
        )?;
        gauge(
            &mut e,
            "topom_proxies",
            "Registered proxies by state: connected (live lease, WatchSlots open), live (lease live, no stream), expired (lease lapsed)",
            &self.proxies(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SlotState;

    #[test]
    fn every_slot_state_has_a_series() {
        for s in [
            SlotState::Pending,
            SlotState::Preparing,
            SlotState::Prepared,
            SlotState::Migrating,
            SlotState::Finished,
        ] {
            assert!(SLOT_STATES.contains(&s.as_str()), "{}", s.as_str());
        }
    }
}
