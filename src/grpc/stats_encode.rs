//! Group servers' stats encoded straight from a round, without building
//! their `fields` maps.
//!
//! A server's INFO has 130+ fields; as a `map<string, string>` that is two
//! strings and a hash insert per field, then as many frees. At 1024 servers
//! building, encoding and dropping those maps cost more CPU than the round
//! that read the INFO. Here each field is written from the round's own text as
//! the map entry it would have become (`key = 1`, `value = 2`), and the rest
//! of the message, which is small, is encoded by prost. A protobuf message is
//! the concatenation of its fields, in any order, so the pieces decode as one
//! message; the tests decode them and compare with the prost-built message.

use std::collections::BTreeSet;

use bytes::BufMut;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::stats::{base, server_summary};
use crate::coordinator::stats::ServerStats;
use crate::model::ProbeOutcome;
use crate::pb;

/// `ServerStats.stats`.
const SERVER_STATS_STATS: u32 = 4;
/// `RedisStats.fields`.
const REDIS_STATS_FIELDS: u32 = 1;

/// Appends field `tag` holding the message encoded in `body`.
pub(super) fn put_message(buf: &mut impl BufMut, tag: u32, body: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(body.len() as u64, buf);
    buf.put_slice(body);
}

/// The encoded length of field `tag` holding `len` bytes.
fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// One `ServerStats` with the INFO fields `fields` keeps (`None`: all), as
/// prost would encode `stats::server_stats(s, fields)` up to field order.
pub(super) fn server_stats(s: &ServerStats, fields: Option<&BTreeSet<String>>) -> Vec<u8> {
    let mut stats = base(&s.probe);
    stats.summary = s.summary.as_ref().map(server_summary);
    let rest = stats.encode_to_vec();

    let kept: Vec<(&str, &str)> = match &s.probe.outcome {
        ProbeOutcome::Ok(info) => match fields {
            None => info.iter().collect(),
            Some(f) => f
                .iter()
                .filter_map(|k| info.get(k).map(|v| (k.as_str(), v)))
                .collect(),
        },
        _ => Vec::new(),
    };
    let entry_len = |k: &str, v: &str| field_len(1, k.len()) + field_len(2, v.len());
    let redis_stats_len = rest.len()
        + kept
            .iter()
            .map(|(k, v)| field_len(REDIS_STATS_FIELDS, entry_len(k, v)))
            .sum::<usize>();

    let head = pb::ServerStats {
        addr: s.addr.clone(),
        group_id: s.group_id,
        index: s.index,
        stats: None,
    };
    let mut buf =
        Vec::with_capacity(head.encoded_len() + field_len(SERVER_STATS_STATS, redis_stats_len));
    head.encode_raw(&mut buf);
    encode_key(SERVER_STATS_STATS, WireType::LengthDelimited, &mut buf);
    encode_varint(redis_stats_len as u64, &mut buf);
    for (k, v) in kept {
        encode_key(REDIS_STATS_FIELDS, WireType::LengthDelimited, &mut buf);
        encode_varint(entry_len(k, v) as u64, &mut buf);
        put_message(&mut buf, 1, k.as_bytes());
        put_message(&mut buf, 2, v.as_bytes());
    }
    buf.put_slice(&rest);
    buf
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::coordinator::stats::summarize;
    use crate::model::{Info, Probe};

    fn server(outcome: ProbeOutcome<Info>) -> ServerStats {
        let summary = match &outcome {
            ProbeOutcome::Ok(i) => Some(summarize(i)),
            _ => None,
        };
        ServerStats {
            addr: "127.0.0.1:6379".into(),
            group_id: 3,
            index: 1,
            summary,
            probe: Probe {
                outcome,
                time: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            },
        }
    }

    fn decoded(bytes: &[u8]) -> pb::ServerStats {
        pb::ServerStats::decode(bytes).expect("decodes as ServerStats")
    }

    #[test]
    fn decodes_as_the_prost_built_message() {
        let info: Info = [
            ("role", "slave"),
            ("master_host", "127.0.0.1"),
            ("master_port", "6380"),
            ("used_memory", "1048576"),
            ("db0", "keys=3,expires=0,avg_ttl=0"),
            ("empty", ""),
            ("ключ", "значение"),
        ]
        .into_iter()
        .collect();
        let long: Info = (0..300).map(|i| (format!("f{i}"), "v".repeat(i))).collect();
        for s in [
            server(ProbeOutcome::Ok(info)),
            server(ProbeOutcome::Ok(long)),
            server(ProbeOutcome::Timeout),
            server(ProbeOutcome::Error("ERR no".into())),
        ] {
            let keep: BTreeSet<String> = ["role", "db0", "missing"].map(String::from).into();
            for fields in [None, Some(&keep)] {
                let want = super::super::stats::server_stats(&s, fields);
                assert_eq!(decoded(&server_stats(&s, fields)), want, "{:?}", s.probe);
            }
        }
    }

    #[test]
    fn a_filter_keeps_only_the_named_fields() {
        let info: Info = [("role", "master"), ("used_memory", "1")]
            .into_iter()
            .collect();
        let keep: BTreeSet<String> = ["used_memory".to_owned()].into();
        let got = decoded(&server_stats(&server(ProbeOutcome::Ok(info)), Some(&keep)));
        let fields = got.stats.unwrap().fields;
        assert_eq!(fields.len(), 1);
        assert_eq!(fields["used_memory"], "1");
    }
}
