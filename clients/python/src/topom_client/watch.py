"""What the sync and asyncio ``watch_stats`` share: the request, the backoff
and the bookkeeping of round numbers."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

import grpc

from topom_client import convert, records
from topom_client.errors import TopomError
from topom_client.topom.v1 import topom_pb2

log = logging.getLogger("topom_client.watch")

METHOD = "WatchStats"
PATH = "/topom.v1.Topom/WatchStats"

#: Errors that no retry can fix: the request itself is refused.
FATAL = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


def request(
    groups: Iterable[int], addrs: Iterable[str], fields: Iterable[str]
) -> topom_pb2.WatchStatsRequest:
    return topom_pb2.WatchStatsRequest(
        group_ids=list(groups), addrs=list(addrs), fields=list(fields)
    )


class Backoff:
    """Jittered exponential backoff with a bound on consecutive failures.

    ``retries`` is how many attempts in a row may fail (None: no bound);
    :meth:`failed` answers the pause before the next attempt, or raises once
    the bound is reached. A received round calls :meth:`reset`.
    """

    def __init__(self, initial: float, maximum: float, retries: int | None) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"bad backoff: initial {initial}, maximum {maximum}")
        if retries is not None and retries < 0:
            raise ValueError(f"retries must be >= 0 or None, got {retries}")
        self.initial = initial
        self.maximum = maximum
        self.retries = retries
        self.failures = 0
        self._rng = random.Random()

    def reset(self) -> None:
        self.failures = 0

    def failed(self, err: TopomError, endpoints: list[str]) -> float:
        self.failures += 1
        if self.retries is not None and self.failures > self.retries:
            raise TopomError(
                err.code,
                f"no stats stream from {', '.join(endpoints)} after {self.failures} attempts; "
                f"last error: {err.message}",
                method=METHOD,
                endpoint=err.endpoint,
            ) from err
        ceiling = min(self.maximum, self.initial * 2.0 ** (self.failures - 1))
        # "Equal jitter": at least half the ceiling, so retries never bunch up
        # at zero, and at most the ceiling.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


class Rounds:
    """Turns messages into :class:`~topom_client.records.StatsRound` dicts,
    counting skipped rounds and dropping the repeat a re-opened stream starts with."""

    def __init__(self) -> None:
        self.last: int | None = None
        self._last_started: tuple[int, int] | None = None
        self.resumed = False

    def reopened(self) -> None:
        """The next message comes from a new stream."""
        self.resumed = self.last is not None

    def accept(
        self, msg: topom_pb2.WatchStatsResponse, endpoint: str
    ) -> records.StatsRound | None:
        if msg.round == 0:
            return None  # topom has not finished a round yet
        started = (msg.started_at.seconds, msg.started_at.nanos)
        if msg.round == self.last and started == self._last_started:
            return None  # a re-opened stream repeats the round we have
        skipped = 0
        if self.last is not None and msg.round > self.last + 1:
            skipped = msg.round - self.last - 1
            log.warning(
                "skipped %d stats round(s) (%d..%d) from %s: the reader was slower than topom"
                if not self.resumed
                else "skipped %d stats round(s) (%d..%d) from %s while the stream was down",
                skipped, self.last + 1, msg.round - 1, endpoint,
            )
        elif self.last is not None and msg.round <= self.last:
            log.warning(
                "stats round %d from %s is not after %d: topom restarted, numbering starts again",
                msg.round, endpoint, self.last,
            )
        out = convert.stats_round(msg, skipped=skipped, resumed=self.resumed, endpoint=endpoint)
        self.last = msg.round
        self._last_started = started
        self.resumed = False
        return out
