//! Domain ↔ protobuf conversions.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::config::Config;

use crate::model::{
    self, ForwardMethod, Group, GroupServer, PromoteState, ServerKind, SlotMapping, SlotState,
    SlotView, SyncState,
};
use crate::pb;

/// A stored RFC 3339 string as a protobuf timestamp (`None` if unparseable).
pub fn timestamp(s: &str) -> Option<prost_types::Timestamp> {
    model::parse_rfc3339(s).map(prost_types::Timestamp::from)
}

/// The current time as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    SystemTime::now().into()
}

/// Slot action state → proto enum.
pub fn slot_state(s: SlotState) -> pb::SlotActionState {
    match s {
        SlotState::Pending => pb::SlotActionState::Pending,
        SlotState::Preparing => pb::SlotActionState::Preparing,
        SlotState::Prepared => pb::SlotActionState::Prepared,
        SlotState::Migrating => pb::SlotActionState::Migrating,
        SlotState::Finished => pb::SlotActionState::Finished,
    }
}

/// Slot mapping → proto.
pub fn mapping(m: &SlotMapping) -> pb::SlotMapping {
    pb::SlotMapping {
        id: m.id,
        group_id: m.group_id,
        action: m.action.map(|a| pb::SlotAction {
            index: a.index,
            state: slot_state(a.state) as i32,
            target_group_id: a.target_id,
        }),
    }
}

/// Forward method → proto enum.
pub fn forward_method(f: ForwardMethod) -> pb::ForwardMethod {
    match f {
        ForwardMethod::Sync => pb::ForwardMethod::Sync,
        ForwardMethod::SemiAsync => pb::ForwardMethod::SemiAsync,
    }
}

/// Slot view → proto.
pub fn slot(v: &SlotView) -> pb::Slot {
    pb::Slot {
        id: v.id,
        locked: v.locked,
        backend_addr: v.backend_addr.clone(),
        backend_group_id: v.backend_addr_group_id,
        migrate_from: v.migrate_from.clone(),
        migrate_from_group_id: v.migrate_from_group_id,
        forward_method: v
            .forward_method
            .map_or(pb::ForwardMethod::Unspecified, forward_method) as i32,
        replica_groups: v
            .replica_groups
            .iter()
            .map(|addrs| pb::ReplicaGroup {
                addrs: addrs.clone(),
            })
            .collect(),
    }
}

/// Sync action state → proto enum.
pub fn sync_state(s: SyncState) -> pb::SyncActionState {
    match s {
        SyncState::Pending => pb::SyncActionState::Pending,
        SyncState::Syncing => pb::SyncActionState::Syncing,
        SyncState::Synced => pb::SyncActionState::Synced,
        SyncState::SyncedFailed => pb::SyncActionState::SyncedFailed,
    }
}

/// Sync action → proto.
pub fn sync_action(a: &model::SyncAction) -> pb::SyncAction {
    pb::SyncAction {
        index: a.index,
        state: sync_state(a.state) as i32,
        error: a.error.clone(),
    }
}

fn server(s: &GroupServer) -> pb::GroupServer {
    pb::GroupServer {
        addr: s.addr.clone(),
        datacenter: s.datacenter.clone(),
        action: s.action.as_ref().map(sync_action),
        replica_group: s.replica_group,
        kind: match s.kind {
            ServerKind::Unknown => pb::ServerKind::Unspecified,
            ServerKind::Redis => pb::ServerKind::Redis,
            ServerKind::CodisServer => pb::ServerKind::CodisServer,
        } as i32,
    }
}

/// Group → proto.
pub fn group(g: &Group) -> pb::Group {
    pb::Group {
        id: g.id,
        servers: g.servers.iter().map(server).collect(),
        promoting: g.promoting.map(|p| pb::Promoting {
            index: p.index,
            state: match p.state {
                PromoteState::Preparing => pb::PromoteState::Preparing,
                PromoteState::Prepared => pb::PromoteState::Prepared,
                PromoteState::Finished => pb::PromoteState::Finished,
            } as i32,
        }),
        out_of_sync: g.out_of_sync,
    }
}

/// Sentinel list → proto.
pub fn sentinel(s: &model::Sentinel) -> pb::Sentinel {
    pb::Sentinel {
        servers: s.servers.clone(),
        out_of_sync: s.out_of_sync,
    }
}

/// Stored proxy → proto (no live status yet).
pub fn proxy(p: &model::Proxy) -> pb::Proxy {
    pb::Proxy {
        id: p.id,
        token: p.token.clone(),
        start_time: timestamp(&p.start_time),
        admin_addr: p.admin_addr.clone(),
        proto_type: p.proto_type.clone(),
        proxy_addr: p.proxy_addr.clone(),
        product_name: p.product_name.clone(),
        pid: p.pid,
        pwd: p.pwd.clone(),
        sys: p.sys.clone(),
        hostname: p.hostname.clone(),
        datacenter: p.datacenter.clone(),
        version: p.version.clone(),
        status: None,
        kind: match p.kind {
            model::ProxyKind::Topom => pb::ProxyKind::Topom,
            model::ProxyKind::Codis => pb::ProxyKind::Codis,
        } as i32,
    }
}

/// Owner record → proto.
pub fn topom_model(t: &model::TopomRecord) -> pb::TopomModel {
    pb::TopomModel {
        token: t.token.clone(),
        start_time: timestamp(&t.start_time),
        admin_addr: t.admin_addr.clone(),
        product_name: t.product_name.clone(),
        pid: t.pid,
        pwd: t.pwd.clone(),
        sys: t.sys.clone(),
        hostname: t.hostname.clone(),
    }
}

