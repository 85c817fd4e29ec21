"""Fake topom instances for the endpoint-following tests: grpc.aio servers on
loopback, in an event loop of their own thread, so that both the blocking and
the asyncio client can call them.

Roles: ``leader`` answers every unary RPC with an empty message (the default
of any response) and WatchStats with one round; ``standby`` answers
UNAVAILABLE with the trailing metadata ``topom-leader``; ``electing`` is a
standby while nobody leads (``topom-role: standby`` only); ``hang`` never
answers; ``cut`` sits behind a relay that drops the connection while the
call is in flight.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import grpc.aio

from topom_client.topom.v1 import topom_pb2

T = TypeVar("T")


@dataclass
class Fake:
    """One fake instance: its address and the RPCs it received, in order."""

    role: str
    leader: str = ""
    addr: str = ""
    calls: list[str] = field(default_factory=list)
    cut: asyncio.Event | None = None


def _ident(b: bytes) -> bytes:
    return b


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = str(details.method).rsplit("/", 1)[-1]
        fake = self.fake

        async def refuse_or_wait(context: grpc.aio.ServicerContext[Any, Any]) -> None:
            fake.calls.append(method)
            if fake.role == "standby":
                context.set_trailing_metadata((("topom-leader", fake.leader),))
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"standby: the leader is {fake.leader}")
            if fake.role == "electing":
                context.set_trailing_metadata((("topom-role", "standby"),))
                await context.abort(grpc.StatusCode.UNAVAILABLE, "standby: no instance leads right now")
            if fake.role == "cut":
                assert fake.cut is not None
                fake.cut.set()
            if fake.role in ("hang", "cut"):
                await asyncio.sleep(3600)

        async def unary(_: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            await refuse_or_wait(context)
            return b""

        async def stream(_: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
            await refuse_or_wait(context)
            msg = topom_pb2.WatchStatsResponse(round=1)
            msg.started_at.GetCurrentTime()
            yield msg.SerializeToString()

        if method == "WatchStats":
            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=_ident, response_serializer=_ident
            )
        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=_ident, response_serializer=_ident
        )


class Fakes:
    """Starts fakes in a background event loop; :meth:`close` stops them all."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: list[grpc.aio.Server] = []
        self._relays: list[asyncio.Server] = []

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self, role: str, leader: str = "") -> Fake:
        fake = Fake(role, leader)
        self._run(self._serve(fake))
        return fake

    async def _serve(self, fake: Fake) -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_Handler(fake),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._servers.append(server)
        fake.addr = f"127.0.0.1:{port}"
        if fake.role == "cut":
            fake.cut = asyncio.Event()
            fake.addr = await self._relay(fake.addr, fake.cut)

    async def _relay(self, upstream: str, cut: asyncio.Event) -> str:
        host, port = upstream.rsplit(":", 1)

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()

        async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
            ur, uw = await asyncio.open_connection(host, int(port))
            pumps = [asyncio.ensure_future(pump(cr, uw)), asyncio.ensure_future(pump(ur, cw))]
            await cut.wait()
            cut.clear()
            # Both sides drop with the call in flight, as when a host dies.
            cw.transport.abort()
            uw.transport.abort()
            for p in pumps:
                p.cancel()

        relay = await asyncio.start_server(handle, "127.0.0.1", 0)
        self._relays.append(relay)
        return f"127.0.0.1:{relay.sockets[0].getsockname()[1]}"

    def close(self) -> None:
        async def stop() -> None:
            for r in self._relays:
                r.close()
            for s in self._servers:
                await s.stop(None)

        self._run(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
