"""The one exception type of the client: a gRPC status, code and message."""

from __future__ import annotations

import grpc


class TopomError(Exception):
    """A topom call failed.

    ``code`` is the gRPC status (for example ``grpc.StatusCode.NOT_FOUND``);
    ``message`` is topom's text, which names what was wrong; ``method`` is the
    RPC that failed and ``endpoint`` the topom address that answered (or did
    not answer).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        method: str = "",
        endpoint: str = "",
    ) -> None:
        self.code = code
        self.message = message
        self.method = method
        self.endpoint = endpoint
        where = " ".join(p for p in (method, f"at {endpoint}" if endpoint else "") if p)
        super().__init__(f"{code.name}: {message}" + (f" ({where})" if where else ""))

    @property
    def code_name(self) -> str:
        """The status name, e.g. ``"UNAUTHENTICATED"``."""
        return self.code.name


def from_rpc_error(err: grpc.RpcError, *, method: str, endpoint: str) -> TopomError:
    """Wraps a grpc error (sync or asyncio) as a :class:`TopomError`."""
    code = grpc.StatusCode.UNKNOWN
    details = str(err)
    # Call errors carry code() and details(); a bare RpcError may not.
    if isinstance(err, grpc.Call) or hasattr(err, "code"):
        code = err.code()
        details = err.details() or ""
    return TopomError(code, details, method=method, endpoint=endpoint)
