import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SlotActionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLOT_ACTION_STATE_UNSPECIFIED: _ClassVar[SlotActionState]
    SLOT_ACTION_STATE_PENDING: _ClassVar[SlotActionState]
    SLOT_ACTION_STATE_PREPARING: _ClassVar[SlotActionState]
    SLOT_ACTION_STATE_PREPARED: _ClassVar[SlotActionState]
    SLOT_ACTION_STATE_MIGRATING: _ClassVar[SlotActionState]
    SLOT_ACTION_STATE_FINISHED: _ClassVar[SlotActionState]

class ForwardMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FORWARD_METHOD_UNSPECIFIED: _ClassVar[ForwardMethod]
    FORWARD_METHOD_SYNC: _ClassVar[ForwardMethod]
    FORWARD_METHOD_SEMI_ASYNC: _ClassVar[ForwardMethod]

class SyncActionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_ACTION_STATE_UNSPECIFIED: _ClassVar[SyncActionState]
    SYNC_ACTION_STATE_PENDING: _ClassVar[SyncActionState]
    SYNC_ACTION_STATE_SYNCING: _ClassVar[SyncActionState]
    SYNC_ACTION_STATE_SYNCED: _ClassVar[SyncActionState]
    SYNC_ACTION_STATE_SYNCED_FAILED: _ClassVar[SyncActionState]

class ServerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVER_KIND_UNSPECIFIED: _ClassVar[ServerKind]
    SERVER_KIND_REDIS: _ClassVar[ServerKind]
    SERVER_KIND_CODIS_SERVER: _ClassVar[ServerKind]

class PromoteState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMOTE_STATE_UNSPECIFIED: _ClassVar[PromoteState]
    PROMOTE_STATE_PREPARING: _ClassVar[PromoteState]
    PROMOTE_STATE_PREPARED: _ClassVar[PromoteState]
    PROMOTE_STATE_FINISHED: _ClassVar[PromoteState]

class LeaseState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEASE_STATE_UNSPECIFIED: _ClassVar[LeaseState]
    LEASE_STATE_LIVE: _ClassVar[LeaseState]
    LEASE_STATE_EXPIRED: _ClassVar[LeaseState]

class ProxyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROXY_KIND_UNSPECIFIED: _ClassVar[ProxyKind]
    PROXY_KIND_TOPOM: _ClassVar[ProxyKind]
    PROXY_KIND_CODIS: _ClassVar[ProxyKind]

class CodisProxyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODIS_PROXY_STATE_UNSPECIFIED: _ClassVar[CodisProxyState]
    CODIS_PROXY_STATE_ONLINE: _ClassVar[CodisProxyState]
    CODIS_PROXY_STATE_OFFLINE: _ClassVar[CodisProxyState]
    CODIS_PROXY_STATE_UNREACHABLE: _ClassVar[CodisProxyState]
SLOT_ACTION_STATE_UNSPECIFIED: SlotActionState
SLOT_ACTION_STATE_PENDING: SlotActionState
SLOT_ACTION_STATE_PREPARING: SlotActionState
SLOT_ACTION_STATE_PREPARED: SlotActionState
SLOT_ACTION_STATE_MIGRATING: SlotActionState
SLOT_ACTION_STATE_FINISHED: SlotActionState
FORWARD_METHOD_UNSPECIFIED: ForwardMethod
FORWARD_METHOD_SYNC: ForwardMethod
FORWARD_METHOD_SEMI_ASYNC: ForwardMethod
SYNC_ACTION_STATE_UNSPECIFIED: SyncActionState
SYNC_ACTION_STATE_PENDING: SyncActionState
SYNC_ACTION_STATE_SYNCING: SyncActionState
SYNC_ACTION_STATE_SYNCED: SyncActionState
SYNC_ACTION_STATE_SYNCED_FAILED: SyncActionState
SERVER_KIND_UNSPECIFIED: ServerKind
SERVER_KIND_REDIS: ServerKind
SERVER_KIND_CODIS_SERVER: ServerKind
PROMOTE_STATE_UNSPECIFIED: PromoteState
PROMOTE_STATE_PREPARING: PromoteState
PROMOTE_STATE_PREPARED: PromoteState
PROMOTE_STATE_FINISHED: PromoteState
LEASE_STATE_UNSPECIFIED: LeaseState
LEASE_STATE_LIVE: LeaseState
LEASE_STATE_EXPIRED: LeaseState
PROXY_KIND_UNSPECIFIED: ProxyKind
PROXY_KIND_TOPOM: ProxyKind
PROXY_KIND_CODIS: ProxyKind
CODIS_PROXY_STATE_UNSPECIFIED: CodisProxyState
CODIS_PROXY_STATE_ONLINE: CodisProxyState
CODIS_PROXY_STATE_OFFLINE: CodisProxyState
CODIS_PROXY_STATE_UNREACHABLE: CodisProxyState

