import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from topom_client.topom.v1 import model_pb2 as _model_pb2
from topom_client.topom.v1 import stats_pb2 as _stats_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InstanceRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSTANCE_ROLE_UNSPECIFIED: _ClassVar[InstanceRole]
    INSTANCE_ROLE_LEADER: _ClassVar[InstanceRole]
    INSTANCE_ROLE_STANDBY: _ClassVar[InstanceRole]

class LogLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_LEVEL_UNSPECIFIED: _ClassVar[LogLevel]
    LOG_LEVEL_ERROR: _ClassVar[LogLevel]
    LOG_LEVEL_WARN: _ClassVar[LogLevel]
    LOG_LEVEL_INFO: _ClassVar[LogLevel]
    LOG_LEVEL_DEBUG: _ClassVar[LogLevel]
    LOG_LEVEL_TRACE: _ClassVar[LogLevel]
    LOG_LEVEL_OFF: _ClassVar[LogLevel]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_MASTER_SWITCH: _ClassVar[EventKind]
    EVENT_KIND_PROMOTE: _ClassVar[EventKind]
    EVENT_KIND_LEADER_ELECTED: _ClassVar[EventKind]
    EVENT_KIND_STEPPED_DOWN: _ClassVar[EventKind]
INSTANCE_ROLE_UNSPECIFIED: InstanceRole
INSTANCE_ROLE_LEADER: InstanceRole
INSTANCE_ROLE_STANDBY: InstanceRole
LOG_LEVEL_UNSPECIFIED: LogLevel
LOG_LEVEL_ERROR: LogLevel
LOG_LEVEL_WARN: LogLevel
LOG_LEVEL_INFO: LogLevel
LOG_LEVEL_DEBUG: LogLevel
LOG_LEVEL_TRACE: LogLevel
LOG_LEVEL_OFF: LogLevel
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_MASTER_SWITCH: EventKind
EVENT_KIND_PROMOTE: EventKind
EVENT_KIND_LEADER_ELECTED: EventKind
EVENT_KIND_STEPPED_DOWN: EventKind

class GetOverviewRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConfigView(_message.Message):
    __slots__ = ("coordinator_name", "coordinator_addr", "product_name", "product_auth_set", "listen_addr", "migration_method", "migration_parallel_slots", "migration_timeout", "sentinel_quorum", "stats_refresh_period", "admin_auth_required", "migration_max_keys_per_sec", "migration_max_bytes_per_sec")
    COORDINATOR_NAME_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_ADDR_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_NAME_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_AUTH_SET_FIELD_NUMBER: _ClassVar[int]
    LISTEN_ADDR_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_PARALLEL_SLOTS_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SENTINEL_QUORUM_FIELD_NUMBER: _ClassVar[int]
    STATS_REFRESH_PERIOD_FIELD_NUMBER: _ClassVar[int]
    ADMIN_AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_MAX_KEYS_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_MAX_BYTES_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    coordinator_name: str
    coordinator_addr: str
    product_name: str
    product_auth_set: bool
    listen_addr: str
    migration_method: _model_pb2.ForwardMethod
    migration_parallel_slots: int
    migration_timeout: _duration_pb2.Duration
    sentinel_quorum: int
    stats_refresh_period: _duration_pb2.Duration
    admin_auth_required: bool
    migration_max_keys_per_sec: int
    migration_max_bytes_per_sec: int
    def __init__(self, coordinator_name: _Optional[str] = ..., coordinator_addr: _Optional[str] = ..., product_name: _Optional[str] = ..., product_auth_set: _Optional[bool] = ..., listen_addr: _Optional[str] = ..., migration_method: _Optional[_Union[_model_pb2.ForwardMethod, str]] = ..., migration_parallel_slots: _Optional[int] = ..., migration_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., sentinel_quorum: _Optional[int] = ..., stats_refresh_period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., admin_auth_required: _Optional[bool] = ..., migration_max_keys_per_sec: _Optional[int] = ..., migration_max_bytes_per_sec: _Optional[int] = ...) -> None: ...

