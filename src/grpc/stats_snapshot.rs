//! The GetStats answer, with its heavy parts encoded once.
//!
//! Every server's INFO and the 1024 slot mappings change once per round or per
//! table revision, while dashboards ask many times per round; the proxies, the
//! slot-action engine and the Sentinel masters change between calls but are
//! small. So the heavy parts are encoded once and spliced into each answer. That
//! is sound because a protobuf message's encoding is the concatenation of its
//! fields' encodings: a `StatsSnapshot` holding only the slots, followed by one
//! holding only the groups, decodes as one holding both.
//!
//! A filtered call encodes its groups and Sentinel stats on demand.

use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::convert;
use super::stats::{Filter, sentinel_stats};
use super::stats_encode;
use crate::coordinator::{Coordinator, SlotTable, StatsRound};
use crate::model::Group;
use crate::pb;
use crate::pb::encoded::Encoded;

/// `GetStatsResponse.stats`.
const RESPONSE_STATS: u32 = 1;
/// `StatsSnapshot.groups`.
const SNAPSHOT_GROUPS: u32 = 3;
/// `StatsSnapshot.sentinels`.
const SNAPSHOT_SENTINELS: u32 = 6;
/// `GroupEntry.servers`.
const ENTRY_SERVERS: u32 = 2;

/// The encoded parts of the last table and the last round asked for.
#[derive(Default)]
pub(super) struct SnapshotCache {
    slots: Mutex<Option<(Arc<SlotTable>, Bytes)>>,
    round: Mutex<Option<RoundParts>>,
}

/// The parts of one round: they also depend on the groups (their records are
/// in the same entries as their servers' stats), which change far more rarely.
struct RoundParts {
    round: Arc<StatsRound>,
    groups: Vec<Group>,
    /// `StatsSnapshot.groups`, every entry.
    group_entries: Bytes,
    /// `SentinelOverview.stats`, every entry.
    sentinel_stats: Bytes,
}

impl SnapshotCache {
    /// The GetStats answer through `filter`, as it is sent.
    pub(super) fn get(&self, c: &Coordinator, closed: bool, filter: &Filter) -> Encoded {
        // One round for every part, so the groups and Sentinels agree.
        let round = c.stats();
        let table = c.table();
        let groups: Vec<Group> = c.groups().into_values().collect();
        let slots = self.slots(&table);
        let (group_entries, sentinel_stats) = if filter.is_everything() {
            self.round_parts(&round, groups)
        } else {
            (
                encode_group_entries(&round, &groups, filter),
                encode_sentinel_stats(&round, filter),
            )
        };
        let sentinel = c.sentinel();
        let reported = c.reported_masters();
        // What the Sentinel watcher last read, else what the stats saw.
        let masters = if reported.is_empty() {
            round.sentinel_masters(c.product())
        } else {
            reported
        };
        let overview = pb::SentinelOverview {
            model: Some(convert::sentinel(&sentinel)),
            stats: Vec::new(),
            masters: masters.into_iter().collect(),
        }
        .encode_to_vec();
        let head = pb::StatsSnapshot {
            closed,
            ..Default::default()
        }
        .encode_to_vec();
        let middle = pb::StatsSnapshot {
            proxies: proxies(c),
            slot_action: Some(slot_action(c)),
            ..Default::default()
        }
        .encode_to_vec();
        let tail = pb::StatsSnapshot {
            round: round.seq,
            ..Default::default()
        }
        .encode_to_vec();

        // The fields in their declared order, as prost would write them.
        let overview_len = overview.len() + sentinel_stats.len();
        let snapshot_len = head.len()
            + slots.len()
            + group_entries.len()
            + middle.len()
            + key_len(SNAPSHOT_SENTINELS)
            + encoded_len_varint(overview_len as u64)
            + overview_len
            + tail.len();
        let total =
            key_len(RESPONSE_STATS) + encoded_len_varint(snapshot_len as u64) + snapshot_len;
        let mut buf = BytesMut::with_capacity(total);
        encode_key(RESPONSE_STATS, WireType::LengthDelimited, &mut buf);
        encode_varint(snapshot_len as u64, &mut buf);
        buf.put_slice(&head);
        buf.put_slice(&slots);
        buf.put_slice(&group_entries);
        buf.put_slice(&middle);
        encode_key(SNAPSHOT_SENTINELS, WireType::LengthDelimited, &mut buf);
        encode_varint(overview_len as u64, &mut buf);
        buf.put_slice(&overview);
        buf.put_slice(&sentinel_stats);
        buf.put_slice(&tail);
        debug_assert_eq!(buf.len(), total);
        Encoded(buf.freeze())
    }