class SlotAction(_message.Message):
    __slots__ = ("index", "state", "target_group_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TARGET_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    state: SlotActionState
    target_group_id: int
    def __init__(self, index: _Optional[int] = ..., state: _Optional[_Union[SlotActionState, str]] = ..., target_group_id: _Optional[int] = ...) -> None: ...

class SlotMapping(_message.Message):
    __slots__ = ("id", "group_id", "action")
    ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    id: int
    group_id: int
    action: SlotAction
    def __init__(self, id: _Optional[int] = ..., group_id: _Optional[int] = ..., action: _Optional[_Union[SlotAction, _Mapping]] = ...) -> None: ...

class ReplicaGroup(_message.Message):
    __slots__ = ("addrs",)
    ADDRS_FIELD_NUMBER: _ClassVar[int]
    addrs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, addrs: _Optional[_Iterable[str]] = ...) -> None: ...

class Slot(_message.Message):
    __slots__ = ("id", "locked", "backend_addr", "backend_group_id", "migrate_from", "migrate_from_group_id", "forward_method", "replica_groups")
    ID_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    BACKEND_ADDR_FIELD_NUMBER: _ClassVar[int]
    BACKEND_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MIGRATE_FROM_FIELD_NUMBER: _ClassVar[int]
    MIGRATE_FROM_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    FORWARD_METHOD_FIELD_NUMBER: _ClassVar[int]
    REPLICA_GROUPS_FIELD_NUMBER: _ClassVar[int]
    id: int
    locked: bool
    backend_addr: str
    backend_group_id: int
    migrate_from: str
    migrate_from_group_id: int
    forward_method: ForwardMethod
    replica_groups: _containers.RepeatedCompositeFieldContainer[ReplicaGroup]
    def __init__(self, id: _Optional[int] = ..., locked: _Optional[bool] = ..., backend_addr: _Optional[str] = ..., backend_group_id: _Optional[int] = ..., migrate_from: _Optional[str] = ..., migrate_from_group_id: _Optional[int] = ..., forward_method: _Optional[_Union[ForwardMethod, str]] = ..., replica_groups: _Optional[_Iterable[_Union[ReplicaGroup, _Mapping]]] = ...) -> None: ...

