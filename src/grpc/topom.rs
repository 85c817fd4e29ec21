//! The `topom.v1.Topom` service: a thin adapter from protobuf to the coordinator.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::slots_cache::SlotsCache;
use super::stats_snapshot::SnapshotCache;
use super::{convert, stats};
use crate::coordinator::Coordinator;
use crate::pb;
use crate::pb::encoded::Encoded;
use crate::pb::fast::topom_server::Topom;

/// What the service controls beyond the coordinator: process shutdown, the log
/// level, and the configuration it reports.
pub struct ServiceControl {
    /// Cancelled by the Shutdown RPC; the server drains and exits.
    pub shutdown: CancellationToken,
    /// Applies a log filter (`RUST_LOG` syntax).
    pub set_log_filter: super::LogFilterFn,
    /// The configuration as reported by GetOverview.
    pub config: pb::ConfigView,
}

/// The admin service.
pub struct TopomService {
    coordinator: Arc<Coordinator>,
    control: ServiceControl,
    /// The ListSlots answer of the latest revision, encoded once.
    slots_cache: SlotsCache,
    /// The latest full stats round, encoded once for unfiltered watchers.
    round_cache: Arc<stats::RoundCache>,
    /// The heavy parts of the GetStats answer, encoded once per round.
    snapshot_cache: SnapshotCache,
}

impl TopomService {
    /// A service over `coordinator`.
    pub fn new(coordinator: Arc<Coordinator>, control: ServiceControl) -> TopomService {
        TopomService {
            coordinator,
            control,
            slots_cache: SlotsCache::default(),
            round_cache: Arc::default(),
            snapshot_cache: SnapshotCache::default(),
        }
    }
}

