"""Which topom endpoint a call goes to, and whether a failed call may go on
to another one. Shared by the sync and asyncio clients; no I/O here.

The rule (topom-admin's and the Go client's):

- an ``UNAVAILABLE`` answer naming a leader in the trailing metadata
  ``topom-leader`` comes from a standby, which did nothing: the call, even a
  mutation, goes to that leader next (added to the endpoints when new);
- an ``UNAVAILABLE`` marked ``topom-role: standby`` but naming nobody (an
  election is under way): the next endpoint, even for a mutation;
- a connection that could not be made (the request never left): the next
  endpoint;
- any other ``UNAVAILABLE``: a read goes to the next endpoint; a mutation
  stops, because Python's grpc reports a connection cut mid-call with the
  same code and no marker, and the mutation may have been applied;
- ``DEADLINE_EXCEEDED`` stops every call (a mutation's message says its
  outcome is unknown);
- one pass over the endpoints plus the leaders learned on the way; each is
  tried at most once per call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import grpc

from topom_client.errors import TopomError, from_rpc_error

#: The metadata key a standby names the leader under.
LEADER_KEY = "topom-leader"

#: The metadata key (value ``standby``) a standby marks its refusals with.
ROLE_KEY = "topom-role"

#: How grpc core words a failure to connect: nothing was sent.
_NOT_CONNECTED = ("failed to connect to all addresses", "DNS resolution failed")


def _trailer(err: grpc.RpcError, name: str) -> str | None:
    trailing = getattr(err, "trailing_metadata", None)
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key == name:
            text = value.decode() if isinstance(value, bytes) else str(value)
            return text.strip() or None
    return None


def leader_of(err: grpc.RpcError) -> str | None:
    """The leader ``host:port`` named in the trailing metadata of ``err``."""
    return _trailer(err, LEADER_KEY)


def from_standby(err: grpc.RpcError) -> bool:
    """Whether ``err`` is a standby's refusal (it did nothing)."""
    return _trailer(err, ROLE_KEY) == "standby" or leader_of(err) is not None


def never_sent(err: TopomError) -> bool:
    """Whether ``err`` says no connection could be made (so nothing was sent)."""
    return err.code == grpc.StatusCode.UNAVAILABLE and any(
        m in err.message for m in _NOT_CONNECTED
    )


class Route:
    """The endpoints of one client (given, then learned leaders) and the one
    calls start at: the one that answered last."""

    def __init__(self, endpoints: list[str]) -> None:
        self.endpoints: list[str] = list(dict.fromkeys(endpoints))
        self.current = 0

    @property
    def endpoint(self) -> str:
        """Where the next call starts."""
        return self.endpoints[self.current]

    def walk(self) -> Walk:
        """One call's pass, from the current endpoint."""
        n = len(self.endpoints)
        return Walk(self, [self.endpoints[(self.current + i) % n] for i in range(n)])

    def settle(self, endpoint: str) -> None:
        """``endpoint`` answered: calls start there."""
        if endpoint in self.endpoints:
            self.current = self.endpoints.index(endpoint)

    def learn(self, leader: str) -> None:
        if leader not in self.endpoints:
            self.endpoints.append(leader)

    def moved_on(self, endpoint: str, leader: str | None) -> None:
        """A stream at ``endpoint`` failed: re-open at ``leader`` when one was
        named, else at the endpoint after it."""
        if leader is not None:
            self.learn(leader)
            self.settle(leader)
            return
        if endpoint in self.endpoints and self.endpoints.index(endpoint) == self.current:
            self.current = (self.current + 1) % len(self.endpoints)


class Walk:
    """The endpoints one unary call tries, in order."""

    def __init__(self, route: Route, order: list[str]) -> None:
        self._route = route
        self._queue = deque(order)
        self.tried: list[tuple[str, TopomError]] = []

    def __iter__(self) -> Iterator[str]:
        while self._queue:
            yield self._queue.popleft()

    def failed(self, e: grpc.RpcError, *, method: str, endpoint: str, read: bool) -> None:
        """Records that ``endpoint`` failed with ``e``; raises the error to give
        up with, or returns to go on with the next endpoint."""
        err = from_rpc_error(e, method=method, endpoint=endpoint)
        leader = leader_of(e) if err.code == grpc.StatusCode.UNAVAILABLE else None
        if err.code == grpc.StatusCode.DEADLINE_EXCEEDED and not read:
            raise _unknown(err, "no answer came within the deadline") from None
        if err.code != grpc.StatusCode.UNAVAILABLE:
            raise err from None
        if not read and not from_standby(e) and not never_sent(err):
            raise _unknown(err, "it failed without naming a leader") from None
        self.tried.append((endpoint, err))
        if leader is not None:
            self._route.learn(leader)
            if leader not in (t for t, _ in self.tried):
                if leader in self._queue:
                    self._queue.remove(leader)
                self._queue.appendleft(leader)

    def exhausted(self, method: str) -> TopomError:
        """The error once every endpoint failed: the only one, or one naming
        every endpoint tried and why."""
        endpoint, last = self.tried[-1]
        if len(self.tried) == 1:
            return last
        each = ", ".join(f"{e} ({err.code.name}: {err.message})" for e, err in self.tried)
        return TopomError(
            last.code, f"no topom endpoint could serve {method}; tried {each}",
            method=method, endpoint=endpoint,
        )


def _unknown(err: TopomError, what: str) -> TopomError:
    return TopomError(
        err.code,
        f"{err.message}: {err.method} was sent to {err.endpoint}, then {what}; it may have "
        "been applied, so it was not retried on another endpoint; check the state "
        "(e.g. overview()) before running it again",
        method=err.method, endpoint=err.endpoint,
    )
