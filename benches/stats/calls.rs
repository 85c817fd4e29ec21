//! The bench's calls to topom and the checks of their answers. Responses are
//! taken as bytes, and only their heads decoded, except where a check needs all.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use prost::Message;
use tonic::client::Grpc;
use tonic::transport::Channel;
use topom::pb;

use crate::support::fake_redis::fleet::SERVERS_PER_GROUP;
use crate::support::fake_redis::info_text::LAG_STEP;
use crate::support::raw_grpc;

/// Big enough for a RefreshRedisStats answer at 1024 targets (~6 MB).
const MAX_MESSAGE: usize = 256 << 20;

/// Just the head of a RefreshRedisStatsResponse; prost skips the servers.
#[derive(Clone, PartialEq, prost::Message)]
struct RefreshHead {
    #[prost(uint64, tag = "1")]
    round: u64,
    #[prost(message, optional, tag = "4")]
    elapsed: Option<prost_types::Duration>,
}

/// Just the head of a WatchStatsResponse; prost skips the servers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchHead {
    #[prost(uint64, tag = "1")]
    pub round: u64,
    #[prost(message, optional, tag = "3")]
    pub finished_at: Option<prost_types::Timestamp>,
}

/// Just `stats.round` of a GetStatsResponse.
#[derive(Clone, PartialEq, prost::Message)]
struct GetStatsHead {
    #[prost(message, optional, tag = "1")]
    stats: Option<SnapshotHead>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SnapshotHead {
    #[prost(uint64, tag = "7")]
    round: u64,
}

/// Groups of 4 consecutive addresses.
pub fn groups_of(addrs: &[String]) -> Vec<Vec<String>> {
    addrs
        .chunks(SERVERS_PER_GROUP)
        .map(<[String]>::to_vec)
        .collect()
}

/// A raw client that takes the largest answers.
pub fn grpc(channel: Channel) -> Grpc<Channel> {
    Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE)
}

/// One RefreshRedisStats; the raw response and the client-observed time.
pub async fn refresh(grpc: &mut Grpc<Channel>, timeout: Option<Duration>) -> (Bytes, Duration) {
    let req = pb::RefreshRedisStatsRequest {
        timeout: timeout.map(|t| prost_types::Duration::try_from(t).expect("a duration")),
    };
    raw_grpc::unary(grpc, "/topom.v1.Topom/RefreshRedisStats", req).await
}

/// One GetStats, taken as bytes; the client-observed time.
pub async fn get_stats_raw(grpc: &mut Grpc<Channel>) -> (usize, Duration) {
    let (body, took) = raw_grpc::unary(
        grpc,
        "/topom.v1.Topom/GetStats",
        pb::GetStatsRequest::default(),
    )
    .await;
    (body.len(), took)
}

pub fn head(raw: &Bytes) -> (u64, Duration) {
    let h = RefreshHead::decode(raw.clone()).expect("decode RefreshRedisStatsResponse");
    let elapsed = h
        .elapsed
        .and_then(|d| Duration::try_from(d).ok())
        .expect("a round elapsed time");
    (h.round, elapsed)
}

/// Checks a full round: every target present; silent ones timed out, live ones
/// with the INFO of the right responder and topom's derived summary.
pub fn check_round(
    raw: &Bytes,
    live: &[String],
    silent: &HashSet<String>,
    min_fields: usize,
) -> Result<(), String> {
    let r =
        pb::RefreshRedisStatsResponse::decode(raw.clone()).map_err(|e| format!("decode: {e}"))?;

    let want: HashSet<&str> = live
        .iter()
        .map(String::as_str)
        .chain(silent.iter().map(String::as_str))
        .collect();
    if r.servers.len() != want.len() {
        return Err(format!(
            "{} servers in the round, {} in the topology",
            r.servers.len(),
            want.len()
        ));
    }
    let mut bad = Vec::new();
    for s in &r.servers {
        let Some(st) = s.stats.as_ref() else {
            bad.push(format!("{}: no stats", s.addr));
            continue;
        };
        if !want.contains(s.addr.as_str()) {
            bad.push(format!("{}: not in the topology", s.addr));
        } else if silent.contains(&s.addr) {
            if !st.timeout || !st.fields.is_empty() {
                bad.push(format!(
                    "{} (silent): timeout {}, {} fields, error {:?}",
                    s.addr,
                    st.timeout,
                    st.fields.len(),
                    st.error
                ));
            }
        } else {
            let port = s.addr.rsplit_once(':').map_or("", |(_, p)| p);
            let sum = st.summary.clone().unwrap_or_default();
            let want_role = if s.index == 0 { "master" } else { "slave" };
            let ok = !st.timeout
                && st.error.is_empty()
                && st.fields.len() >= min_fields
                && st.fields.get("tcp_port").map(String::as_str) == Some(port)
                && sum.role == want_role
                && sum.redis_version == "7.2.4"
                && sum.used_memory > 0;
            if !ok {
                bad.push(format!(
                    "{} (live, index {}): timeout {}, error {:?}, {} fields, role {:?}",
                    s.addr,
                    s.index,
                    st.timeout,
                    st.error,
                    st.fields.len(),
                    sum.role
                ));
            } else if s.index > 0 && sum.lag_bytes != s.index as i64 * LAG_STEP {
                // Only when the group master answered too (it is never silent here).
                bad.push(format!(
                    "{}: lag_bytes {} (expected {})",
                    s.addr,
                    sum.lag_bytes,
                    s.index as i64 * LAG_STEP
                ));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} servers wrong, e.g. {}",
            bad.len(),
            r.servers.len(),
            bad[..bad.len().min(3)].join("; ")
        ))
    }
}

/// The round the server last published, from GetStats (only `round` decoded).
pub async fn server_round(g: &mut Grpc<Channel>) -> u64 {
    g.ready().await.expect("channel ready");
    let r = g
        .unary(
            tonic::Request::new(pb::GetStatsRequest::default()),
            PathAndQuery::from_static("/topom.v1.Topom/GetStats"),
            tonic_prost::ProstCodec::<pb::GetStatsRequest, GetStatsHead>::default(),
        )
        .await
        .expect("GetStats");
    r.into_inner().stats.map_or(0, |s| s.round)
}