/// The core's role → proto.
pub fn role(r: crate::coordinator::Role) -> pb::InstanceRole {
    match r {
        crate::coordinator::Role::Leader => pb::InstanceRole::Leader,
        crate::coordinator::Role::Standby => pb::InstanceRole::Standby,
    }
}

/// The instances GetOverview lists, as the core orders them (leader first).
pub fn instances(
    c: &crate::coordinator::Coordinator,
    list: Vec<(model::TopomRecord, crate::coordinator::Role)>,
) -> Vec<pb::TopomInstance> {
    list.into_iter()
        .map(|(t, r)| pb::TopomInstance {
            leader_since: (t.token == c.owner().token)
                .then(|| c.leader_since().map(prost_types::Timestamp::from))
                .flatten(),
            addr: t.admin_addr,
            role: role(r) as i32,
            pid: t.pid,
            hostname: t.hostname,
            started: timestamp(&t.start_time),
        })
        .collect()
}

/// A Sentinel's report → proto stats (fields and monitored groups).
pub fn sentinel_report(r: &model::SentinelReport) -> pb::RedisStats {
    pb::RedisStats {
        fields: r.info.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        sentinel: r
            .monitored
            .iter()
            .map(|(name, g)| {
                (
                    name.clone(),
                    pb::SentinelGroup {
                        master: g
                            .master
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        replicas: g
                            .replicas
                            .iter()
                            .map(|r| pb::SentinelReplica {
                                fields: r.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                            })
                            .collect(),
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// A master-change event → proto.
pub fn event(e: &crate::coordinator::events::Event) -> pb::Event {
    use crate::coordinator::events::EventKind;
    pb::Event {
        kind: match e.kind {
            EventKind::MasterSwitch => pb::EventKind::MasterSwitch,
            EventKind::Promote => pb::EventKind::Promote,
            EventKind::LeaderElected => pb::EventKind::LeaderElected,
            EventKind::SteppedDown => pb::EventKind::SteppedDown,
        } as i32,
        time: Some(e.time.into()),
        group_id: e.group_id,
        old_master: e.old_master.clone(),
        new_master: e.new_master.clone(),
        revision: e.revision,
        detail: e.detail.clone(),
    }
}

/// A proxy with its live stream status.
pub fn proxy_with_status(
    p: &model::Proxy,
    st: &crate::coordinator::proxies::ProxyStatus,
) -> pb::Proxy {
    pb::Proxy {
        status: Some(pb::ProxyStatus {
            lease_state: if st.lease_live {
                pb::LeaseState::Live
            } else {
                pb::LeaseState::Expired
            } as i32,
            applied_revision: st.applied_revision,
            last_heartbeat: st.last_heartbeat.map(Into::into),
            last_nack: st.last_nack.clone(),
            connected: st.connected,
            codis_state: st
                .driver
                .as_ref()
                .map_or(pb::CodisProxyState::Unspecified, |d| {
                    if !d.reachable && !d.last_error.is_empty() {
                        pb::CodisProxyState::Unreachable
                    } else if d.online {
                        pb::CodisProxyState::Online
                    } else {
                        pb::CodisProxyState::Offline
                    }
                }) as i32,
            last_error: st
                .driver
                .as_ref()
                .map(|d| d.last_error.clone())
                .unwrap_or_default(),
        }),
        ..proxy(p)
    }
}

/// A proxy's self-reported stats → proto.
pub fn proxy_report(r: &crate::coordinator::proxies::ProxyReport) -> pb::ProxyStats {
    pb::ProxyStats {
        ops_total: r.ops_total,
        ops_fails: r.ops_fails,
        redis_errors: r.redis_errors,
        ops_qps: r.ops_qps,
        sessions_total: r.sessions_total,
        sessions_alive: r.sessions_alive,
        backends: r.backends,
        rss_bytes: r.rss_bytes,
        cpu: r.cpu,
        time: r.time.map(Into::into),
    }
}

/// The configuration as GetOverview reports it (no secrets: only whether they are set).
pub fn config_view(config: &Config, addr: SocketAddr) -> pb::ConfigView {
    pb::ConfigView {
        coordinator_name: config.backend.name().into(),
        coordinator_addr: config.coordinator_addr.clone(),
        product_name: config.product_name.clone(),
        product_auth_set: !config.product_auth.is_empty(),
        listen_addr: addr.to_string(),
        migration_method: forward_method(config.migration_method) as i32,
        migration_parallel_slots: config.migration_parallel_slots,
        migration_timeout: prost_types::Duration::try_from(config.migration_timeout).ok(),
        migration_max_keys_per_sec: config.migration_max_keys_per_sec,
        migration_max_bytes_per_sec: config.migration_max_bytes_per_sec,
        sentinel_quorum: config.sentinel_quorum,
        stats_refresh_period: prost_types::Duration::try_from(config.stats_refresh_period).ok(),
        admin_auth_required: !config.admin_token.is_empty(),
    }
}

/// One move of a rebalance plan.
pub fn planned_move(m: &crate::coordinator::Move) -> pb::PlannedMove {
    pb::PlannedMove {
        slot_id: m.slot,
        from_group_id: m.from,
        to_group_id: m.to,
    }
}

/// What one slot-action step did to a slot.
pub fn slot_step(s: crate::coordinator::slot_actions::SlotStep) -> pb::SlotStep {
    pb::SlotStep {
        slot_id: s.slot,
        state: s.state.map_or(pb::SlotActionState::Unspecified, slot_state) as i32,
        error: s.error,
    }
}