impl TopomService {
    /// The WatchStats stream for `r`, or why there is none.
    pub(super) fn open_watch(
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

type Reply<T> = Result<Response<T>, Status>;

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

/// How long Resign waits for a standby by default, and at most.
const RESIGN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_RESIGN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

#[tonic::async_trait]
impl Topom for TopomService {
    async fn get_overview(
        &self,
        _: Request<pb::GetOverviewRequest>,
    ) -> Reply<pb::GetOverviewResponse> {
        let c = &self.coordinator;
        let instances = c.instances().await;
        let groups = c.groups();
        Ok(Response::new(pb::GetOverviewResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            config: Some(self.control.config.clone()),
            model: Some(convert::topom_model(c.owner())),
            group_count: groups.len() as u32,
            server_count: groups.values().map(|g| g.servers.len() as u32).sum(),
            proxy_count: c.proxies().len() as u32,
            slots_per_group: c.slots_per_group().into_iter().collect(),
            revision: c.table().revision,
            role: convert::role(c.role()) as i32,
            leader_addr: c.leader_addr().unwrap_or_default(),
            instances: convert::instances(c, instances),
        }))
    }

    async fn get_model(&self, _: Request<pb::GetModelRequest>) -> Reply<pb::GetModelResponse> {
        Ok(Response::new(pb::GetModelResponse {
            model: Some(convert::topom_model(self.coordinator.owner())),
        }))
    }

    async fn reload(&self, _: Request<pb::ReloadRequest>) -> Reply<pb::ReloadResponse> {
        let t = self.coordinator.reload().await?;
        Ok(Response::new(pb::ReloadResponse {
            revision: t.revision,
        }))
    }

    async fn shutdown(&self, _: Request<pb::ShutdownRequest>) -> Reply<pb::ShutdownResponse> {
        tracing::info!("shutdown requested over gRPC");
        self.control.shutdown.cancel();
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    async fn resign(&self, r: Request<pb::ResignRequest>) -> Reply<pb::ResignResponse> {
        let wait = match r.into_inner().wait {
            None => RESIGN_WAIT,
            Some(d) => std::time::Duration::try_from(d)
                .ok()
                .filter(|d| !d.is_zero() && *d <= MAX_RESIGN_WAIT)
                .ok_or_else(|| {
                    Status::invalid_argument("wait must be a positive duration of at most 60s")
                })?,
        };
        let (leader, took) = self.coordinator.resign(wait).await?;
        Ok(Response::new(pb::ResignResponse {
            leader_addr: leader,
            takeover: prost_types::Duration::try_from(took).ok(),
        }))
    }

    async fn set_log_level(
        &self,
        r: Request<pb::SetLogLevelRequest>,
    ) -> Reply<pb::SetLogLevelResponse> {
        let filter = match pb::LogLevel::try_from(r.into_inner().level) {
            Ok(pb::LogLevel::Error) => "error",
            Ok(pb::LogLevel::Warn) => "warn",
            Ok(pb::LogLevel::Info) => "info",
            Ok(pb::LogLevel::Debug) => "debug",
            Ok(pb::LogLevel::Trace) => "trace",
            Ok(pb::LogLevel::Off) => "off",
            _ => {
                return Err(Status::invalid_argument(
                    "level must be one of ERROR, WARN, INFO, DEBUG, TRACE, OFF",
                ));
            }
        };
        (self.control.set_log_filter)(filter).map_err(Status::internal)?;
        tracing::info!(level = filter, "log level changed");
        Ok(Response::new(pb::SetLogLevelResponse {}))
    }

    async fn get_server_info(
        &self,
        r: Request<pb::GetServerInfoRequest>,
    ) -> Reply<pb::GetServerInfoResponse> {
        let fields = self.coordinator.server_info(&r.into_inner().addr).await?;
        Ok(Response::new(pb::GetServerInfoResponse {
            fields: fields.into_iter().collect(),
        }))
    }

    async fn get_sentinel_info(
        &self,
        r: Request<pb::GetSentinelInfoRequest>,
    ) -> Reply<pb::GetSentinelInfoResponse> {
        let r = r.into_inner();
        let report = self.coordinator.sentinel_info(&r.addr).await?;
        let stats = convert::sentinel_report(&report);
        Ok(Response::new(pb::GetSentinelInfoResponse {
            fields: stats.fields,
            monitored: if r.monitored {
                stats.sentinel
            } else {
                Default::default()
            },
        }))
    }

    async fn list_events(
        &self,
        _r: Request<pb::ListEventsRequest>,
    ) -> Reply<pb::ListEventsResponse> {
        Ok(Response::new(pb::ListEventsResponse {
            events: self
                .coordinator
                .events()
                .iter()
                .map(convert::event)
                .collect(),
        }))
    }

    async fn get_stats(&self, r: Request<pb::GetStatsRequest>) -> Reply<Encoded> {
        let r = r.into_inner();
        // Stats rounds run on the leader only.
        self.coordinator.check_not_standby()?;
        self.coordinator
            .check_stats_filter(&r.group_ids, &r.addrs)?;
        let closed = self.control.shutdown.is_cancelled();
        let filter = stats::Filter::new(&r.group_ids, &r.addrs, &r.fields);
        Ok(Response::new(self.snapshot_cache.get(
            &self.coordinator,
            closed,
            &filter,
        )))
    }

    type WatchStatsStream = stats::WatchStream;

    async fn watch_stats(
        &self,
        r: Request<pb::WatchStatsRequest>,
    ) -> Reply<Self::WatchStatsStream> {
        // The router serves WatchStats through `watch_route`; this is the same
        // stream through tonic's codec, for a server built without that route.
        self.open_watch(r.into_inner()).map(Response::new)
    }

    async fn refresh_redis_stats(
        &self,
        r: Request<pb::RefreshRedisStatsRequest>,
    ) -> Reply<pb::RefreshRedisStatsResponse> {
        let timeout = match r.into_inner().timeout {
            None => stats::DEFAULT_PROBE_TIMEOUT,
            Some(d) => std::time::Duration::try_from(d).map_err(|_| {
                Status::invalid_argument("timeout must be a positive duration of at most 60s")
            })?,
        };
        let round = self.coordinator.refresh_stats(timeout).await?;
        Ok(Response::new(stats::refresh_response(&round)))
    }

    async fn list_slots(&self, _: Request<pb::ListSlotsRequest>) -> Reply<Encoded> {
        Ok(Response::new(
            self.slots_cache.get(&self.coordinator.table()),
        ))
    }

    async fn assign_slots(
        &self,
        r: Request<pb::AssignSlotsRequest>,
    ) -> Reply<pb::AssignSlotsResponse> {
        let mut pairs = Vec::new();
        for m in r.into_inner().mappings {
            if m.action.is_some() {
                return Err(Status::invalid_argument(format!(
                    "slot-{}: an assignment must not carry an action",
                    m.id
                )));
            }
            pairs.push((m.id, m.group_id));
        }
        let revision = self.coordinator.assign_slots(&pairs).await?;
        Ok(Response::new(pb::AssignSlotsResponse { revision }))
    }

    async fn assign_slots_offline(
        &self,
        r: Request<pb::AssignSlotsOfflineRequest>,
    ) -> Reply<pb::AssignSlotsOfflineResponse> {
        let revision = self
            .coordinator
            .assign_slots_offline(&r.into_inner().slot_ids)
            .await?;
        Ok(Response::new(pb::AssignSlotsOfflineResponse { revision }))
    }

    async fn rebalance_slots(
        &self,
        r: Request<pb::RebalanceSlotsRequest>,
    ) -> Reply<pb::RebalanceSlotsResponse> {
        let confirm = r.into_inner().confirm;
        let moves = self.coordinator.rebalance(confirm).await?;
        Ok(Response::new(pb::RebalanceSlotsResponse {
            moves: moves.iter().map(convert::planned_move).collect(),
            confirmed: confirm,
        }))
    }

    async fn create_slot_action(
        &self,
        r: Request<pb::CreateSlotActionRequest>,
    ) -> Reply<pb::CreateSlotActionResponse> {
        let r = r.into_inner();
        let m = self
            .coordinator
            .create_slot_action(r.slot_id, r.target_group_id)
            .await?;
        Ok(Response::new(pb::CreateSlotActionResponse {
            mapping: Some(convert::mapping(&m)),
        }))
    }

    async fn create_slot_action_range(
        &self,
        r: Request<pb::CreateSlotActionRangeRequest>,
    ) -> Reply<pb::CreateSlotActionRangeResponse> {
        let r = r.into_inner();
        let slot_ids = self
            .coordinator
            .create_slot_action_range(r.begin, r.end, r.target_group_id)
            .await?;
        Ok(Response::new(pb::CreateSlotActionRangeResponse {
            slot_ids,
        }))
    }

    async fn create_slot_action_some(
        &self,
        r: Request<pb::CreateSlotActionSomeRequest>,
    ) -> Reply<pb::CreateSlotActionSomeResponse> {
        let r = r.into_inner();
        let slot_ids = self
            .coordinator
            .create_slot_action_some(r.source_group_id, r.target_group_id, r.count)
            .await?;
        Ok(Response::new(pb::CreateSlotActionSomeResponse { slot_ids }))
    }

    async fn remove_slot_action(
        &self,
        r: Request<pb::RemoveSlotActionRequest>,
    ) -> Reply<pb::RemoveSlotActionResponse> {
        self.coordinator
            .remove_slot_action(r.into_inner().slot_id)
            .await?;
        Ok(Response::new(pb::RemoveSlotActionResponse {}))
    }

    async fn set_slot_action_interval(
        &self,
        r: Request<pb::SetSlotActionIntervalRequest>,
    ) -> Reply<pb::SetSlotActionIntervalResponse> {
        self.coordinator
            .set_slot_action_interval(r.into_inner().interval_us)
            .await?;
        Ok(Response::new(pb::SetSlotActionIntervalResponse {}))
    }

    async fn set_slot_action_disabled(
        &self,
        r: Request<pb::SetSlotActionDisabledRequest>,
    ) -> Reply<pb::SetSlotActionDisabledResponse> {
        self.coordinator
            .set_slot_action_disabled(r.into_inner().disabled)
            .await?;
        Ok(Response::new(pb::SetSlotActionDisabledResponse {}))
    }

    async fn process_slot_action(
        &self,
        _r: Request<pb::ProcessSlotActionRequest>,
    ) -> Reply<pb::ProcessSlotActionResponse> {
        let steps = self.coordinator.process_slot_action().await?;
        Ok(Response::new(pb::ProcessSlotActionResponse {
            steps: steps.into_iter().map(convert::slot_step).collect(),
        }))
    }

    async fn list_groups(
        &self,
        _: Request<pb::ListGroupsRequest>,
    ) -> Reply<pb::ListGroupsResponse> {
        Ok(Response::new(pb::ListGroupsResponse {
            groups: self
                .coordinator
                .groups()
                .values()
                .map(convert::group)
                .collect(),
        }))
    }

    async fn get_group(&self, r: Request<pb::GetGroupRequest>) -> Reply<pb::GetGroupResponse> {
        let g = self.coordinator.group(r.into_inner().group_id)?;
        Ok(Response::new(pb::GetGroupResponse {
            group: Some(convert::group(&g)),
        }))
    }

    async fn create_group(
        &self,
        r: Request<pb::CreateGroupRequest>,
    ) -> Reply<pb::CreateGroupResponse> {
        let g = self
            .coordinator
            .create_group(r.into_inner().group_id)
            .await?;
        Ok(Response::new(pb::CreateGroupResponse {
            group: Some(convert::group(&g)),
        }))
    }

    async fn remove_group(
        &self,
        r: Request<pb::RemoveGroupRequest>,
    ) -> Reply<pb::RemoveGroupResponse> {
        self.coordinator
            .remove_group(r.into_inner().group_id)
            .await?;
        Ok(Response::new(pb::RemoveGroupResponse {}))
    }

    async fn add_group_server(
        &self,
        r: Request<pb::AddGroupServerRequest>,
    ) -> Reply<pb::AddGroupServerResponse> {
        let r = r.into_inner();
        let g = self
            .coordinator
            .add_group_server(r.group_id, &r.addr, &r.datacenter, r.no_sync)
            .await?;
        Ok(Response::new(pb::AddGroupServerResponse {
            group: Some(convert::group(&g)),
        }))
    }

    async fn delete_group_server(
        &self,
        r: Request<pb::DeleteGroupServerRequest>,
    ) -> Reply<pb::DeleteGroupServerResponse> {
        let r = r.into_inner();
        let g = self
            .coordinator
            .delete_group_server(r.group_id, &r.addr)
            .await?;
        Ok(Response::new(pb::DeleteGroupServerResponse {
            group: Some(convert::group(&g)),
        }))
    }

    async fn promote_server(
        &self,
        r: Request<pb::PromoteServerRequest>,
    ) -> Reply<pb::PromoteServerResponse> {
        let r = r.into_inner();
        let out = self.coordinator.promote_server(r.group_id, &r.addr).await?;
        Ok(Response::new(pb::PromoteServerResponse {
            group: Some(convert::group(&out.group)),
            write_pause: prost_types::Duration::try_from(out.write_pause).ok(),
        }))
    }

    async fn resync_group(
        &self,
        r: Request<pb::ResyncGroupRequest>,
    ) -> Reply<pb::ResyncGroupResponse> {
        let revision = self
            .coordinator
            .resync_group(r.into_inner().group_id)
            .await?;
        Ok(Response::new(pb::ResyncGroupResponse { revision }))
    }

    async fn resync_group_all(
        &self,
        _: Request<pb::ResyncGroupAllRequest>,
    ) -> Reply<pb::ResyncGroupAllResponse> {
        let revision = self.coordinator.resync_group_all().await?;
        Ok(Response::new(pb::ResyncGroupAllResponse { revision }))
    }

    async fn set_replica_group(
        &self,
        r: Request<pb::SetReplicaGroupRequest>,
    ) -> Reply<pb::SetReplicaGroupResponse> {
        let r = r.into_inner();
        let g = self
            .coordinator
            .set_replica_group(r.group_id, &r.addr, r.enabled)
            .await?;
        Ok(Response::new(pb::SetReplicaGroupResponse {
            group: Some(convert::group(&g)),
        }))
    }

    async fn set_replica_group_all(
        &self,
        r: Request<pb::SetReplicaGroupAllRequest>,
    ) -> Reply<pb::SetReplicaGroupAllResponse> {
        self.coordinator
            .set_replica_group_all(r.into_inner().enabled)
            .await?;
        Ok(Response::new(pb::SetReplicaGroupAllResponse {}))
    }

    async fn create_sync_action(
        &self,
        r: Request<pb::CreateSyncActionRequest>,
    ) -> Reply<pb::CreateSyncActionResponse> {
        let a = self
            .coordinator
            .create_sync_action(&r.into_inner().addr)
            .await?;
        Ok(Response::new(pb::CreateSyncActionResponse {
            action: Some(convert::sync_action(&a)),
        }))
    }

    async fn remove_sync_action(
        &self,
        r: Request<pb::RemoveSyncActionRequest>,
    ) -> Reply<pb::RemoveSyncActionResponse> {
        self.coordinator
            .remove_sync_action(&r.into_inner().addr)
            .await?;
        Ok(Response::new(pb::RemoveSyncActionResponse {}))
    }

    async fn process_sync_action(
        &self,
        _r: Request<pb::ProcessSyncActionRequest>,
    ) -> Reply<pb::ProcessSyncActionResponse> {
        let step = self.coordinator.process_sync_action().await?;
        Ok(Response::new(match step {
            None => pb::ProcessSyncActionResponse::default(),
            Some(s) => pb::ProcessSyncActionResponse {
                processed: true,
                addr: s.addr,
                group_id: s.group_id,
                state: convert::sync_state(s.state) as i32,
                error: s.error,
                master_addr: s.master,
            },
        }))
    }

    async fn list_sentinels(
        &self,
        _: Request<pb::ListSentinelsRequest>,
    ) -> Reply<pb::ListSentinelsResponse> {
        Ok(Response::new(pb::ListSentinelsResponse {
            sentinel: Some(convert::sentinel(&self.coordinator.sentinel())),
        }))
    }

    async fn add_sentinel(
        &self,
        r: Request<pb::AddSentinelRequest>,
    ) -> Reply<pb::AddSentinelResponse> {
        let s = self.coordinator.add_sentinel(&r.into_inner().addr).await?;
        Ok(Response::new(pb::AddSentinelResponse {
            sentinel: Some(convert::sentinel(&s)),
        }))
    }

    async fn remove_sentinel(
        &self,
        r: Request<pb::RemoveSentinelRequest>,
    ) -> Reply<pb::RemoveSentinelResponse> {
        let r = r.into_inner();
        let s = self.coordinator.remove_sentinel(&r.addr, r.force).await?;
        Ok(Response::new(pb::RemoveSentinelResponse {
            sentinel: Some(convert::sentinel(&s)),
        }))
    }

    async fn resync_sentinels(
        &self,
        _r: Request<pb::ResyncSentinelsRequest>,
    ) -> Reply<pb::ResyncSentinelsResponse> {
        let s = self.coordinator.resync_sentinels().await?;
        Ok(Response::new(pb::ResyncSentinelsResponse {
            sentinel: Some(convert::sentinel(&s)),
        }))
    }

    async fn list_proxies(
        &self,
        _: Request<pb::ListProxiesRequest>,
    ) -> Reply<pb::ListProxiesResponse> {
        let mut proxies: Vec<pb::Proxy> = self
            .coordinator
            .proxies()
            .values()
            .map(|p| convert::proxy_with_status(p, &self.coordinator.proxy_status(&p.token)))
            .collect();
        proxies.sort_by_key(|p| p.id);
        Ok(Response::new(pb::ListProxiesResponse { proxies }))
    }

    async fn add_codis_proxy(
        &self,
        r: Request<pb::AddCodisProxyRequest>,
    ) -> Reply<pb::AddCodisProxyResponse> {
        let p = self
            .coordinator
            .add_codis_proxy(&r.into_inner().admin_addr)
            .await?;
        let st = self.coordinator.proxy_status(&p.token);
        Ok(Response::new(pb::AddCodisProxyResponse {
            proxy: Some(convert::proxy_with_status(&p, &st)),
        }))
    }

    async fn remove_proxy(
        &self,
        r: Request<pb::RemoveProxyRequest>,
    ) -> Reply<pb::RemoveProxyResponse> {
        let r = r.into_inner();
        self.coordinator.remove_proxy(&r.token, r.force).await?;
        Ok(Response::new(pb::RemoveProxyResponse {}))
    }

    async fn reinit_proxy(
        &self,
        r: Request<pb::ReinitProxyRequest>,
    ) -> Reply<pb::ReinitProxyResponse> {
        let revision = self.coordinator.reinit_proxy(&r.into_inner().token)?;
        Ok(Response::new(pb::ReinitProxyResponse { revision }))
    }
}
