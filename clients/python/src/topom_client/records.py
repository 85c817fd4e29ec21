"""The plain Python values the client returns (dicts typed as TypedDicts).

Every value is a built-in type: ``int``, ``float``, ``str``, ``bool``,
``datetime`` (timezone-aware, UTC), ``None``, lists and dicts. Enum values
are lower-case strings without their prefix (``"migrating"``, ``"live"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict


class ServerRound(TypedDict):
    """One group server in one stats round."""

    group: int
    addr: str
    #: Position in the group; 0 is the master.
    index: int
    #: True when INFO answered this round (``error`` empty, no timeout).
    up: bool
    error: str
    timeout: bool
    #: When the probe finished.
    time: datetime | None
    #: ``"master"`` or ``"slave"`` (INFO ``role``); empty when down.
    role: str
    master_addr: str
    #: ``"up"`` / ``"down"`` for a replica, empty for a master.
    master_link_status: str
    repl_offset: int
    #: Bytes behind the group master in the same round (0 for a master).
    lag_bytes: int
    used_memory: int
    #: 0 means no limit.
    maxmemory: int
    ops_per_sec: int
    connected_clients: int
    #: db index -> key count.
    keys_per_db: dict[int, int]
    redis_version: str
    #: The INFO fields kept by the request's ``fields`` filter (all if none).
    fields: dict[str, str]


class SentinelRound(TypedDict):
    """One Sentinel in one stats round."""

    addr: str
    up: bool
    error: str
    timeout: bool
    time: datetime | None
    fields: dict[str, str]
    #: Monitoring name (``<product>-<gid>``) -> the ``SENTINEL masters`` entry.
    masters: dict[str, dict[str, str]]


class StatsRound(TypedDict):
    """One refresh round as :meth:`TopomClient.watch_stats` yields it."""

    round: int
    started_at: datetime | None
    finished_at: datetime | None
    #: Rounds missed since the previous dict (a gap in ``round``), 0 if none.
    skipped: int
    #: True on the first round after the stream was re-opened.
    resumed: bool
    #: The topom address this round came from.
    endpoint: str
    servers: list[ServerRound]
    sentinels: list[SentinelRound]


class Model(TypedDict):
    """The owner record of a topom instance."""

    token: str
    admin_addr: str
    product: str
    pid: int
    hostname: str
    start_time: datetime | None


class Overview(TypedDict):
    version: str
    product: str
    #: Period of the stats refresh task, seconds.
    stats_refresh_period: float
    admin_auth_required: bool
    model: Model
    group_count: int
    server_count: int
    proxy_count: int
    #: group id -> slots owned (group 0 = offline).
    slots_per_group: dict[int, int]
    revision: int
    #: This instance's role: ``"leader"``, ``"standby"`` (``"unspecified"``
    #: from an older topom).
    role: str
    #: The leader's ``host:port``; empty while no instance leads.
    leader: str
    #: Every running instance, the leader first.
    instances: list[Instance]


class Instance(TypedDict):
    """One running topom instance of the product."""

    addr: str
    role: str
    pid: int
    hostname: str
    started: datetime | None
    #: Since when it leads (None for a standby).
    leader_since: datetime | None


class SlotInfo(TypedDict):
    id: int
    #: Owning group; 0 = offline.
    group: int
    #: The action's state (``"pending"`` .. ``"finished"``), None when idle.
    action: str | None
    #: The group the slot moves to, None when idle.
    target_group: int | None


class SlotTable(TypedDict):
    revision: int
    epoch: str
    slots: list[SlotInfo]


class GroupServer(TypedDict):
    addr: str
    datacenter: str
    replica_group: bool
    #: ``"redis"`` or ``"codis_server"``.
    kind: str
    #: The sync action's state, None when none.
    action: str | None
    action_error: str


class GroupInfo(TypedDict):
    id: int
    servers: list[GroupServer]
    #: The switchover state, None when not promoting.
    promoting: str | None
    out_of_sync: bool


class ProxyInfo(TypedDict):
    id: int
    token: str
    proxy_addr: str
    admin_addr: str
    datacenter: str
    version: str
    pid: int
    hostname: str
    #: ``"live"`` or ``"expired"``.
    lease_state: str
    applied_revision: int
    connected: bool
    last_heartbeat: datetime | None
    last_nack: str


class SlotProgress(TypedDict):
    slot: int
    keys_moved: int
    keys_left: int
    bytes_moved: int
    keys_per_sec: float
    #: None when unknown.
    eta_seconds: float | None
    error: str


class SlotActionInfo(TypedDict):
    interval_us: int
    disabled: bool
    status: str
    executor: int
    progress: list[SlotProgress]


class Stats(TypedDict):
    """The full stats picture (``GetStats``)."""

    round: int
    closed: bool
    #: group id -> its servers' last probe, in member order.
    groups: dict[int, list[ServerRound]]
    proxies: list[ProxyInfo]
    slot_action: SlotActionInfo
    #: group id -> the master address the Sentinels report.
    sentinel_masters: dict[int, str]
    sentinels: list[SentinelRound]


class Event(TypedDict):
    #: ``"master_switch"`` or ``"promote"``.
    kind: str
    time: datetime | None
    group: int
    old_master: str
    new_master: str
    revision: int
    detail: str


class PlannedMove(TypedDict):
    slot: int
    from_group: int
    to_group: int
