"""What a run strategy is: given a prepared context, drive the stages to a finished record."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from app.pipeline.vocab import Mode

if TYPE_CHECKING:
    from app.pipeline.context import RunContext


class RunStrategy(Protocol):
    """``mode`` is written to the record as it is; ``run`` raises Cancelled / PipelineError like a
    stage does and leaves the status to :func:`app.pipeline.lifecycle.execute_run`."""

    mode: Mode

    def run(self, ctx: "RunContext") -> None: ...
