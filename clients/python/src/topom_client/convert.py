"""Protobuf messages -> the plain values of :mod:`topom_client.records`."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from topom_client import records
from topom_client.topom.v1 import model_pb2, stats_pb2, topom_pb2


def time_of(ts: timestamp_pb2.Timestamp, present: bool = True) -> datetime | None:
    """A UTC datetime, or None for an unset timestamp."""
    if not present:
        return None
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


def seconds_of(d: duration_pb2.Duration) -> float:
    return d.seconds + d.nanos / 1e9


def enum_name(enum: EnumTypeWrapper, value: int, prefix: str) -> str:
    """``SLOT_ACTION_STATE_MIGRATING`` -> ``"migrating"`` (unknown values as numbers)."""
    try:
        name = enum.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower()


def server_round(s: stats_pb2.ServerStats) -> records.ServerRound:
    st = s.stats
    sm = st.summary
    return {
        "group": s.group_id,
        "addr": s.addr,
        "index": s.index,
        "up": s.HasField("stats") and not st.error and not st.timeout,
        "error": st.error,
        "timeout": st.timeout,
        "time": time_of(st.time, st.HasField("time")),
        "role": sm.role,
        "master_addr": sm.master_addr,
        "master_link_status": sm.master_link_status,
        "repl_offset": sm.repl_offset,
        "lag_bytes": sm.lag_bytes,
        "used_memory": sm.used_memory,
        "maxmemory": sm.maxmemory,
        "ops_per_sec": sm.ops_per_sec,
        "connected_clients": sm.connected_clients,
        "keys_per_db": dict(sm.keys_per_db),
        "redis_version": sm.redis_version,
        "fields": dict(st.fields),
    }


def sentinel_round(s: stats_pb2.SentinelStats) -> records.SentinelRound:
    st = s.stats
    return {
        "addr": s.addr,
        "up": s.HasField("stats") and not st.error and not st.timeout,
        "error": st.error,
        "timeout": st.timeout,
        "time": time_of(st.time, st.HasField("time")),
        "fields": dict(st.fields),
        "masters": {name: dict(g.master) for name, g in st.sentinel.items()},
    }


def stats_round(
    r: topom_pb2.WatchStatsResponse, *, skipped: int, resumed: bool, endpoint: str
) -> records.StatsRound:
    return {
        "round": r.round,
        "started_at": time_of(r.started_at, r.HasField("started_at")),
        "finished_at": time_of(r.finished_at, r.HasField("finished_at")),
        "skipped": skipped,
        "resumed": resumed,
        "endpoint": endpoint,
        "servers": [server_round(s) for s in r.servers],
        "sentinels": [sentinel_round(s) for s in r.sentinels],
    }


def model(m: model_pb2.TopomModel) -> records.Model:
    return {
        "token": m.token,
        "admin_addr": m.admin_addr,
        "product": m.product_name,
        "pid": m.pid,
        "hostname": m.hostname,
        "start_time": time_of(m.start_time, m.HasField("start_time")),
    }


def overview(r: topom_pb2.GetOverviewResponse) -> records.Overview:
    return {
        "version": r.version,
        "product": r.config.product_name,
        "stats_refresh_period": seconds_of(r.config.stats_refresh_period),
        "admin_auth_required": r.config.admin_auth_required,
        "model": model(r.model),
        "group_count": r.group_count,
        "server_count": r.server_count,
        "proxy_count": r.proxy_count,
        "slots_per_group": dict(r.slots_per_group),
        "revision": r.revision,
        "role": enum_name(topom_pb2.InstanceRole, r.role, "INSTANCE_ROLE_"),
        "leader": r.leader_addr,
        "instances": [instance(i) for i in r.instances],
    }


def instance(i: topom_pb2.TopomInstance) -> records.Instance:
    return {
        "addr": i.addr,
        "role": enum_name(topom_pb2.InstanceRole, i.role, "INSTANCE_ROLE_"),
        "pid": i.pid,
        "hostname": i.hostname,
        "started": time_of(i.started, i.HasField("started")),
        "leader_since": time_of(i.leader_since, i.HasField("leader_since")),
    }


def slot_info(m: model_pb2.SlotMapping) -> records.SlotInfo:
    has = m.HasField("action")
    return {
        "id": m.id,
        "group": m.group_id,
        "action": (
            enum_name(model_pb2.SlotActionState, m.action.state, "SLOT_ACTION_STATE_")
            if has
            else None
        ),
        "target_group": m.action.target_group_id if has else None,
    }


def slot_table(r: topom_pb2.ListSlotsResponse) -> records.SlotTable:
    return {
        "revision": r.revision,
        "epoch": r.epoch,
        "slots": [slot_info(m) for m in r.mappings],
    }


def group_info(g: model_pb2.Group) -> records.GroupInfo:
    servers: list[records.GroupServer] = []
    for s in g.servers:
        has = s.HasField("action")
        servers.append(
            {
                "addr": s.addr,
                "datacenter": s.datacenter,
                "replica_group": s.replica_group,
                "kind": enum_name(model_pb2.ServerKind, s.kind, "SERVER_KIND_"),
                "action": (
                    enum_name(model_pb2.SyncActionState, s.action.state, "SYNC_ACTION_STATE_")
                    if has
                    else None
                ),
                "action_error": s.action.error,
            }
        )
    return {
        "id": g.id,
        "servers": servers,
        "promoting": (
            enum_name(model_pb2.PromoteState, g.promoting.state, "PROMOTE_STATE_")
            if g.HasField("promoting")
            else None
        ),
        "out_of_sync": g.out_of_sync,
    }


def proxy_info(p: model_pb2.Proxy) -> records.ProxyInfo:
    st = p.status
    return {
        "id": p.id,
        "token": p.token,
        "proxy_addr": p.proxy_addr,
        "admin_addr": p.admin_addr,
        "datacenter": p.datacenter,
        "version": p.version,
        "pid": p.pid,
        "hostname": p.hostname,
        "lease_state": enum_name(model_pb2.LeaseState, st.lease_state, "LEASE_STATE_"),
        "applied_revision": st.applied_revision,
        "connected": st.connected,
        "last_heartbeat": time_of(st.last_heartbeat, st.HasField("last_heartbeat")),
        "last_nack": st.last_nack,
    }


def slot_action(a: stats_pb2.SlotActionStats) -> records.SlotActionInfo:
    return {
        "interval_us": a.interval_us,
        "disabled": a.disabled,
        "status": a.status,
        "executor": a.executor,
        "progress": [
            {
                "slot": p.slot_id,
                "keys_moved": p.keys_moved,
                "keys_left": p.keys_left,
                "bytes_moved": p.bytes_moved,
                "keys_per_sec": p.keys_per_sec,
                "eta_seconds": p.eta_seconds if p.eta_seconds >= 0 else None,
                "error": p.error,
            }
            for p in a.progress
        ],
    }


def stats(r: topom_pb2.GetStatsResponse) -> records.Stats:
    s = r.stats
    return {
        "round": s.round,
        "closed": s.closed,
        "groups": {g.group.id: [server_round(x) for x in g.servers] for g in s.groups},
        "proxies": [proxy_info(p.proxy) for p in s.proxies],
        "slot_action": slot_action(s.slot_action),
        "sentinel_masters": dict(s.sentinels.masters),
        "sentinels": [sentinel_round(x) for x in s.sentinels.stats],
    }


def event(e: topom_pb2.Event) -> records.Event:
    return {
        "kind": enum_name(topom_pb2.EventKind, e.kind, "EVENT_KIND_"),
        "time": time_of(e.time, e.HasField("time")),
        "group": e.group_id,
        "old_master": e.old_master,
        "new_master": e.new_master,
        "revision": e.revision,
        "detail": e.detail,
    }


def planned_move(m: topom_pb2.PlannedMove) -> records.PlannedMove:
    return {"slot": m.slot_id, "from_group": m.from_group_id, "to_group": m.to_group_id}
