import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from topom_client.topom.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServerSummary(_message.Message):
    __slots__ = ("role", "master_addr", "master_link_status", "repl_offset", "lag_bytes", "used_memory", "maxmemory", "ops_per_sec", "connected_clients", "keys_per_db", "redis_version")
    class KeysPerDbEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADDR_FIELD_NUMBER: _ClassVar[int]
    MASTER_LINK_STATUS_FIELD_NUMBER: _ClassVar[int]
    REPL_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAG_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_MEMORY_FIELD_NUMBER: _ClassVar[int]
    MAXMEMORY_FIELD_NUMBER: _ClassVar[int]
    OPS_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    KEYS_PER_DB_FIELD_NUMBER: _ClassVar[int]
    REDIS_VERSION_FIELD_NUMBER: _ClassVar[int]
    role: str
    master_addr: str
    master_link_status: str
    repl_offset: int
    lag_bytes: int
    used_memory: int
    maxmemory: int
    ops_per_sec: int
    connected_clients: int
    keys_per_db: _containers.ScalarMap[int, int]
    redis_version: str
    def __init__(self, role: _Optional[str] = ..., master_addr: _Optional[str] = ..., master_link_status: _Optional[str] = ..., repl_offset: _Optional[int] = ..., lag_bytes: _Optional[int] = ..., used_memory: _Optional[int] = ..., maxmemory: _Optional[int] = ..., ops_per_sec: _Optional[int] = ..., connected_clients: _Optional[int] = ..., keys_per_db: _Optional[_Mapping[int, int]] = ..., redis_version: _Optional[str] = ...) -> None: ...

