"""The one error type every remote failure ends in."""
from __future__ import annotations

from typing import Literal

from app.pipeline.types import Cancelled, PipelineError

RemoteErrorKind = Literal[
    "connection_refused",  # could not connect (refused, unreachable, name not resolved, reset)
    "timeout",  # an attempt or the overall deadline ran out
    "rate_limited",  # HTTP 429 on every attempt
    "server_error",  # HTTP 5xx on every attempt
    "http_error",  # any other non-2xx status (401, 404, 400, ...): not retried
    "malformed_response",  # body is not the chat-completions JSON we expect / reply fails its schema
    "truncated",  # the body ended before its announced length
    "model_mismatch",  # the server serves a different model than the profile names
    "refused_insecure",  # plain http:// to a non-loopback host without the per-endpoint opt-in
    "consent_required",  # images would be sent to an endpoint the user has not approved
    "too_large",  # the reply is larger than the endpoint's max_response_bytes: not read, not retried
    "cancelled",  # the user cancelled the run while the request was in flight
]

RETRYABLE_KINDS: frozenset[str] = frozenset(
    {"connection_refused", "timeout", "rate_limited", "server_error", "truncated"}
)


class RemoteError(PipelineError):
    """A remote-endpoint failure with a one-line message that names the endpoint.

    Subclasses PipelineError so the engine, the GUI worker and the CLI show it like any
    other pipeline failure (message only, no traceback).
    """

    def __init__(self, kind: RemoteErrorKind, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind: RemoteErrorKind = kind
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"RemoteError({self.kind!r}, {self.message!r})"


class RemoteCancelled(RemoteError, Cancelled):
    """A request stopped because the user cancelled the run.

    Also a :class:`~app.pipeline.types.Cancelled`, so ``execute_run`` records the run as
    cancelled (not failed) and the coordinator does not mistake it for a model failure.
    """

    def __init__(self, message: str) -> None:
        super().__init__("cancelled", message)
