"""Python client for topom, the gRPC control plane of Codis-style Redis clusters.

- :class:`TopomClient`: typed helpers returning plain Python values, over one
  or more topom endpoints, and :meth:`TopomClient.watch_stats`, a
  self-reconnecting generator of stats rounds.
- :mod:`topom_client.aio`: the same for asyncio.
- :class:`TopomError`: every failed call, with its gRPC status code.
- ``topom-stats-exporter`` (:mod:`topom_client.exporter`): Prometheus metrics
  from the stats stream.

The generated messages and stubs are in :mod:`topom_client.topom.v1`
(regenerate them with ``scripts/gen-clients``); the common ones are
re-exported here, with :class:`Client`, which opens one raw channel for both
services.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from topom_client.client import TopomClient
from topom_client.errors import TopomError
from topom_client.records import ServerRound, StatsRound
from topom_client.topom.v1 import model_pb2, proxy_pb2, stats_pb2, topom_pb2
from topom_client.topom.v1.proxy_pb2_grpc import ProxyControlStub
from topom_client.topom.v1.topom_pb2_grpc import TopomStub

__all__ = [
    "Client",
    "ProxyControlStub",
    "ServerRound",
    "StatsRound",
    "TopomClient",
    "TopomError",
    "TopomStub",
    "model_pb2",
    "proxy_pb2",
    "stats_pb2",
    "topom_pb2",
]

__version__ = "0.2.0"


class Client:
    """One raw gRPC channel to a topom server, with a stub for each service.

    ``target`` is ``"host:port"`` or any gRPC target string. Without
    ``credentials`` the channel is plaintext. Use it as a context manager or
    call :meth:`close`. :class:`TopomClient` is the friendlier interface.
    """

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        if credentials is None:
            self.channel: grpc.Channel = grpc.insecure_channel(target, options=options)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=options)
        #: The admin API, ``topom.v1.Topom`` (generated, untyped).
        self.topom: Any = TopomStub(self.channel)  # type: ignore[no-untyped-call]
        #: The API proxies use, ``topom.v1.ProxyControl`` (generated, untyped).
        self.proxy_control: Any = ProxyControlStub(self.channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