class SyncAction(_message.Message):
    __slots__ = ("index", "state", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    state: SyncActionState
    error: str
    def __init__(self, index: _Optional[int] = ..., state: _Optional[_Union[SyncActionState, str]] = ..., error: _Optional[str] = ...) -> None: ...

class GroupServer(_message.Message):
    __slots__ = ("addr", "datacenter", "action", "replica_group", "kind")
    ADDR_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REPLICA_GROUP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    addr: str
    datacenter: str
    action: SyncAction
    replica_group: bool
    kind: ServerKind
    def __init__(self, addr: _Optional[str] = ..., datacenter: _Optional[str] = ..., action: _Optional[_Union[SyncAction, _Mapping]] = ..., replica_group: _Optional[bool] = ..., kind: _Optional[_Union[ServerKind, str]] = ...) -> None: ...

class Promoting(_message.Message):
    __slots__ = ("index", "state")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    index: int
    state: PromoteState
    def __init__(self, index: _Optional[int] = ..., state: _Optional[_Union[PromoteState, str]] = ...) -> None: ...

class Group(_message.Message):
    __slots__ = ("id", "servers", "promoting", "out_of_sync")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    PROMOTING_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_SYNC_FIELD_NUMBER: _ClassVar[int]
    id: int
    servers: _containers.RepeatedCompositeFieldContainer[GroupServer]
    promoting: Promoting
    out_of_sync: bool
    def __init__(self, id: _Optional[int] = ..., servers: _Optional[_Iterable[_Union[GroupServer, _Mapping]]] = ..., promoting: _Optional[_Union[Promoting, _Mapping]] = ..., out_of_sync: _Optional[bool] = ...) -> None: ...

class Sentinel(_message.Message):
    __slots__ = ("servers", "out_of_sync")
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_SYNC_FIELD_NUMBER: _ClassVar[int]
    servers: _containers.RepeatedScalarFieldContainer[str]
    out_of_sync: bool
    def __init__(self, servers: _Optional[_Iterable[str]] = ..., out_of_sync: _Optional[bool] = ...) -> None: ...

class Proxy(_message.Message):
    __slots__ = ("id", "token", "start_time", "admin_addr", "proto_type", "proxy_addr", "product_name", "pid", "pwd", "sys", "hostname", "datacenter", "version", "status", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_ADDR_FIELD_NUMBER: _ClassVar[int]
    PROTO_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROXY_ADDR_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_NAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PWD_FIELD_NUMBER: _ClassVar[int]
    SYS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    DATACENTER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: int
    token: str
    start_time: _timestamp_pb2.Timestamp
    admin_addr: str
    proto_type: str
    proxy_addr: str
    product_name: str
    pid: int
    pwd: str
    sys: str
    hostname: str
    datacenter: str
    version: str
    status: ProxyStatus
    kind: ProxyKind
    def __init__(self, id: _Optional[int] = ..., token: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., admin_addr: _Optional[str] = ..., proto_type: _Optional[str] = ..., proxy_addr: _Optional[str] = ..., product_name: _Optional[str] = ..., pid: _Optional[int] = ..., pwd: _Optional[str] = ..., sys: _Optional[str] = ..., hostname: _Optional[str] = ..., datacenter: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[_Union[ProxyStatus, _Mapping]] = ..., kind: _Optional[_Union[ProxyKind, str]] = ...) -> None: ...

class ProxyStatus(_message.Message):
    __slots__ = ("lease_state", "applied_revision", "last_heartbeat", "last_nack", "connected", "codis_state", "last_error")
    LEASE_STATE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_REVISION_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    LAST_NACK_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    CODIS_STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    lease_state: LeaseState
    applied_revision: int
    last_heartbeat: _timestamp_pb2.Timestamp
    last_nack: str
    connected: bool
    codis_state: CodisProxyState
    last_error: str
    def __init__(self, lease_state: _Optional[_Union[LeaseState, str]] = ..., applied_revision: _Optional[int] = ..., last_heartbeat: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_nack: _Optional[str] = ..., connected: _Optional[bool] = ..., codis_state: _Optional[_Union[CodisProxyState, str]] = ..., last_error: _Optional[str] = ...) -> None: ...

class TopomModel(_message.Message):
    __slots__ = ("token", "start_time", "admin_addr", "product_name", "pid", "pwd", "sys", "hostname")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_ADDR_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_NAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PWD_FIELD_NUMBER: _ClassVar[int]
    SYS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    token: str
    start_time: _timestamp_pb2.Timestamp
    admin_addr: str
    product_name: str
    pid: int
    pwd: str
    sys: str
    hostname: str
    def __init__(self, token: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., admin_addr: _Optional[str] = ..., product_name: _Optional[str] = ..., pid: _Optional[int] = ..., pwd: _Optional[str] = ..., sys: _Optional[str] = ..., hostname: _Optional[str] = ...) -> None: ...
