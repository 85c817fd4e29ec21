//! Stats over gRPC: the filters, RefreshRedisStats and the WatchStats stream
//! (GetStats is in `stats_snapshot`).

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::Status;

use bytes::BytesMut;
use prost::Message;

use super::{convert, stats_encode};
use crate::coordinator::stats::{SentinelStats, ServerStats, ServerSummary};
use crate::coordinator::{Coordinator, StatsRound};
use crate::model::{Probe, ProbeOutcome};
use crate::pb;
use crate::pb::encoded::Encoded;

/// The stream type of WatchStats.
pub type WatchStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Encoded, Status>> + Send>>;

/// The default per-target deadline of RefreshRedisStats.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a WatchStats subscriber or a GetStats caller asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    groups: BTreeSet<u32>,
    addrs: BTreeSet<String>,
    fields: Option<BTreeSet<String>>,
}

impl Filter {
    /// A filter from a request's lists (empty lists mean "everything").
    pub fn new(group_ids: &[u32], addrs: &[String], fields: &[String]) -> Filter {
        Filter {
            groups: group_ids.iter().copied().collect(),
            addrs: addrs.iter().cloned().collect(),
            fields: (!fields.is_empty()).then(|| fields.iter().cloned().collect()),
        }
    }

    /// True when the filter keeps everything.
    pub fn is_everything(&self) -> bool {
        self.groups.is_empty() && self.addrs.is_empty() && self.fields.is_none()
    }

    /// The INFO fields to keep (`None`: all).
    pub(super) fn fields(&self) -> Option<&BTreeSet<String>> {
        self.fields.as_ref()
    }

    /// True when the filter names servers by address.
    pub(super) fn names_servers(&self) -> bool {
        !self.addrs.is_empty()
    }

    pub(super) fn keeps_group(&self, gid: u32) -> bool {
        self.groups.is_empty() || self.groups.contains(&gid)
    }

    pub(super) fn keeps_server(&self, s: &ServerStats) -> bool {
        self.keeps_group(s.group_id) && (self.addrs.is_empty() || self.addrs.contains(&s.addr))
    }

    pub(super) fn keeps_sentinel(&self, addr: &str) -> bool {
        // Sentinels belong to no group: a group filter leaves them out.
        self.groups.is_empty() && (self.addrs.is_empty() || self.addrs.contains(addr))
    }
}

/// `WatchStatsResponse` field numbers.
const WATCH_SERVERS: u32 = 4;
/// `RefreshRedisStatsResponse` field numbers.
const REFRESH_SERVERS: u32 = 2;

/// A round through one filter, as a `WatchStatsResponse`.
pub fn round_message(round: &StatsRound, f: &Filter) -> Encoded {
    let head = pb::WatchStatsResponse {
        round: round.seq,
        started_at: Some(round.started.into()),
        finished_at: Some(round.finished.into()),
        servers: Vec::new(),
        sentinels: round
            .sentinels
            .iter()
            .filter(|s| f.keeps_sentinel(&s.addr))
            .map(|s| sentinel_stats(s, f.fields()))
            .collect(),
    };
    with_servers(&head, WATCH_SERVERS, round, f)
}

/// `head` encoded, then each server `f` keeps as field `tag`.
fn with_servers(head: &impl Message, tag: u32, round: &StatsRound, f: &Filter) -> Encoded {
    let servers: Vec<Vec<u8>> = round
        .servers
        .iter()
        .filter(|s| f.keeps_server(s))
        .map(|s| stats_encode::server_stats(s, f.fields()))
        .collect();
    let len = head.encoded_len()
        + servers
            .iter()
            .map(|b| prost::encoding::key_len(tag) + prost::length_delimiter_len(b.len()) + b.len())
            .sum::<usize>();
    let mut buf = BytesMut::with_capacity(len);
    head.encode_raw(&mut buf);
    for b in &servers {
        stats_encode::put_message(&mut buf, tag, b);
    }
    debug_assert_eq!(buf.len(), len);
    Encoded(buf.freeze())
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
        let enc = round_message(round, filter);
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

/// RefreshRedisStats's answer for a round.
pub fn refresh_response(round: &StatsRound) -> Encoded {
    let everything = Filter::default();
    let head = pb::RefreshRedisStatsResponse {
        round: round.seq,
        servers: Vec::new(),
        sentinels: round
            .sentinels
            .iter()
            .map(|s| sentinel_stats(s, None))
            .collect(),
        elapsed: round
            .finished
            .duration_since(round.started)
            .ok()
            .and_then(|d| prost_types::Duration::try_from(d).ok()),
    };
    with_servers(&head, REFRESH_SERVERS, round, &everything)
}

fn keep_fields<'a>(
    all: impl Iterator<Item = (&'a str, &'a str)>,
    get: impl Fn(&str) -> Option<&'a str>,
    fields: Option<&BTreeSet<String>>,
) -> std::collections::HashMap<String, String> {
    match fields {
        None => all.map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        Some(f) => f
            .iter()
            .filter_map(|k| get(k).map(|v| (k.clone(), v.to_owned())))
            .collect(),
    }
}

pub(super) fn base<T>(p: &Probe<T>) -> pb::RedisStats {
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

pub(super) fn server_summary(s: &ServerSummary) -> pb::ServerSummary {
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

/// A server's stats as a prost message: what `stats_encode::server_stats`
/// writes directly, and the reference its tests compare with.
#[cfg(test)]
pub(super) fn server_stats(s: &ServerStats, fields: Option<&BTreeSet<String>>) -> pb::ServerStats {
    let mut stats = base(&s.probe);
    if let ProbeOutcome::Ok(info) = &s.probe.outcome {
        stats.fields = keep_fields(info.iter(), |k| info.get(k), fields);
    }
    stats.summary = s.summary.as_ref().map(server_summary);
    pb::ServerStats {
        addr: s.addr.clone(),
        group_id: s.group_id,
        index: s.index,
        stats: Some(stats),
    }
}

pub(super) fn sentinel_stats(
    s: &SentinelStats,
    fields: Option<&BTreeSet<String>>,
) -> pb::SentinelStats {
    let mut stats = base(&s.probe);
    if let ProbeOutcome::Ok(report) = &s.probe.outcome {
        let full = convert::sentinel_report(report);
        let info = &report.info;
        stats.fields = keep_fields(
            info.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            |k| info.get(k).map(String::as_str),
            fields,
        );
        stats.sentinel = full.sentinel;
    }
    pb::SentinelStats {
        addr: s.addr.clone(),
        stats: Some(stats),
    }
}
