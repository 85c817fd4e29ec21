"""Endpoints, credentials and call metadata shared by the sync and asyncio clients."""

from __future__ import annotations

import os
from collections.abc import Sequence

import grpc

#: A TLS setting: None or False for plaintext, True for TLS with the system
#: roots, or ready-made channel credentials (custom roots, client certs).
TLS = grpc.ChannelCredentials | bool | None

#: Keep idle streams alive through NATs and notice a dead topom within
#: seconds rather than at the next TCP timeout.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Reconnect attempts of the channel itself stay short; the clients do
    # their own backoff across endpoints.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    # A full GetStats of a large product exceeds the 4 MiB default.
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
)


#: Where the endpoints come from when the caller gives none.
ENV_ADDR = "TOPOM_ADDR"


def parse_endpoints(endpoints: str | Sequence[str] | None) -> list[str]:
    """``"a:1,b:2"`` or ``["a:1", "b:2"]`` -> ``["a:1", "b:2"]``; at least one.
    ``None`` reads ``$TOPOM_ADDR`` (same form)."""
    if endpoints is None:
        endpoints = os.environ.get(ENV_ADDR, "")
        if not endpoints.strip():
            raise ValueError(
                f"no topom endpoint given and ${ENV_ADDR} is empty; want host:port[,host:port...]"
            )
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    out = [e.strip() for e in items if e.strip()]
    if not out:
        raise ValueError(f"no topom endpoint given (got {endpoints!r}); want host:port[,host:port...]")
    for e in out:
        host, sep, port = e.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"bad topom endpoint {e!r}: want host:port")
    return out


def credentials(tls: TLS) -> grpc.ChannelCredentials | None:
    """The channel credentials for ``tls``, None for plaintext."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return grpc.ssl_channel_credentials()
    return tls


def metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata carrying the admin token (sent on every call, so
    that reads work when topom has ``auth_reads``)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


#: Statuses after which the same call may succeed on another endpoint or later.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
