import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from topom_client.topom.v1 import model_pb2 as _model_pb2
from topom_client.topom.v1 import stats_pb2 as _stats_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterProxyRequest(_message.Message):
    __slots__ = ("proxy",)
    PROXY_FIELD_NUMBER: _ClassVar[int]
    proxy: _model_pb2.Proxy
    def __init__(self, proxy: _Optional[_Union[_model_pb2.Proxy, _Mapping]] = ...) -> None: ...

class RegisterProxyResponse(_message.Message):
    __slots__ = ("id", "lease_ttl", "heartbeat_interval", "product_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    lease_ttl: _duration_pb2.Duration
    heartbeat_interval: _duration_pb2.Duration
    product_name: str
    def __init__(self, id: _Optional[int] = ..., lease_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., product_name: _Optional[str] = ...) -> None: ...

class WatchSlotsRequest(_message.Message):
    __slots__ = ("hello", "ack", "nack", "heartbeat", "stats")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    hello: WatchHello
    ack: SlotsAck
    nack: SlotsNack
    heartbeat: ProxyHeartbeat
    stats: _stats_pb2.ProxyStats
    def __init__(self, hello: _Optional[_Union[WatchHello, _Mapping]] = ..., ack: _Optional[_Union[SlotsAck, _Mapping]] = ..., nack: _Optional[_Union[SlotsNack, _Mapping]] = ..., heartbeat: _Optional[_Union[ProxyHeartbeat, _Mapping]] = ..., stats: _Optional[_Union[_stats_pb2.ProxyStats, _Mapping]] = ...) -> None: ...

class WatchHello(_message.Message):
    __slots__ = ("token", "epoch", "applied_revision")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    APPLIED_REVISION_FIELD_NUMBER: _ClassVar[int]
    token: str
    epoch: str
    applied_revision: int
    def __init__(self, token: _Optional[str] = ..., epoch: _Optional[str] = ..., applied_revision: _Optional[int] = ...) -> None: ...

class SlotsAck(_message.Message):
    __slots__ = ("revision", "nonce")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    revision: int
    nonce: str
    def __init__(self, revision: _Optional[int] = ..., nonce: _Optional[str] = ...) -> None: ...

class SlotsNack(_message.Message):
    __slots__ = ("revision", "nonce", "reason")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    revision: int
    nonce: str
    reason: str
    def __init__(self, revision: _Optional[int] = ..., nonce: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ProxyHeartbeat(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class WatchSlotsResponse(_message.Message):
    __slots__ = ("update", "heartbeat")
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    update: SlotsUpdate
    heartbeat: ServerHeartbeat
    def __init__(self, update: _Optional[_Union[SlotsUpdate, _Mapping]] = ..., heartbeat: _Optional[_Union[ServerHeartbeat, _Mapping]] = ...) -> None: ...

class SlotsUpdate(_message.Message):
    __slots__ = ("epoch", "revision", "nonce", "reset", "slots", "sentinel")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    SENTINEL_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    revision: int
    nonce: str
    reset: bool
    slots: _containers.RepeatedCompositeFieldContainer[_model_pb2.Slot]
    sentinel: _model_pb2.Sentinel
    def __init__(self, epoch: _Optional[str] = ..., revision: _Optional[int] = ..., nonce: _Optional[str] = ..., reset: _Optional[bool] = ..., slots: _Optional[_Iterable[_Union[_model_pb2.Slot, _Mapping]]] = ..., sentinel: _Optional[_Union[_model_pb2.Sentinel, _Mapping]] = ...) -> None: ...

class ServerHeartbeat(_message.Message):
    __slots__ = ("time", "revision", "ack_seq")
    TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ACK_SEQ_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    revision: int
    ack_seq: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., ack_seq: _Optional[int] = ...) -> None: ...