    fn slots(&self, table: &Arc<SlotTable>) -> Bytes {
        // Each slot holds a whole value or none, so a poisoned lock is still usable.
        let mut cached = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, bytes)) = cached.as_ref()
            && (Arc::ptr_eq(t, table) || (t.revision == table.revision && t.epoch == table.epoch))
        {
            return bytes.clone();
        }
        let bytes = Bytes::from(
            pb::StatsSnapshot {
                slots: table.mappings.iter().map(convert::mapping).collect(),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        *cached = Some((table.clone(), bytes.clone()));
        bytes
    }

    fn round_parts(&self, round: &Arc<StatsRound>, groups: Vec<Group>) -> (Bytes, Bytes) {
        let mut cached = self.round.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cached.as_ref()
            && Arc::ptr_eq(&p.round, round)
            && p.groups == groups
        {
            return (p.group_entries.clone(), p.sentinel_stats.clone());
        }
        let everything = Filter::default();
        let parts = RoundParts {
            group_entries: encode_group_entries(round, &groups, &everything),
            sentinel_stats: encode_sentinel_stats(round, &everything),
            round: round.clone(),
            groups,
        };
        let out = (parts.group_entries.clone(), parts.sentinel_stats.clone());
        *cached = Some(parts);
        out
    }
}

/// `StatsSnapshot.groups` of the groups and servers `filter` keeps.
fn encode_group_entries(round: &StatsRound, groups: &[Group], filter: &Filter) -> Bytes {
    let mut buf = BytesMut::new();
    for g in groups.iter().filter(|g| filter.keeps_group(g.id)) {
        let servers: Vec<Vec<u8>> = round
            .servers
            .iter()
            .filter(|s| s.group_id == g.id && filter.keeps_server(s))
            .map(|s| stats_encode::server_stats(s, filter.fields()))
            .collect();
        // Under an address filter a group none of whose servers is asked
        // for is noise.
        if servers.is_empty() && filter.names_servers() {
            continue;
        }
        let mut entry = pb::GroupEntry {
            group: Some(convert::group(g)),
            servers: Vec::new(),
        }
        .encode_to_vec();
        for s in &servers {
            stats_encode::put_message(&mut entry, ENTRY_SERVERS, s);
        }
        stats_encode::put_message(&mut buf, SNAPSHOT_GROUPS, &entry);
    }
    buf.freeze()
}

