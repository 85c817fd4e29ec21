//! Stats over gRPC: GetStats, RefreshRedisStats and the WatchStats stream.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::convert;
use crate::coordinator::stats::{SentinelStats, ServerStats, ServerSummary};
use crate::coordinator::{Coordinator, StatsRound};
use crate::model::{InfoMap, Probe, ProbeOutcome};
use crate::pb;
use crate::pb::encoded::Encoded;

/// The stream type of WatchStats.
pub type WatchStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Encoded, Status>> + Send>>;

/// The default per-target deadline of RefreshRedisStats.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a WatchStats subscriber asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    groups: BTreeSet<u32>,
    addrs: BTreeSet<String>,
    fields: Option<BTreeSet<String>>,
}

impl Filter {
    /// A filter from the request (empty lists mean "everything").
    pub fn new(r: &pb::WatchStatsRequest) -> Filter {
        Filter {
            groups: r.group_ids.iter().copied().collect(),
            addrs: r.addrs.iter().cloned().collect(),
            fields: (!r.fields.is_empty()).then(|| r.fields.iter().cloned().collect()),
        }
    }

    fn keeps_server(&self, s: &ServerStats) -> bool {
        (self.groups.is_empty() || self.groups.contains(&s.group_id))
            && (self.addrs.is_empty() || self.addrs.contains(&s.addr))
    }

    fn keeps_sentinel(&self, addr: &str) -> bool {
        // Sentinels belong to no group: a group filter leaves them out.
        self.groups.is_empty() && (self.addrs.is_empty() || self.addrs.contains(addr))
    }
}

/// Converts a round for one filter.
pub fn round_message(round: &StatsRound, f: &Filter) -> pb::WatchStatsResponse {
    pb::WatchStatsResponse {
        round: round.seq,
        started_at: Some(round.started.into()),
        finished_at: Some(round.finished.into()),
        servers: round
            .servers
            .iter()
            .filter(|s| f.keeps_server(s))
            .map(|s| server_stats(s, f.fields.as_ref()))
            .collect(),
        sentinels: round
            .sentinels
            .iter()
            .filter(|s| f.keeps_sentinel(&s.addr))
            .map(|s| sentinel_stats(s, f.fields.as_ref()))
            .collect(),
    }
}

/// Encoded rounds shared by subscribers with the same filter: a round is encoded
/// once per distinct filter, not once per subscriber.
#[derive(Default)]
pub struct RoundCache(Mutex<std::collections::HashMap<Filter, (u64, Encoded)>>);

impl RoundCache {
    fn get(&self, round: &StatsRound, filter: &Filter) -> Encoded {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seq, enc)) = c.get(filter)
            && *seq == round.seq
        {
            return enc.clone();
        }
        // Entries of older rounds are dropped, so the map holds only the filters
        // still in use.
        c.retain(|_, (seq, _)| *seq >= round.seq);
        let enc = Encoded::of(&round_message(round, filter));
        c.insert(filter.clone(), (round.seq, enc.clone()));
        enc
    }
}

/// The WatchStats stream: the current round at once, then each new round
/// (latest-value: a slow reader skips rounds), until the client goes or the
/// server shuts down.
pub fn watch(
    coordinator: &Coordinator,
    filter: Filter,
    cache: Arc<RoundCache>,
    shutdown: CancellationToken,
) -> WatchStream {
    let rx = coordinator.watch_stats();
    let encode = move |round: &StatsRound| cache.get(round, &filter);
    Box::pin(futures::stream::unfold(
        (rx, true, shutdown, encode),
        |(mut rx, first, shutdown, encode)| async move {
            if !first {
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return None },
                    () = shutdown.cancelled() => return None,
                }
            }
            if shutdown.is_cancelled() {
                return None;
            }
            let round = rx.borrow_and_update().clone();
            let msg = encode(&round);
            Some((Ok(msg), (rx, false, shutdown, encode)))
        },
    ))
}

