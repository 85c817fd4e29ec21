"""Each helper of the clients as data: the RPC, its request, how to convert
the answer. :class:`~topom_client.TopomClient` and
:class:`~topom_client.aio.AsyncTopomClient` run the same operations, one
blocking and one with asyncio, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from topom_client import convert, records
from topom_client.topom.v1 import model_pb2, topom_pb2

T = TypeVar("T")

#: The gRPC service every operation belongs to.
SERVICE = "/topom.v1.Topom/"


@dataclass(frozen=True)
class Op(Generic[T]):
    """One unary call: ``method`` with ``request``, answered by ``response``."""

    method: str
    request: Message
    response: type[Message]
    convert: Callable[[Any], T]
    #: Reads are retried on the next endpoint when one is unavailable;
    #: mutations are sent once (a retry could apply them twice).
    read: bool

    @property
    def path(self) -> str:
        return SERVICE + self.method


def _none(_: Any) -> None:
    return None


def _revision(r: Any) -> int:
    return int(r.revision)


def _group(r: Any) -> records.GroupInfo:
    return convert.group_info(r.group)


# ---- reads ------------------------------------------------------------------


def overview() -> Op[records.Overview]:
    return Op("GetOverview", topom_pb2.GetOverviewRequest(), topom_pb2.GetOverviewResponse,
              convert.overview, True)


def slots() -> Op[records.SlotTable]:
    return Op("ListSlots", topom_pb2.ListSlotsRequest(), topom_pb2.ListSlotsResponse,
              convert.slot_table, True)


def groups() -> Op[list[records.GroupInfo]]:
    return Op("ListGroups", topom_pb2.ListGroupsRequest(), topom_pb2.ListGroupsResponse,
              lambda r: [convert.group_info(g) for g in r.groups], True)


def group(group_id: int) -> Op[records.GroupInfo]:
    return Op("GetGroup", topom_pb2.GetGroupRequest(group_id=group_id),
              topom_pb2.GetGroupResponse, _group, True)


def proxies() -> Op[list[records.ProxyInfo]]:
    return Op("ListProxies", topom_pb2.ListProxiesRequest(), topom_pb2.ListProxiesResponse,
              lambda r: [convert.proxy_info(p) for p in r.proxies], True)


def stats() -> Op[records.Stats]:
    return Op("GetStats", topom_pb2.GetStatsRequest(), topom_pb2.GetStatsResponse,
              convert.stats, True)


def events() -> Op[list[records.Event]]:
    return Op("ListEvents", topom_pb2.ListEventsRequest(), topom_pb2.ListEventsResponse,
              lambda r: [convert.event(e) for e in r.events], True)


def server_info(addr: str) -> Op[dict[str, str]]:
    return Op("GetServerInfo", topom_pb2.GetServerInfoRequest(addr=addr),
              topom_pb2.GetServerInfoResponse, lambda r: dict(r.fields), True)


def sentinels() -> Op[list[str]]:
    return Op("ListSentinels", topom_pb2.ListSentinelsRequest(),
              topom_pb2.ListSentinelsResponse, lambda r: list(r.sentinel.servers), True)


# ---- mutations --------------------------------------------------------------


def create_group(group_id: int) -> Op[records.GroupInfo]:
    return Op("CreateGroup", topom_pb2.CreateGroupRequest(group_id=group_id),
              topom_pb2.CreateGroupResponse, _group, False)


def remove_group(group_id: int) -> Op[None]:
    return Op("RemoveGroup", topom_pb2.RemoveGroupRequest(group_id=group_id),
              topom_pb2.RemoveGroupResponse, _none, False)


def add_server(
    group_id: int, addr: str, datacenter: str = "", no_sync: bool = False
) -> Op[records.GroupInfo]:
    req = topom_pb2.AddGroupServerRequest(
        group_id=group_id, addr=addr, datacenter=datacenter, no_sync=no_sync
    )
    return Op("AddGroupServer", req, topom_pb2.AddGroupServerResponse, _group, False)


def delete_server(group_id: int, addr: str) -> Op[records.GroupInfo]:
    req = topom_pb2.DeleteGroupServerRequest(group_id=group_id, addr=addr)
    return Op("DeleteGroupServer", req, topom_pb2.DeleteGroupServerResponse, _group, False)


def promote(group_id: int, addr: str) -> Op[float]:
    """Answers the write pause on the old master, in seconds."""
    req = topom_pb2.PromoteServerRequest(group_id=group_id, addr=addr)
    return Op("PromoteServer", req, topom_pb2.PromoteServerResponse,
              lambda r: convert.seconds_of(r.write_pause), False)


def assign_slots(assignment: Mapping[int, int]) -> Op[int]:
    """``assignment`` maps slot id -> group id; answers the new revision."""
    req = topom_pb2.AssignSlotsRequest(
        mappings=[model_pb2.SlotMapping(id=s, group_id=g) for s, g in sorted(assignment.items())]
    )
    return Op("AssignSlots", req, topom_pb2.AssignSlotsResponse, _revision, False)


def rebalance(confirm: bool) -> Op[list[records.PlannedMove]]:
    return Op("RebalanceSlots", topom_pb2.RebalanceSlotsRequest(confirm=confirm),
              topom_pb2.RebalanceSlotsResponse,
              lambda r: [convert.planned_move(m) for m in r.moves], False)


def migrate_slot(slot_id: int, group_id: int) -> Op[None]:
    req = topom_pb2.CreateSlotActionRequest(slot_id=slot_id, target_group_id=group_id)
    return Op("CreateSlotAction", req, topom_pb2.CreateSlotActionResponse, _none, False)


def migrate_range(begin: int, end: int, group_id: int) -> Op[list[int]]:
    req = topom_pb2.CreateSlotActionRangeRequest(begin=begin, end=end, target_group_id=group_id)
    return Op("CreateSlotActionRange", req, topom_pb2.CreateSlotActionRangeResponse,
              lambda r: list(r.slot_ids), False)


def set_migration_disabled(disabled: bool) -> Op[None]:
    return Op("SetSlotActionDisabled", topom_pb2.SetSlotActionDisabledRequest(disabled=disabled),
              topom_pb2.SetSlotActionDisabledResponse, _none, False)


def resync_group(group_id: int) -> Op[int]:
    return Op("ResyncGroup", topom_pb2.ResyncGroupRequest(group_id=group_id),
              topom_pb2.ResyncGroupResponse, _revision, False)


def add_sentinel(addr: str) -> Op[list[str]]:
    return Op("AddSentinel", topom_pb2.AddSentinelRequest(addr=addr),
              topom_pb2.AddSentinelResponse, lambda r: list(r.sentinel.servers), False)


def remove_sentinel(addr: str, force: bool = False) -> Op[list[str]]:
    return Op("RemoveSentinel", topom_pb2.RemoveSentinelRequest(addr=addr, force=force),
              topom_pb2.RemoveSentinelResponse, lambda r: list(r.sentinel.servers), False)


def resync_sentinels() -> Op[list[str]]:
    return Op("ResyncSentinels", topom_pb2.ResyncSentinelsRequest(),
              topom_pb2.ResyncSentinelsResponse, lambda r: list(r.sentinel.servers), False)


def create_sync_action(addr: str) -> Op[None]:
    """Queues a replication action: the server follows its group's master."""
    return Op("CreateSyncAction", topom_pb2.CreateSyncActionRequest(addr=addr),
              topom_pb2.CreateSyncActionResponse, _none, False)