class GetOverviewResponse(_message.Message):
    __slots__ = ("version", "config", "model", "group_count", "server_count", "proxy_count", "slots_per_group", "revision", "role", "leader_addr", "instances")
    class SlotsPerGroupEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    GROUP_COUNT_FIELD_NUMBER: _ClassVar[int]
    SERVER_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROXY_COUNT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_PER_GROUP_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    LEADER_ADDR_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    version: str
    config: ConfigView
    model: _model_pb2.TopomModel
    group_count: int
    server_count: int
    proxy_count: int
    slots_per_group: _containers.ScalarMap[int, int]
    revision: int
    role: InstanceRole
    leader_addr: str
    instances: _containers.RepeatedCompositeFieldContainer[TopomInstance]
    def __init__(self, version: _Optional[str] = ..., config: _Optional[_Union[ConfigView, _Mapping]] = ..., model: _Optional[_Union[_model_pb2.TopomModel, _Mapping]] = ..., group_count: _Optional[int] = ..., server_count: _Optional[int] = ..., proxy_count: _Optional[int] = ..., slots_per_group: _Optional[_Mapping[int, int]] = ..., revision: _Optional[int] = ..., role: _Optional[_Union[InstanceRole, str]] = ..., leader_addr: _Optional[str] = ..., instances: _Optional[_Iterable[_Union[TopomInstance, _Mapping]]] = ...) -> None: ...