/// The full snapshot of GetStats.
pub fn snapshot(c: &Coordinator, closed: bool) -> pb::StatsSnapshot {
    let round = c.stats();
    let table = c.table();
    let groups = c.groups();
    let sentinel = c.sentinel();
    let cfg = c.slot_action_config();
    pb::StatsSnapshot {
        closed,
        slots: table.mappings.iter().map(convert::mapping).collect(),
        groups: groups
            .values()
            .map(|g| pb::GroupEntry {
                group: Some(convert::group(g)),
                servers: round
                    .servers
                    .iter()
                    .filter(|s| s.group_id == g.id)
                    .map(|s| server_stats(s, None))
                    .collect(),
            })
            .collect(),
        proxies: c
            .proxies()
            .values()
            .map(|p| {
                let st = c.proxy_status(&p.token);
                pb::ProxyEntry {
                    stats: st.report.as_ref().map(convert::proxy_report),
                    proxy: Some(convert::proxy_with_status(p, &st)),
                }
            })
            .collect(),
        slot_action: Some(pb::SlotActionStats {
            interval_us: cfg.interval_us,
            disabled: cfg.disabled,
            status: c.slot_action_status(),
            executor: c.migrations_running(),
            progress: c
                .slot_progress()
                .into_iter()
                .map(|(slot, p)| pb::SlotProgress {
                    slot_id: slot,
                    keys_moved: p.keys_moved as i64,
                    keys_left: p.keys_left as i64,
                    bytes_moved: p.bytes_moved as i64,
                    keys_per_sec: p.keys_per_sec,
                    eta_seconds: p.eta_seconds,
                    error: p.error.clone(),
                })
                .collect(),
        }),
        sentinels: Some(pb::SentinelOverview {
            model: Some(convert::sentinel(&sentinel)),
            stats: round
                .sentinels
                .iter()
                .map(|s| sentinel_stats(s, None))
                .collect(),
            masters: {
                // What the Sentinel watcher last read, else what the stats saw.
                let reported = c.reported_masters();
                if reported.is_empty() {
                    round.sentinel_masters(c.product()).into_iter().collect()
                } else {
                    reported.into_iter().collect()
                }
            },
        }),
        round: round.seq,
    }
}

/// RefreshRedisStats's answer for a round.
pub fn refresh_response(round: &StatsRound) -> pb::RefreshRedisStatsResponse {
    let full = round_message(round, &Filter::default());
    pb::RefreshRedisStatsResponse {
        round: round.seq,
        servers: full.servers,
        sentinels: full.sentinels,
        elapsed: round
            .finished
            .duration_since(round.started)
            .ok()
            .and_then(|d| prost_types::Duration::try_from(d).ok()),
    }
}

fn keep_fields(
    info: &InfoMap,
    fields: Option<&BTreeSet<String>>,
) -> std::collections::HashMap<String, String> {
    match fields {
        None => info.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(f) => f
            .iter()
            .filter_map(|k| info.get(k).map(|v| (k.clone(), v.clone())))
            .collect(),
    }
}

fn base<T>(p: &Probe<T>) -> pb::RedisStats {
    let mut r = pb::RedisStats {
        time: Some(p.time.into()),
        ..Default::default()
    };
    match &p.outcome {
        ProbeOutcome::Ok(_) => {}
        ProbeOutcome::Error(e) => r.error = e.clone(),
        ProbeOutcome::Timeout => {
            r.timeout = true;
            r.error = "timeout".into();
        }
    }
    r
}

fn summary(s: &ServerSummary) -> pb::ServerSummary {
    pb::ServerSummary {
        role: s.role.clone(),
        master_addr: s.master_addr.clone(),
        master_link_status: s.master_link_status.clone(),
        repl_offset: s.repl_offset,
        lag_bytes: s.lag_bytes,
        used_memory: s.used_memory,
        maxmemory: s.maxmemory,
        ops_per_sec: s.ops_per_sec,
        connected_clients: s.connected_clients,
        keys_per_db: s.keys_per_db.iter().map(|(k, v)| (*k, *v)).collect(),
        redis_version: s.redis_version.clone(),
    }
}

fn server_stats(s: &ServerStats, fields: Option<&BTreeSet<String>>) -> pb::ServerStats {
    let mut stats = base(&s.probe);
    if let ProbeOutcome::Ok(info) = &s.probe.outcome {
        stats.fields = keep_fields(info, fields);
    }
    stats.summary = s.summary.as_ref().map(summary);
    pb::ServerStats {
        addr: s.addr.clone(),
        group_id: s.group_id,
        index: s.index,
        stats: Some(stats),
    }
}

fn sentinel_stats(s: &SentinelStats, fields: Option<&BTreeSet<String>>) -> pb::SentinelStats {
    let mut stats = base(&s.probe);
    if let ProbeOutcome::Ok(report) = &s.probe.outcome {
        let full = convert::sentinel_report(report);
        stats.fields = keep_fields(&report.info, fields);
        stats.sentinel = full.sentinel;
    }
    pb::SentinelStats {
        addr: s.addr.clone(),
        stats: Some(stats),
    }
}