/// `SentinelOverview.stats` of the Sentinels `filter` keeps.
fn encode_sentinel_stats(round: &StatsRound, filter: &Filter) -> Bytes {
    Bytes::from(
        pb::SentinelOverview {
            stats: round
                .sentinels
                .iter()
                .filter(|s| filter.keeps_sentinel(&s.addr))
                .map(|s| sentinel_stats(s, filter.fields()))
                .collect(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

fn proxies(c: &Coordinator) -> Vec<pb::ProxyEntry> {
    c.proxies()
        .values()
        .map(|p| {
            let st = c.proxy_status(&p.token);
            pb::ProxyEntry {
                stats: st.report.as_ref().map(convert::proxy_report),
                proxy: Some(convert::proxy_with_status(p, &st)),
            }
        })
        .collect()
}

fn slot_action(c: &Coordinator) -> pb::SlotActionStats {
    let cfg = c.slot_action_config();
    pb::SlotActionStats {
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
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::coordinator::testing::{Harness, harness, settings};
    use crate::model::InfoMap;

    fn info(pairs: &[(&str, &str)]) -> InfoMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Two groups of two servers, each with INFO, and one round.
    async fn two_groups() -> Harness {
        let h = harness(settings()).await;
        h.group(1, &["a:1", "b:1"]).await;
        h.group(2, &["c:1", "d:1"]).await;
        for a in ["a:1", "b:1", "c:1", "d:1"] {
            h.probe.set_info(
                a,
                info(&[("used_memory", "100"), ("role", "master"), ("tcp_port", a)]),
            );
        }
        h.coordinator
            .refresh_stats(Duration::from_secs(1))
            .await
            .unwrap();
        h
    }

    fn decode(e: &Encoded) -> pb::StatsSnapshot {
        pb::GetStatsResponse::decode(e.0.clone())
            .expect("a GetStatsResponse")
            .stats
            .expect("a snapshot")
    }

    /// The snapshot as one message, built the plain way: what the splice must
    /// decode to.
    fn built(c: &Coordinator) -> pb::StatsSnapshot {
        let round = c.stats();
        let groups: Vec<Group> = c.groups().into_values().collect();
        let everything = Filter::default();
        let mut s =
            pb::StatsSnapshot::decode(encode_group_entries(&round, &groups, &everything)).unwrap();
        s.slots = c.table().mappings.iter().map(convert::mapping).collect();
        s.proxies = proxies(c);
        s.slot_action = Some(slot_action(c));
        s.sentinels = Some(pb::SentinelOverview {
            model: Some(convert::sentinel(&c.sentinel())),
            stats: Vec::new(),
            masters: round.sentinel_masters(c.product()).into_iter().collect(),
        });
        s.round = round.seq;
        s
    }

    #[tokio::test]
    async fn the_spliced_answer_decodes_as_the_whole_snapshot() {
        let h = two_groups().await;
        let c = &h.coordinator;
        let got = decode(&SnapshotCache::default().get(c, false, &Filter::default()));
        assert_eq!(got, built(c));
        assert_eq!(got.slots.len(), 1024);
        assert_eq!(got.groups.len(), 2);
        assert_eq!(got.round, 1);
    }

    #[tokio::test]
    async fn one_encoding_per_round_and_per_group_change() {
        let h = two_groups().await;
        let c = &h.coordinator;
        let cache = SnapshotCache::default();
        let groups = |cache: &SnapshotCache| {
            cache.get(c, false, &Filter::default());
            let parts = cache.round.lock().unwrap();
            parts.as_ref().unwrap().group_entries.as_ptr()
        };
        let first = groups(&cache);
        assert_eq!(groups(&cache), first, "the same round is not encoded again");

        c.refresh_stats(Duration::from_secs(1)).await.unwrap();
        let second = groups(&cache);
        assert_ne!(second, first, "a new round is encoded");
        assert_eq!(decode(&cache.get(c, false, &Filter::default())).round, 2);

        c.create_group(3).await.unwrap();
        assert_ne!(groups(&cache), second, "a new group is encoded");
        assert_eq!(
            decode(&cache.get(c, false, &Filter::default()))
                .groups
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn filters_narrow_groups_servers_and_fields() {
        let h = two_groups().await;
        let c = &h.coordinator;
        let cache = SnapshotCache::default();
        let by_group = decode(&cache.get(c, false, &Filter::new(&[2], &[], &[])));
        assert_eq!(
            by_group
                .groups
                .iter()
                .map(|g| g.group.as_ref().unwrap().id)
                .collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(by_group.groups[0].servers.len(), 2);
        assert_eq!(by_group.slots.len(), 1024, "the slots stay whole");

        let by_addr = decode(&cache.get(c, false, &Filter::new(&[], &["b:1".into()], &[])));
        assert_eq!(by_addr.groups.len(), 1, "group 2 has none of the servers");
        let servers: Vec<&str> = by_addr.groups[0]
            .servers
            .iter()
            .map(|s| s.addr.as_str())
            .collect();
        assert_eq!(servers, ["b:1"]);

        let by_field =
            decode(&cache.get(c, false, &Filter::new(&[], &[], &["used_memory".into()])));
        for g in &by_field.groups {
            for s in &g.servers {
                let fields = &s.stats.as_ref().unwrap().fields;
                assert_eq!(
                    fields.keys().collect::<Vec<_>>(),
                    ["used_memory"],
                    "{}",
                    s.addr
                );
            }
        }
        // A filtered call does not replace the shared encoding.
        let whole = decode(&cache.get(c, false, &Filter::default()));
        assert_eq!(whole, built(c));
    }
}