class TopomInstance(_message.Message):
    __slots__ = ("addr", "role", "pid", "hostname", "started", "leader_since")
    ADDR_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    LEADER_SINCE_FIELD_NUMBER: _ClassVar[int]
    addr: str
    role: InstanceRole
    pid: int
    hostname: str
    started: _timestamp_pb2.Timestamp
    leader_since: _timestamp_pb2.Timestamp
    def __init__(self, addr: _Optional[str] = ..., role: _Optional[_Union[InstanceRole, str]] = ..., pid: _Optional[int] = ..., hostname: _Optional[str] = ..., started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., leader_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.TopomModel
    def __init__(self, model: _Optional[_Union[_model_pb2.TopomModel, _Mapping]] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class ShutdownRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShutdownResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResignRequest(_message.Message):
    __slots__ = ("wait",)
    WAIT_FIELD_NUMBER: _ClassVar[int]
    wait: _duration_pb2.Duration
    def __init__(self, wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ResignResponse(_message.Message):
    __slots__ = ("leader_addr", "takeover")
    LEADER_ADDR_FIELD_NUMBER: _ClassVar[int]
    TAKEOVER_FIELD_NUMBER: _ClassVar[int]
    leader_addr: str
    takeover: _duration_pb2.Duration
    def __init__(self, leader_addr: _Optional[str] = ..., takeover: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SetLogLevelRequest(_message.Message):
    __slots__ = ("level",)
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    level: LogLevel
    def __init__(self, level: _Optional[_Union[LogLevel, str]] = ...) -> None: ...

class SetLogLevelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ("addr",)
    ADDR_FIELD_NUMBER: _ClassVar[int]
    addr: str
    def __init__(self, addr: _Optional[str] = ...) -> None: ...

class GetServerInfoResponse(_message.Message):
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

class GetSentinelInfoRequest(_message.Message):
    __slots__ = ("addr", "monitored")
    ADDR_FIELD_NUMBER: _ClassVar[int]
    MONITORED_FIELD_NUMBER: _ClassVar[int]
    addr: str
    monitored: bool
    def __init__(self, addr: _Optional[str] = ..., monitored: _Optional[bool] = ...) -> None: ...

class GetSentinelInfoResponse(_message.Message):
    __slots__ = ("fields", "monitored")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MonitoredEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _stats_pb2.SentinelGroup
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_stats_pb2.SentinelGroup, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    MONITORED_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.ScalarMap[str, str]
    monitored: _containers.MessageMap[str, _stats_pb2.SentinelGroup]
    def __init__(self, fields: _Optional[_Mapping[str, str]] = ..., monitored: _Optional[_Mapping[str, _stats_pb2.SentinelGroup]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("kind", "time", "group_id", "old_master", "new_master", "revision", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_MASTER_FIELD_NUMBER: _ClassVar[int]
    NEW_MASTER_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    time: _timestamp_pb2.Timestamp
    group_id: int
    old_master: str
    new_master: str
    revision: int
    detail: str
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_id: _Optional[int] = ..., old_master: _Optional[str] = ..., new_master: _Optional[str] = ..., revision: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("group_ids", "addrs", "fields")
    GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    ADDRS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    group_ids: _containers.RepeatedScalarFieldContainer[int]
    addrs: _containers.RepeatedScalarFieldContainer[str]
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_ids: _Optional[_Iterable[int]] = ..., addrs: _Optional[_Iterable[str]] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: _stats_pb2.StatsSnapshot
    def __init__(self, stats: _Optional[_Union[_stats_pb2.StatsSnapshot, _Mapping]] = ...) -> None: ...

class WatchStatsRequest(_message.Message):
    __slots__ = ("group_ids", "addrs", "fields")
    GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    ADDRS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    group_ids: _containers.RepeatedScalarFieldContainer[int]
    addrs: _containers.RepeatedScalarFieldContainer[str]
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_ids: _Optional[_Iterable[int]] = ..., addrs: _Optional[_Iterable[str]] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchStatsResponse(_message.Message):
    __slots__ = ("round", "started_at", "finished_at", "servers", "sentinels")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    SENTINELS_FIELD_NUMBER: _ClassVar[int]
    round: int
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    servers: _containers.RepeatedCompositeFieldContainer[_stats_pb2.ServerStats]
    sentinels: _containers.RepeatedCompositeFieldContainer[_stats_pb2.SentinelStats]
    def __init__(self, round: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., servers: _Optional[_Iterable[_Union[_stats_pb2.ServerStats, _Mapping]]] = ..., sentinels: _Optional[_Iterable[_Union[_stats_pb2.SentinelStats, _Mapping]]] = ...) -> None: ...

class RefreshRedisStatsRequest(_message.Message):
    __slots__ = ("timeout",)
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RefreshRedisStatsResponse(_message.Message):
    __slots__ = ("round", "servers", "sentinels", "elapsed")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    SENTINELS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    round: int
    servers: _containers.RepeatedCompositeFieldContainer[_stats_pb2.ServerStats]
    sentinels: _containers.RepeatedCompositeFieldContainer[_stats_pb2.SentinelStats]
    elapsed: _duration_pb2.Duration
    def __init__(self, round: _Optional[int] = ..., servers: _Optional[_Iterable[_Union[_stats_pb2.ServerStats, _Mapping]]] = ..., sentinels: _Optional[_Iterable[_Union[_stats_pb2.SentinelStats, _Mapping]]] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListSlotsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSlotsResponse(_message.Message):
    __slots__ = ("revision", "epoch", "mappings", "slots")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    revision: int
    epoch: str
    mappings: _containers.RepeatedCompositeFieldContainer[_model_pb2.SlotMapping]
    slots: _containers.RepeatedCompositeFieldContainer[_model_pb2.Slot]
    def __init__(self, revision: _Optional[int] = ..., epoch: _Optional[str] = ..., mappings: _Optional[_Iterable[_Union[_model_pb2.SlotMapping, _Mapping]]] = ..., slots: _Optional[_Iterable[_Union[_model_pb2.Slot, _Mapping]]] = ...) -> None: ...

class AssignSlotsRequest(_message.Message):
    __slots__ = ("mappings",)
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    mappings: _containers.RepeatedCompositeFieldContainer[_model_pb2.SlotMapping]
    def __init__(self, mappings: _Optional[_Iterable[_Union[_model_pb2.SlotMapping, _Mapping]]] = ...) -> None: ...

class AssignSlotsResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class AssignSlotsOfflineRequest(_message.Message):
    __slots__ = ("slot_ids",)
    SLOT_IDS_FIELD_NUMBER: _ClassVar[int]
    slot_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, slot_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class AssignSlotsOfflineResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class RebalanceSlotsRequest(_message.Message):
    __slots__ = ("confirm",)
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    confirm: bool
    def __init__(self, confirm: _Optional[bool] = ...) -> None: ...

class PlannedMove(_message.Message):
    __slots__ = ("slot_id", "from_group_id", "to_group_id")
    SLOT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TO_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    slot_id: int
    from_group_id: int
    to_group_id: int
    def __init__(self, slot_id: _Optional[int] = ..., from_group_id: _Optional[int] = ..., to_group_id: _Optional[int] = ...) -> None: ...

class RebalanceSlotsResponse(_message.Message):
    __slots__ = ("moves", "confirmed")
    MOVES_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    moves: _containers.RepeatedCompositeFieldContainer[PlannedMove]
    confirmed: bool
    def __init__(self, moves: _Optional[_Iterable[_Union[PlannedMove, _Mapping]]] = ..., confirmed: _Optional[bool] = ...) -> None: ...

class CreateSlotActionRequest(_message.Message):
    __slots__ = ("slot_id", "target_group_id")
    SLOT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    slot_id: int
    target_group_id: int
    def __init__(self, slot_id: _Optional[int] = ..., target_group_id: _Optional[int] = ...) -> None: ...

class CreateSlotActionResponse(_message.Message):
    __slots__ = ("mapping",)
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    mapping: _model_pb2.SlotMapping
    def __init__(self, mapping: _Optional[_Union[_model_pb2.SlotMapping, _Mapping]] = ...) -> None: ...

class CreateSlotActionRangeRequest(_message.Message):
    __slots__ = ("begin", "end", "target_group_id")
    BEGIN_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TARGET_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    begin: int
    end: int
    target_group_id: int
    def __init__(self, begin: _Optional[int] = ..., end: _Optional[int] = ..., target_group_id: _Optional[int] = ...) -> None: ...

class CreateSlotActionRangeResponse(_message.Message):
    __slots__ = ("slot_ids",)
    SLOT_IDS_FIELD_NUMBER: _ClassVar[int]
    slot_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, slot_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class CreateSlotActionSomeRequest(_message.Message):
    __slots__ = ("source_group_id", "target_group_id", "count")
    SOURCE_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    source_group_id: int
    target_group_id: int
    count: int
    def __init__(self, source_group_id: _Optional[int] = ..., target_group_id: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class CreateSlotActionSomeResponse(_message.Message):
    __slots__ = ("slot_ids",)
    SLOT_IDS_FIELD_NUMBER: _ClassVar[int]
    slot_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, slot_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class RemoveSlotActionRequest(_message.Message):
    __slots__ = ("slot_id",)
    SLOT_ID_FIELD_NUMBER: _ClassVar[int]
    slot_id: int
    def __init__(self, slot_id: _Optional[int] = ...) -> None: ...

class RemoveSlotActionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetSlotActionIntervalRequest(_message.Message):
    __slots__ = ("interval_us",)
    INTERVAL_US_FIELD_NUMBER: _ClassVar[int]
    interval_us: int
    def __init__(self, interval_us: _Optional[int] = ...) -> None: ...

class SetSlotActionIntervalResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetSlotActionDisabledRequest(_message.Message):
    __slots__ = ("disabled",)
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    disabled: bool
    def __init__(self, disabled: _Optional[bool] = ...) -> None: ...

class SetSlotActionDisabledResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProcessSlotActionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SlotStep(_message.Message):
    __slots__ = ("slot_id", "state", "error")
    SLOT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    slot_id: int
    state: _model_pb2.SlotActionState
    error: str
    def __init__(self, slot_id: _Optional[int] = ..., state: _Optional[_Union[_model_pb2.SlotActionState, str]] = ..., error: _Optional[str] = ...) -> None: ...

class ProcessSlotActionResponse(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[SlotStep]
    def __init__(self, steps: _Optional[_Iterable[_Union[SlotStep, _Mapping]]] = ...) -> None: ...

class ListGroupsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGroupsResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[_model_pb2.Group]
    def __init__(self, groups: _Optional[_Iterable[_Union[_model_pb2.Group, _Mapping]]] = ...) -> None: ...

class GetGroupRequest(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    def __init__(self, group_id: _Optional[int] = ...) -> None: ...

class GetGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _model_pb2.Group
    def __init__(self, group: _Optional[_Union[_model_pb2.Group, _Mapping]] = ...) -> None: ...

class CreateGroupRequest(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    def __init__(self, group_id: _Optional[int] = ...) -> None: ...

class CreateGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _model_pb2.Group
    def __init__(self, group: _Optional[_Union[_model_pb2.Group, _Mapping]] = ...) -> None: ...

class RemoveGroupRequest(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    def __init__(self, group_id: _Optional[int] = ...) -> None: ...

class RemoveGroupResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddGroupServerRequest(_message.Message):
    __slots__ = ("group_id", "addr", "datacenter", "no_sync")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    NO_SYNC_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    addr: str
    datacenter: str
    no_sync: bool
    def __init__(self, group_id: _Optional[int] = ..., addr: _Optional[str] = ..., datacenter: _Optional[str] = ..., no_sync: _Optional[bool] = ...) -> None: ...

class AddGroupServerResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _model_pb2.Group
    def __init__(self, group: _Optional[_Union[_model_pb2.Group, _Mapping]] = ...) -> None: ...

class DeleteGroupServerRequest(_message.Message):
    __slots__ = ("group_id", "addr")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    addr: str
    def __init__(self, group_id: _Optional[int] = ..., addr: _Optional[str] = ...) -> None: ...

class DeleteGroupServerResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _model_pb2.Group
    def __init__(self, group: _Optional[_Union[_model_pb2.Group, _Mapping]] = ...) -> None: ...

class PromoteServerRequest(_message.Message):
    __slots__ = ("group_id", "addr")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    addr: str
    def __init__(self, group_id: _Optional[int] = ..., addr: _Optional[str] = ...) -> None: ...

class PromoteServerResponse(_message.Message):
    __slots__ = ("group", "write_pause")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    WRITE_PAUSE_FIELD_NUMBER: _ClassVar[int]
    group: _model_pb2.Group
    write_pause: _duration_pb2.Duration
    def __init__(self, group: _Optional[_Union[_model_pb2.Group, _Mapping]] = ..., write_pause: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ResyncGroupRequest(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    def __init__(self, group_id: _Optional[int] = ...) -> None: ...

class ResyncGroupResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class ResyncGroupAllRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResyncGroupAllResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class SetReplicaGroupRequest(_message.Message):
    __slots__ = ("group_id", "addr", "enabled")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    addr: str
    enabled: bool
    def __init__(self, group_id: _Optional[int] = ..., addr: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class SetReplicaGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _model_pb2.Group
    def __init__(self, group: _Optional[_Union[_model_pb2.Group, _Mapping]] = ...) -> None: ...

class SetReplicaGroupAllRequest(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class SetReplicaGroupAllResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateSyncActionRequest(_message.Message):
    __slots__ = ("addr",)
    ADDR_FIELD_NUMBER: _ClassVar[int]
    addr: str
    def __init__(self, addr: _Optional[str] = ...) -> None: ...

class CreateSyncActionResponse(_message.Message):
    __slots__ = ("action",)
    ACTION_FIELD_NUMBER: _ClassVar[int]
    action: _model_pb2.SyncAction
    def __init__(self, action: _Optional[_Union[_model_pb2.SyncAction, _Mapping]] = ...) -> None: ...

class RemoveSyncActionRequest(_message.Message):
    __slots__ = ("addr",)
    ADDR_FIELD_NUMBER: _ClassVar[int]
    addr: str
    def __init__(self, addr: _Optional[str] = ...) -> None: ...

class RemoveSyncActionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProcessSyncActionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProcessSyncActionResponse(_message.Message):
    __slots__ = ("processed", "addr", "group_id", "state", "error", "master_addr")
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADDR_FIELD_NUMBER: _ClassVar[int]
    processed: bool
    addr: str
    group_id: int
    state: _model_pb2.SyncActionState
    error: str
    master_addr: str
    def __init__(self, processed: _Optional[bool] = ..., addr: _Optional[str] = ..., group_id: _Optional[int] = ..., state: _Optional[_Union[_model_pb2.SyncActionState, str]] = ..., error: _Optional[str] = ..., master_addr: _Optional[str] = ...) -> None: ...

class ListSentinelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSentinelsResponse(_message.Message):
    __slots__ = ("sentinel",)
    SENTINEL_FIELD_NUMBER: _ClassVar[int]
    sentinel: _model_pb2.Sentinel
    def __init__(self, sentinel: _Optional[_Union[_model_pb2.Sentinel, _Mapping]] = ...) -> None: ...

class AddSentinelRequest(_message.Message):
    __slots__ = ("addr",)
    ADDR_FIELD_NUMBER: _ClassVar[int]
    addr: str
    def __init__(self, addr: _Optional[str] = ...) -> None: ...

class AddSentinelResponse(_message.Message):
    __slots__ = ("sentinel",)
    SENTINEL_FIELD_NUMBER: _ClassVar[int]
    sentinel: _model_pb2.Sentinel
    def __init__(self, sentinel: _Optional[_Union[_model_pb2.Sentinel, _Mapping]] = ...) -> None: ...

class RemoveSentinelRequest(_message.Message):
    __slots__ = ("addr", "force")
    ADDR_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    addr: str
    force: bool
    def __init__(self, addr: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveSentinelResponse(_message.Message):
    __slots__ = ("sentinel",)
    SENTINEL_FIELD_NUMBER: _ClassVar[int]
    sentinel: _model_pb2.Sentinel
    def __init__(self, sentinel: _Optional[_Union[_model_pb2.Sentinel, _Mapping]] = ...) -> None: ...

class ResyncSentinelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResyncSentinelsResponse(_message.Message):
    __slots__ = ("sentinel",)
    SENTINEL_FIELD_NUMBER: _ClassVar[int]
    sentinel: _model_pb2.Sentinel
    def __init__(self, sentinel: _Optional[_Union[_model_pb2.Sentinel, _Mapping]] = ...) -> None: ...

class ListProxiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProxiesResponse(_message.Message):
    __slots__ = ("proxies",)
    PROXIES_FIELD_NUMBER: _ClassVar[int]
    proxies: _containers.RepeatedCompositeFieldContainer[_model_pb2.Proxy]
    def __init__(self, proxies: _Optional[_Iterable[_Union[_model_pb2.Proxy, _Mapping]]] = ...) -> None: ...

class AddCodisProxyRequest(_message.Message):
    __slots__ = ("admin_addr",)
    ADMIN_ADDR_FIELD_NUMBER: _ClassVar[int]
    admin_addr: str
    def __init__(self, admin_addr: _Optional[str] = ...) -> None: ...

class AddCodisProxyResponse(_message.Message):
    __slots__ = ("proxy",)
    PROXY_FIELD_NUMBER: _ClassVar[int]
    proxy: _model_pb2.Proxy
    def __init__(self, proxy: _Optional[_Union[_model_pb2.Proxy, _Mapping]] = ...) -> None: ...

class RemoveProxyRequest(_message.Message):
    __slots__ = ("token", "force")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    token: str
    force: bool
    def __init__(self, token: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveProxyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReinitProxyRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class ReinitProxyResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...
