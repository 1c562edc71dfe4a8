"""What every coordinator backend provides: one structured question -> one validated JSON
value, or a :class:`CoordinatorFailure` saying why not (never a hang: both backends are
bounded, by a generation budget or by the HTTP client's deadline)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from app.pipeline.types import ModelInfo, PipelineError

from .structured import Check


class CoordinatorFailure(PipelineError):
    """The coordinator could not give a usable reply; the run falls back to the CARE-Flow vote.

    ``attempts`` keeps the raw text of every reply received, so the record loses nothing.
    """

    def __init__(self, kind: str, message: str, attempts: Sequence["Attempt"] = ()) -> None:
        super().__init__(message)
        self.kind = kind  # "malformed" | a RemoteError kind ("timeout", "rate_limited", ...) | "model_error"
        self.message = message
        self.attempts = list(attempts)


@dataclass
class Attempt:
    """One model reply inside a structured call (the first, and the corrective retry)."""

    text: str
    error: str = ""  # why it was rejected; "" for the accepted one
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class StructuredReply:
    value: Any
    attempts: list[Attempt]
    prompt_text: str  # what was sent (images redacted / templated), for the record
    images_sent: int = 0
    seconds: float = 0.0

    @property
    def tries(self) -> int:
        return len(self.attempts)


class CoordinatorBackend(Protocol):
    info: ModelInfo

    def images_allowed(self) -> tuple[bool, str]:
        """(may images go to this model, why not when they may not)."""
        ...

    def ask(
        self,
        system: str,
        prompt: str,
        images: Sequence[np.ndarray],
        schema: dict[str, Any],
        name: str,
        check: Check | None = None,
        max_new_tokens: int = 768,
    ) -> StructuredReply:
        """One structured call with at most one corrective retry; raises CoordinatorFailure."""
        ...


def failure_text(attempts: Sequence[Attempt]) -> str:
    """The raw replies of a failed call, joined for ``ModelCall.raw_output``."""
    return "\n\n--- retry ---\n\n".join(a.text for a in attempts)