class RedisStats(_message.Message):
    __slots__ = ("fields", "error", "timeout", "time", "summary", "sentinel")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SentinelEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: SentinelGroup
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[SentinelGroup, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SENTINEL_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.ScalarMap[str, str]
    error: str
    timeout: bool
    time: _timestamp_pb2.Timestamp
    summary: ServerSummary
    sentinel: _containers.MessageMap[str, SentinelGroup]
    def __init__(self, fields: _Optional[_Mapping[str, str]] = ..., error: _Optional[str] = ..., timeout: _Optional[bool] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., summary: _Optional[_Union[ServerSummary, _Mapping]] = ..., sentinel: _Optional[_Mapping[str, SentinelGroup]] = ...) -> None: ...

class SentinelGroup(_message.Message):
    __slots__ = ("master", "replicas")
    class MasterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MASTER_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    master: _containers.ScalarMap[str, str]
    replicas: _containers.RepeatedCompositeFieldContainer[SentinelReplica]
    def __init__(self, master: _Optional[_Mapping[str, str]] = ..., replicas: _Optional[_Iterable[_Union[SentinelReplica, _Mapping]]] = ...) -> None: ...

class SentinelReplica(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.ScalarMap[str, str]
    def __init__(self, fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ServerStats(_message.Message):
    __slots__ = ("addr", "group_id", "index", "stats")
    ADDR_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    addr: str
    group_id: int
    index: int
    stats: RedisStats
    def __init__(self, addr: _Optional[str] = ..., group_id: _Optional[int] = ..., index: _Optional[int] = ..., stats: _Optional[_Union[RedisStats, _Mapping]] = ...) -> None: ...

class SentinelStats(_message.Message):
    __slots__ = ("addr", "stats")
    ADDR_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    addr: str
    stats: RedisStats
    def __init__(self, addr: _Optional[str] = ..., stats: _Optional[_Union[RedisStats, _Mapping]] = ...) -> None: ...

class ProxyStats(_message.Message):
    __slots__ = ("ops_total", "ops_fails", "redis_errors", "ops_qps", "sessions_total", "sessions_alive", "backends", "rss_bytes", "cpu", "time")
    OPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    OPS_FAILS_FIELD_NUMBER: _ClassVar[int]
    REDIS_ERRORS_FIELD_NUMBER: _ClassVar[int]
    OPS_QPS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_ALIVE_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ops_total: int
    ops_fails: int
    redis_errors: int
    ops_qps: int
    sessions_total: int
    sessions_alive: int
    backends: int
    rss_bytes: int
    cpu: float
    time: _timestamp_pb2.Timestamp
    def __init__(self, ops_total: _Optional[int] = ..., ops_fails: _Optional[int] = ..., redis_errors: _Optional[int] = ..., ops_qps: _Optional[int] = ..., sessions_total: _Optional[int] = ..., sessions_alive: _Optional[int] = ..., backends: _Optional[int] = ..., rss_bytes: _Optional[int] = ..., cpu: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProxyEntry(_message.Message):
    __slots__ = ("proxy", "stats")
    PROXY_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    proxy: _model_pb2.Proxy
    stats: ProxyStats
    def __init__(self, proxy: _Optional[_Union[_model_pb2.Proxy, _Mapping]] = ..., stats: _Optional[_Union[ProxyStats, _Mapping]] = ...) -> None: ...

class SlotProgress(_message.Message):
    __slots__ = ("slot_id", "keys_moved", "keys_left", "bytes_moved", "keys_per_sec", "eta_seconds", "error")
    SLOT_ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_MOVED_FIELD_NUMBER: _ClassVar[int]
    KEYS_LEFT_FIELD_NUMBER: _ClassVar[int]
    BYTES_MOVED_FIELD_NUMBER: _ClassVar[int]
    KEYS_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    slot_id: int
    keys_moved: int
    keys_left: int
    bytes_moved: int
    keys_per_sec: float
    eta_seconds: float
    error: str
    def __init__(self, slot_id: _Optional[int] = ..., keys_moved: _Optional[int] = ..., keys_left: _Optional[int] = ..., bytes_moved: _Optional[int] = ..., keys_per_sec: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class SlotActionStats(_message.Message):
    __slots__ = ("interval_us", "disabled", "status", "executor", "progress")
    INTERVAL_US_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    interval_us: int
    disabled: bool
    status: str
    executor: int
    progress: _containers.RepeatedCompositeFieldContainer[SlotProgress]
    def __init__(self, interval_us: _Optional[int] = ..., disabled: _Optional[bool] = ..., status: _Optional[str] = ..., executor: _Optional[int] = ..., progress: _Optional[_Iterable[_Union[SlotProgress, _Mapping]]] = ...) -> None: ...

class SentinelOverview(_message.Message):
    __slots__ = ("model", "stats", "masters")
    class MastersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    MASTERS_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Sentinel
    stats: _containers.RepeatedCompositeFieldContainer[SentinelStats]
    masters: _containers.ScalarMap[int, str]
    def __init__(self, model: _Optional[_Union[_model_pb2.Sentinel, _Mapping]] = ..., stats: _Optional[_Iterable[_Union[SentinelStats, _Mapping]]] = ..., masters: _Optional[_Mapping[int, str]] = ...) -> None: ...

class GroupEntry(_message.Message):
    __slots__ = ("group", "servers")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    group: _model_pb2.Group
    servers: _containers.RepeatedCompositeFieldContainer[ServerStats]
    def __init__(self, group: _Optional[_Union[_model_pb2.Group, _Mapping]] = ..., servers: _Optional[_Iterable[_Union[ServerStats, _Mapping]]] = ...) -> None: ...

class StatsSnapshot(_message.Message):
    __slots__ = ("closed", "slots", "groups", "proxies", "slot_action", "sentinels", "round")
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    PROXIES_FIELD_NUMBER: _ClassVar[int]
    SLOT_ACTION_FIELD_NUMBER: _ClassVar[int]
    SENTINELS_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    closed: bool
    slots: _containers.RepeatedCompositeFieldContainer[_model_pb2.SlotMapping]
    groups: _containers.RepeatedCompositeFieldContainer[GroupEntry]
    proxies: _containers.RepeatedCompositeFieldContainer[ProxyEntry]
    slot_action: SlotActionStats
    sentinels: SentinelOverview
    round: int
    def __init__(self, closed: _Optional[bool] = ..., slots: _Optional[_Iterable[_Union[_model_pb2.SlotMapping, _Mapping]]] = ..., groups: _Optional[_Iterable[_Union[GroupEntry, _Mapping]]] = ..., proxies: _Optional[_Iterable[_Union[ProxyEntry, _Mapping]]] = ..., slot_action: _Optional[_Union[SlotActionStats, _Mapping]] = ..., sentinels: _Optional[_Union[SentinelOverview, _Mapping]] = ..., round: _Optional[int] = ...) -> None: ...
