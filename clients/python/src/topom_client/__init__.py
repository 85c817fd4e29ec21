"""Python client for topom, the gRPC control plane of Codis-style Redis clusters.

The generated messages and stubs are in :mod:`topom_client.topom.v1`
(regenerate them with ``scripts/gen-clients``); the common ones are
re-exported here, with :class:`Client`, which opens one channel for both
services.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from topom_client.topom.v1 import model_pb2, proxy_pb2, stats_pb2, topom_pb2
from topom_client.topom.v1.proxy_pb2_grpc import ProxyControlStub
from topom_client.topom.v1.topom_pb2_grpc import TopomStub

__all__ = [
    "Client",
    "ProxyControlStub",
    "TopomStub",
    "model_pb2",
    "proxy_pb2",
    "stats_pb2",
    "topom_pb2",
]

__version__ = "0.1.0"


class Client:
    """One gRPC channel to a topom server, with a stub for each service.

    ``target`` is ``"host:port"`` or any gRPC target string. Without
    ``credentials`` the channel is plaintext. Use it as a context manager or
    call :meth:`close`.
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
        #: The admin API, ``topom.v1.Topom``.
        self.topom = TopomStub(self.channel)
        #: The API proxies use, ``topom.v1.ProxyControl``.
        self.proxy_control = ProxyControlStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
