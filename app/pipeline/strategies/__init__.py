"""Run strategies, chosen by the caller (CLI, GUI worker, self-test) at the composition root
with :func:`strategy_for`; the engine only provides the stages."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.pipeline.types import PipelineError
from app.pipeline.vocab import Mode

from .base import RunStrategy
from .coord import Coordinator, CoordStrategy
from .flow import FlowStrategy

if TYPE_CHECKING:
    from app.pipeline.stages import PipelineHost


def strategy_for(mode: Mode | str, stages: "PipelineHost", *, coordinator: Coordinator | None = None,
                 eager: bool = False, **coord_overrides: Any) -> RunStrategy:
    """The strategy for ``mode`` over ``stages``; ``coordinator`` / ``coord_overrides`` (e.g.
    ``uncertainty_threshold``) apply to CARE-Coord only. ``eager`` builds the coordinator now, so
    a CLI reports a profile's unusable coordinator before any work (PipelineError); otherwise it
    is built inside the first run and a failure there ends as a failed record (the GUI)."""
    try:
        chosen = Mode(mode)
    except ValueError:
        raise PipelineError(f"unknown mode {mode!r} (expected 'flow' or 'coord')") from None
    if chosen is Mode.COORD:
        strategy = CoordStrategy(stages, coordinator, **coord_overrides)
        if eager:
            strategy.ensure_coordinator()
        return strategy
    return FlowStrategy(stages)


__all__ = ["CoordStrategy", "Coordinator", "FlowStrategy", "RunStrategy", "strategy_for"]
