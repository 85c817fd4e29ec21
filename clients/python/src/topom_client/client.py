"""The blocking client: :class:`TopomClient`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import grpc

from topom_client import endpoints as ep
from topom_client import follow, ops, records, watch
from topom_client.errors import TopomError, from_rpc_error
from topom_client.topom.v1 import topom_pb2

T = TypeVar("T")
log = logging.getLogger("topom_client")

#: The default deadline of a unary call, seconds.
DEFAULT_TIMEOUT = 10.0


class TopomClient:
    """A client of one topom product, over one or more topom endpoints.

    ``endpoints`` is ``"host:port"``, ``"h1:p1,h2:p2"`` or a list: every topom
    instance of the product; None reads ``$TOPOM_ADDR``. Calls go to the
    endpoint that last answered and follow the leader a standby names; a
    dead endpoint is skipped; a mutation whose outcome is unknown is never
    re-sent (the rule is in :mod:`topom_client.follow`). ``token`` is the admin token, sent as
    ``authorization: Bearer <token>`` on every call. ``tls``: None/False for
    plaintext, True for TLS with the system roots, or
    ``grpc.ChannelCredentials``. ``timeout`` is the deadline of each unary
    call, in seconds. Every failure raises :class:`TopomError`.

    Use it as a context manager or call :meth:`close`. It is safe to share
    between threads.
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
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()
        self._closed = False

    # ---- plumbing ------------------------------------------------------------

    def _channel(self, endpoint: str) -> grpc.Channel:
        with self._lock:
            if self._closed:
                raise TopomError(grpc.StatusCode.CANCELLED, "the client is closed", endpoint=endpoint)
            ch = self._channels.get(endpoint)
            if ch is None:
                if self._creds is None:
                    ch = grpc.insecure_channel(endpoint, options=ep.CHANNEL_OPTIONS)
                else:
                    ch = grpc.secure_channel(endpoint, self._creds, options=ep.CHANNEL_OPTIONS)
                self._channels[endpoint] = ch
            return ch

    @property
    def endpoints(self) -> list[str]:
        """The endpoints: those given, then leaders learned from standbys."""
        return self._route.endpoints

    def run(self, op: ops.Op[T], timeout: float | None = None) -> T:
        """Runs one operation (see :mod:`topom_client.ops`)."""
        walk = self._route.walk()
        for endpoint in walk:
            call = self._channel(endpoint).unary_unary(
                op.path,
                request_serializer=type(op.request).SerializeToString,
                response_deserializer=op.response.FromString,
            )
            try:
                resp: Any = call(
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

    def close(self) -> None:
        with self._lock:
            self._closed = True
            channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            ch.close()

    def __enter__(self) -> TopomClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- reads ---------------------------------------------------------------

    def overview(self) -> records.Overview:
        """Version, product, counts, slots per group, revision (``GetOverview``)."""
        return self.run(ops.overview())

    def slots(self) -> records.SlotTable:
        """The 1024 slot mappings with their actions (``ListSlots``)."""
        return self.run(ops.slots())

    def groups(self) -> list[records.GroupInfo]:
        return self.run(ops.groups())

    def group(self, group_id: int) -> records.GroupInfo:
        return self.run(ops.group(group_id))

    def proxies(self) -> list[records.ProxyInfo]:
        return self.run(ops.proxies())

    def stats(self) -> records.Stats:
        """The latest stats round with proxies, migrations and Sentinel masters (``GetStats``)."""
        return self.run(ops.stats())

    def events(self) -> list[records.Event]:
        """Recent master switches and promotes, oldest first."""
        return self.run(ops.events())

    def server_info(self, addr: str) -> dict[str, str]:
        """INFO of any Redis server, through topom."""
        return self.run(ops.server_info(addr))

    def sentinels(self) -> list[str]:
        return self.run(ops.sentinels())

    # ---- mutations -----------------------------------------------------------

    def create_group(self, group_id: int) -> records.GroupInfo:
        return self.run(ops.create_group(group_id))

    def remove_group(self, group_id: int) -> None:
        return self.run(ops.remove_group(group_id))

    def add_server(
        self, group_id: int, addr: str, datacenter: str = "", no_sync: bool = False
    ) -> records.GroupInfo:
        """Adds a server; a replica starts following the master unless `no_sync`."""
        return self.run(ops.add_server(group_id, addr, datacenter, no_sync))

    def delete_server(self, group_id: int, addr: str) -> records.GroupInfo:
        return self.run(ops.delete_server(group_id, addr))

    def promote(self, group_id: int, addr: str) -> float:
        """Switches the master; answers the write pause in seconds."""
        return self.run(ops.promote(group_id, addr))

    def assign_slots(self, assignment: Mapping[int, int]) -> int:
        """Assigns slots (slot id -> group id) without migrating; answers the revision."""
        return self.run(ops.assign_slots(assignment))

    def rebalance(self, confirm: bool = False) -> list[records.PlannedMove]:
        return self.run(ops.rebalance(confirm))

    def migrate_slot(self, slot_id: int, group_id: int) -> None:
        return self.run(ops.migrate_slot(slot_id, group_id))

    def migrate_range(self, begin: int, end: int, group_id: int) -> list[int]:
        return self.run(ops.migrate_range(begin, end, group_id))

    def set_migration_disabled(self, disabled: bool) -> None:
        return self.run(ops.set_migration_disabled(disabled))

    def resync_group(self, group_id: int) -> int:
        return self.run(ops.resync_group(group_id))

    def add_sentinel(self, addr: str) -> list[str]:
        return self.run(ops.add_sentinel(addr))

    def remove_sentinel(self, addr: str, force: bool = False) -> list[str]:
        return self.run(ops.remove_sentinel(addr, force))

    def resync_sentinels(self) -> list[str]:
        return self.run(ops.resync_sentinels())

    def create_sync_action(self, addr: str) -> None:
        """Makes ``addr`` follow its group's master (a queued sync action)."""
        return self.run(ops.create_sync_action(addr))

    # ---- the stats stream ----------------------------------------------------

    def watch_stats(
        self,
        groups: Iterable[int] = (),
        addrs: Iterable[str] = (),
        fields: Iterable[str] = (),
        *,
        retries: int | None = 8,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        on_retry: Callable[[TopomError, float], None] | None = None,
    ) -> Iterator[records.StatsRound]:
        """Yields one :class:`~topom_client.records.StatsRound` per refresh round.

        Filters (empty = everything): group ids, server addresses, INFO field
        names to keep in ``fields``. The stream is re-opened by itself when it
        breaks or topom restarts, on the next endpoint, after a jittered
        exponential backoff (``backoff_initial`` doubling up to ``backoff_max``
        seconds). ``retries`` bounds the attempts in a row that bring no round
        (None: retry forever); past it, or at once for a refused request
        (UNAUTHENTICATED, NOT_FOUND, ...), it raises :class:`TopomError`.
        Each dict says how many rounds were ``skipped`` since the previous
        one and whether the stream was ``resumed``. ``on_retry(error,
        pause)`` is called before each re-open (for logs or metrics).
        """
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
                for msg in call:
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
            time.sleep(pause)
