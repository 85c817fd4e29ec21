"""The asyncio client (grpc.aio): :class:`AsyncTopomClient`.

The same helpers as :class:`topom_client.TopomClient`, as coroutines, and
:meth:`AsyncTopomClient.watch_stats` as an async generator::

    async with AsyncTopomClient("127.0.0.1:18080") as c:
        async for r in c.watch_stats(fields=["used_memory"]):
            ...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio

from topom_client import endpoints as ep
from topom_client import follow, ops, records, watch
from topom_client.client import DEFAULT_TIMEOUT
from topom_client.errors import TopomError, from_rpc_error
from topom_client.topom.v1 import topom_pb2

__all__ = ["AsyncTopomClient", "TopomError"]

T = TypeVar("T")
log = logging.getLogger("topom_client")


class AsyncTopomClient:
    """:class:`topom_client.TopomClient` for asyncio; same arguments and rules.

    Create it inside a running event loop; use ``async with`` or
    ``await close()``.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str] | None = None,
        token: str | None = None,
        tls: ep.TLS = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._route = follow.Route(ep.parse_endpoints(endpoints))
        self.timeout = timeout
        self._metadata = ep.metadata(token)
        self._creds = ep.credentials(tls)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closed = False

    def _channel(self, endpoint: str) -> grpc.aio.Channel:
        if self._closed:
            raise TopomError(grpc.StatusCode.CANCELLED, "the client is closed", endpoint=endpoint)
        ch = self._channels.get(endpoint)
        if ch is None:
            if self._creds is None:
                ch = grpc.aio.insecure_channel(endpoint, options=ep.CHANNEL_OPTIONS)
            else:
                ch = grpc.aio.secure_channel(endpoint, self._creds, options=ep.CHANNEL_OPTIONS)
            self._channels[endpoint] = ch
        return ch

    @property
    def endpoints(self) -> list[str]:
        """The endpoints: those given, then leaders learned from standbys."""
        return self._route.endpoints

    async def run(self, op: ops.Op[T], timeout: float | None = None) -> T:
        """Runs one operation (see :mod:`topom_client.ops`)."""
        walk = self._route.walk()
        for endpoint in walk:
            call = self._channel(endpoint).unary_unary(
                op.path,
                request_serializer=type(op.request).SerializeToString,
                response_deserializer=op.response.FromString,
            )
            try:
                resp: Any = await call(
                    op.request,
                    timeout=self.timeout if timeout is None else timeout,
                    metadata=self._metadata,
                )
            except grpc.RpcError as e:
                walk.failed(e, method=op.method, endpoint=endpoint, read=op.read)
                continue
            self._route.settle(endpoint)
            return op.convert(resp)
        raise walk.exhausted(op.method)

    async def close(self) -> None:
        self._closed = True
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close(None)

    async def __aenter__(self) -> AsyncTopomClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- reads ---------------------------------------------------------------

    async def overview(self) -> records.Overview:
        return await self.run(ops.overview())

    async def slots(self) -> records.SlotTable:
        return await self.run(ops.slots())

    async def groups(self) -> list[records.GroupInfo]:
        return await self.run(ops.groups())

    async def group(self, group_id: int) -> records.GroupInfo:
        return await self.run(ops.group(group_id))

    async def proxies(self) -> list[records.ProxyInfo]:
        return await self.run(ops.proxies())

    async def stats(self) -> records.Stats:
        return await self.run(ops.stats())

    async def events(self) -> list[records.Event]:
        return await self.run(ops.events())

    async def server_info(self, addr: str) -> dict[str, str]:
        return await self.run(ops.server_info(addr))

    async def sentinels(self) -> list[str]:
        return await self.run(ops.sentinels())

    # ---- mutations -----------------------------------------------------------

    async def create_group(self, group_id: int) -> records.GroupInfo:
        return await self.run(ops.create_group(group_id))

    async def remove_group(self, group_id: int) -> None:
        return await self.run(ops.remove_group(group_id))

    async def add_server(
        self, group_id: int, addr: str, datacenter: str = "", no_sync: bool = False
    ) -> records.GroupInfo:
        """Adds a server; a replica starts following the master unless `no_sync`."""
        return await self.run(ops.add_server(group_id, addr, datacenter, no_sync))

    async def delete_server(self, group_id: int, addr: str) -> records.GroupInfo:
        return await self.run(ops.delete_server(group_id, addr))

    async def promote(self, group_id: int, addr: str) -> float:
        return await self.run(ops.promote(group_id, addr))

    async def assign_slots(self, assignment: Mapping[int, int]) -> int:
        return await self.run(ops.assign_slots(assignment))

    async def rebalance(self, confirm: bool = False) -> list[records.PlannedMove]:
        return await self.run(ops.rebalance(confirm))

    async def migrate_slot(self, slot_id: int, group_id: int) -> None:
        return await self.run(ops.migrate_slot(slot_id, group_id))

    async def migrate_range(self, begin: int, end: int, group_id: int) -> list[int]:
        return await self.run(ops.migrate_range(begin, end, group_id))

    async def set_migration_disabled(self, disabled: bool) -> None:
        return await self.run(ops.set_migration_disabled(disabled))

    async def resync_group(self, group_id: int) -> int:
        return await self.run(ops.resync_group(group_id))

    async def add_sentinel(self, addr: str) -> list[str]:
        return await self.run(ops.add_sentinel(addr))

    async def remove_sentinel(self, addr: str, force: bool = False) -> list[str]:
        return await self.run(ops.remove_sentinel(addr, force))

    async def resync_sentinels(self) -> list[str]:
        return await self.run(ops.resync_sentinels())

    async def create_sync_action(self, addr: str) -> None:
        """Makes ``addr`` follow its group's master (a queued sync action)."""
        return await self.run(ops.create_sync_action(addr))

    # ---- the stats stream ----------------------------------------------------

    async def watch_stats(
        self,
        groups: Iterable[int] = (),
        addrs: Iterable[str] = (),
        fields: Iterable[str] = (),
        *,
        retries: int | None = 8,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        on_retry: Callable[[TopomError, float], None] | None = None,
    ) -> AsyncIterator[records.StatsRound]:
        """:meth:`topom_client.TopomClient.watch_stats` as an async generator."""
        req = watch.request(groups, addrs, fields)
        backoff = watch.Backoff(backoff_initial, backoff_max, retries)
        rounds = watch.Rounds()
        redirected = False
        while True:
            endpoint = self._route.endpoint
            leader: str | None = None
            rounds.reopened()
            stream = self._channel(endpoint).unary_stream(
                watch.PATH,
                request_serializer=topom_pb2.WatchStatsRequest.SerializeToString,
                response_deserializer=topom_pb2.WatchStatsResponse.FromString,
            )
            call: Any = stream(req, metadata=self._metadata)
            try:
                async for msg in call:
                    r = rounds.accept(msg, endpoint)
                    if r is not None:
                        backoff.reset()
                        redirected = False
                        self._route.settle(endpoint)
                        yield r
                err = TopomError(
                    grpc.StatusCode.UNAVAILABLE, "the stats stream ended", method=watch.METHOD,
                    endpoint=endpoint,
                )
            except grpc.RpcError as e:
                err = from_rpc_error(e, method=watch.METHOD, endpoint=endpoint)
                if err.code in watch.FATAL:
                    raise err from None
                if err.code == grpc.StatusCode.UNAVAILABLE:
                    leader = follow.leader_of(e)
            finally:
                call.cancel()
            if self._closed:
                return  # close() ended the stream
            self._route.moved_on(endpoint, leader)
            pause = backoff.failed(err, self.endpoints)
            if leader is not None and not redirected:
                # A standby named the leader: go there at once (but only once
                # in a row, so two instances naming each other still back off).
                pause = 0.0
            redirected = leader is not None
            if on_retry is not None:
                on_retry(err, pause)
            log.warning("stats stream from %s broke (%s); re-opening in %.2f s", endpoint, err, pause)
            await asyncio.sleep(pause)
