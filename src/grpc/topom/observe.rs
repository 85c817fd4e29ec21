//! The RPCs that read the servers' live state: INFO of one server or Sentinel,
//! the stats round (GetStats, WatchStats), and a round run now
//! (RefreshRedisStats).

use std::sync::Arc;

use tonic::Status;

use super::TopomService;
use crate::coordinator::Coordinator;
use crate::grpc::{convert, stats};
use crate::pb;
use crate::pb::encoded::Encoded;

pub(super) async fn get_server_info(
    c: &Coordinator,
    r: pb::GetServerInfoRequest,
) -> Result<pb::GetServerInfoResponse, Status> {
    let fields = c.server_info(&r.addr).await?;
    Ok(pb::GetServerInfoResponse {
        fields: fields.into_iter().collect(),
    })
}

pub(super) async fn get_sentinel_info(
    c: &Coordinator,
    r: pb::GetSentinelInfoRequest,
) -> Result<pb::GetSentinelInfoResponse, Status> {
    let report = c.sentinel_info(&r.addr).await?;
    let stats = convert::sentinel_report(&report);
    Ok(pb::GetSentinelInfoResponse {
        fields: stats.fields,
        monitored: if r.monitored {
            stats.sentinel
        } else {
            Default::default()
        },
    })
}

pub(super) fn get_stats(s: &TopomService, r: pb::GetStatsRequest) -> Result<Encoded, Status> {
    // Stats rounds run on the leader only.
    s.coordinator.check_not_standby()?;
    s.coordinator.check_stats_filter(&r.group_ids, &r.addrs)?;
    let closed = s.control.shutdown.is_cancelled();
    let filter = stats::Filter::new(&r.group_ids, &r.addrs, &r.fields);
    Ok(s.snapshot_cache.get(&s.coordinator, closed, &filter))
}

impl TopomService {
    /// The WatchStats stream for `r`, or why there is none.
    pub(in crate::grpc) fn open_watch(
        &self,
        r: pb::WatchStatsRequest,
    ) -> Result<stats::WatchStream, Status> {
        self.coordinator.check_not_standby()?;
        self.coordinator
            .check_stats_filter(&r.group_ids, &r.addrs)?;
        let rounds = stats::watch(
            &self.coordinator,
            stats::Filter::new(&r.group_ids, &r.addrs, &r.fields),
            self.round_cache.clone(),
            self.control.shutdown.clone(),
        );
        Ok(until_stepped_down(self.coordinator.clone(), rounds))
    }
}

/// Ends a leader-only stream when this instance stops leading, with the
/// error that names the next leader (rounds stop on a standby).
fn until_stepped_down(c: Arc<Coordinator>, rounds: stats::WatchStream) -> stats::WatchStream {
    use futures::StreamExt as _;
    let watching = c.clone();
    let ended = async move { watching.until_not_leader().await };
    let last = futures::stream::once(async move {
        match c.check_leader() {
            Ok(()) => None,
            Err(_) => Some(Err(Status::from(c.stepped_down().await))),
        }
    })
    .filter_map(std::future::ready);
    Box::pin(rounds.take_until(ended).chain(last))
}

pub(super) async fn refresh_redis_stats(
    c: &Coordinator,
    r: pb::RefreshRedisStatsRequest,
) -> Result<Encoded, Status> {
    let timeout = match r.timeout {
        None => stats::DEFAULT_PROBE_TIMEOUT,
        Some(d) => std::time::Duration::try_from(d).map_err(|_| {
            Status::invalid_argument("timeout must be a positive duration of at most 60s")
        })?,
    };
    let round = c.refresh_stats(timeout).await?;
    Ok(stats::refresh_response(&round))
}
