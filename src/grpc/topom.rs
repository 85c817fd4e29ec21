//! The `topom.v1.Topom` service: a thin adapter from protobuf to the coordinator.
//! The trait impl here routes each RPC to the module of its area; those take the
//! request message and return the answer, so tonic's wrappers stay here.
//!
//! | module         | RPCs                                                          |
//! |----------------|---------------------------------------------------------------|
//! | `overview`     | GetOverview, GetModel, ListEvents                             |
//! | `control`      | Reload, Shutdown, Resign, SetLogLevel                         |
//! | `observe`      | GetServerInfo, GetSentinelInfo, GetStats, WatchStats,         |
//! |                | RefreshRedisStats                                             |
//! | `slots`        | ListSlots, AssignSlots(Offline), RebalanceSlots, slot actions |
//! | `groups`       | groups and their servers, PromoteServer, resyncs, replicas    |
//! | `sync_actions` | Create/Remove/ProcessSyncAction                               |
//! | `sentinels`    | List/Add/RemoveSentinel(s), ResyncSentinels                   |
//! | `proxies`      | ListProxies, AddCodisProxy, RemoveProxy, ReinitProxy          |

mod control;
mod groups;
mod observe;
mod overview;
mod proxies;
mod sentinels;
mod slots;
mod sync_actions;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::slots_cache::SlotsCache;
use super::stats;
use super::stats_snapshot::SnapshotCache;
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

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Topom for TopomService {
    async fn get_overview(
        &self,
        _: Request<pb::GetOverviewRequest>,
    ) -> Reply<pb::GetOverviewResponse> {
        Ok(Response::new(overview::get_overview(self).await))
    }

    async fn get_model(&self, _: Request<pb::GetModelRequest>) -> Reply<pb::GetModelResponse> {
        Ok(Response::new(overview::get_model(&self.coordinator)))
    }

    async fn reload(&self, _: Request<pb::ReloadRequest>) -> Reply<pb::ReloadResponse> {
        control::reload(&self.coordinator).await.map(Response::new)
    }

    async fn shutdown(&self, _: Request<pb::ShutdownRequest>) -> Reply<pb::ShutdownResponse> {
        Ok(Response::new(control::shutdown(&self.control)))
    }

    async fn resign(&self, r: Request<pb::ResignRequest>) -> Reply<pb::ResignResponse> {
        control::resign(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_log_level(
        &self,
        r: Request<pb::SetLogLevelRequest>,
    ) -> Reply<pb::SetLogLevelResponse> {
        control::set_log_level(&self.control, r.into_inner()).map(Response::new)
    }

    async fn get_server_info(
        &self,
        r: Request<pb::GetServerInfoRequest>,
    ) -> Reply<pb::GetServerInfoResponse> {
        observe::get_server_info(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_sentinel_info(
        &self,
        r: Request<pb::GetSentinelInfoRequest>,
    ) -> Reply<pb::GetSentinelInfoResponse> {
        observe::get_sentinel_info(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_events(
        &self,
        _: Request<pb::ListEventsRequest>,
    ) -> Reply<pb::ListEventsResponse> {
        Ok(Response::new(overview::list_events(&self.coordinator)))
    }

    async fn get_stats(&self, r: Request<pb::GetStatsRequest>) -> Reply<Encoded> {
        observe::get_stats(self, r.into_inner()).map(Response::new)
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
    ) -> Reply<Encoded> {
        observe::refresh_redis_stats(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_slots(&self, _: Request<pb::ListSlotsRequest>) -> Reply<Encoded> {
        Ok(Response::new(slots::list_slots(self)))
    }

    async fn assign_slots(
        &self,
        r: Request<pb::AssignSlotsRequest>,
    ) -> Reply<pb::AssignSlotsResponse> {
        slots::assign_slots(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn assign_slots_offline(
        &self,
        r: Request<pb::AssignSlotsOfflineRequest>,
    ) -> Reply<pb::AssignSlotsOfflineResponse> {
        slots::assign_slots_offline(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn rebalance_slots(
        &self,
        r: Request<pb::RebalanceSlotsRequest>,
    ) -> Reply<pb::RebalanceSlotsResponse> {
        slots::rebalance_slots(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn create_slot_action(
        &self,
        r: Request<pb::CreateSlotActionRequest>,
    ) -> Reply<pb::CreateSlotActionResponse> {
        slots::create_slot_action(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn create_slot_action_range(
        &self,
        r: Request<pb::CreateSlotActionRangeRequest>,
    ) -> Reply<pb::CreateSlotActionRangeResponse> {
        slots::create_slot_action_range(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn create_slot_action_some(
        &self,
        r: Request<pb::CreateSlotActionSomeRequest>,
    ) -> Reply<pb::CreateSlotActionSomeResponse> {
        slots::create_slot_action_some(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_slot_action(
        &self,
        r: Request<pb::RemoveSlotActionRequest>,
    ) -> Reply<pb::RemoveSlotActionResponse> {
        slots::remove_slot_action(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_slot_action_interval(
        &self,
        r: Request<pb::SetSlotActionIntervalRequest>,
    ) -> Reply<pb::SetSlotActionIntervalResponse> {
        slots::set_slot_action_interval(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_slot_action_disabled(
        &self,
        r: Request<pb::SetSlotActionDisabledRequest>,
    ) -> Reply<pb::SetSlotActionDisabledResponse> {
        slots::set_slot_action_disabled(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn process_slot_action(
        &self,
        _: Request<pb::ProcessSlotActionRequest>,
    ) -> Reply<pb::ProcessSlotActionResponse> {
        slots::process_slot_action(&self.coordinator)
            .await
            .map(Response::new)
    }

    async fn list_groups(
        &self,
        _: Request<pb::ListGroupsRequest>,
    ) -> Reply<pb::ListGroupsResponse> {
        Ok(Response::new(groups::list_groups(&self.coordinator)))
    }

    async fn get_group(&self, r: Request<pb::GetGroupRequest>) -> Reply<pb::GetGroupResponse> {
        groups::get_group(&self.coordinator, r.into_inner()).map(Response::new)
    }

    async fn create_group(
        &self,
        r: Request<pb::CreateGroupRequest>,
    ) -> Reply<pb::CreateGroupResponse> {
        groups::create_group(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_group(
        &self,
        r: Request<pb::RemoveGroupRequest>,
    ) -> Reply<pb::RemoveGroupResponse> {
        groups::remove_group(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn add_group_server(
        &self,
        r: Request<pb::AddGroupServerRequest>,
    ) -> Reply<pb::AddGroupServerResponse> {
        groups::add_group_server(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete_group_server(
        &self,
        r: Request<pb::DeleteGroupServerRequest>,
    ) -> Reply<pb::DeleteGroupServerResponse> {
        groups::delete_group_server(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn promote_server(
        &self,
        r: Request<pb::PromoteServerRequest>,
    ) -> Reply<pb::PromoteServerResponse> {
        groups::promote_server(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn resync_group(
        &self,
        r: Request<pb::ResyncGroupRequest>,
    ) -> Reply<pb::ResyncGroupResponse> {
        groups::resync_group(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn resync_group_all(
        &self,
        _: Request<pb::ResyncGroupAllRequest>,
    ) -> Reply<pb::ResyncGroupAllResponse> {
        groups::resync_group_all(&self.coordinator)
            .await
            .map(Response::new)
    }

    async fn set_replica_group(
        &self,
        r: Request<pb::SetReplicaGroupRequest>,
    ) -> Reply<pb::SetReplicaGroupResponse> {
        groups::set_replica_group(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_replica_group_all(
        &self,
        r: Request<pb::SetReplicaGroupAllRequest>,
    ) -> Reply<pb::SetReplicaGroupAllResponse> {
        groups::set_replica_group_all(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn create_sync_action(
        &self,
        r: Request<pb::CreateSyncActionRequest>,
    ) -> Reply<pb::CreateSyncActionResponse> {
        sync_actions::create_sync_action(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_sync_action(
        &self,
        r: Request<pb::RemoveSyncActionRequest>,
    ) -> Reply<pb::RemoveSyncActionResponse> {
        sync_actions::remove_sync_action(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn process_sync_action(
        &self,
        _: Request<pb::ProcessSyncActionRequest>,
    ) -> Reply<pb::ProcessSyncActionResponse> {
        sync_actions::process_sync_action(&self.coordinator)
            .await
            .map(Response::new)
    }

    async fn list_sentinels(
        &self,
        _: Request<pb::ListSentinelsRequest>,
    ) -> Reply<pb::ListSentinelsResponse> {
        Ok(Response::new(sentinels::list_sentinels(&self.coordinator)))
    }

    async fn add_sentinel(
        &self,
        r: Request<pb::AddSentinelRequest>,
    ) -> Reply<pb::AddSentinelResponse> {
        sentinels::add_sentinel(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_sentinel(
        &self,
        r: Request<pb::RemoveSentinelRequest>,
    ) -> Reply<pb::RemoveSentinelResponse> {
        sentinels::remove_sentinel(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn resync_sentinels(
        &self,
        _: Request<pb::ResyncSentinelsRequest>,
    ) -> Reply<pb::ResyncSentinelsResponse> {
        sentinels::resync_sentinels(&self.coordinator)
            .await
            .map(Response::new)
    }

    async fn list_proxies(
        &self,
        _: Request<pb::ListProxiesRequest>,
    ) -> Reply<pb::ListProxiesResponse> {
        Ok(Response::new(proxies::list_proxies(&self.coordinator)))
    }

    async fn add_codis_proxy(
        &self,
        r: Request<pb::AddCodisProxyRequest>,
    ) -> Reply<pb::AddCodisProxyResponse> {
        proxies::add_codis_proxy(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_proxy(
        &self,
        r: Request<pb::RemoveProxyRequest>,
    ) -> Reply<pb::RemoveProxyResponse> {
        proxies::remove_proxy(&self.coordinator, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn reinit_proxy(
        &self,
        r: Request<pb::ReinitProxyRequest>,
    ) -> Reply<pb::ReinitProxyResponse> {
        proxies::reinit_proxy(&self.coordinator, r.into_inner()).map(Response::new)
    }
}
