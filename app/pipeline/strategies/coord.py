"""CARE-Coord: the coordinator drives the stages (plan, rounds, re-grounding, review)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from app.pipeline.types import ModelInfo
from app.pipeline.vocab import Mode, Role

if TYPE_CHECKING:
    from app.pipeline.context import RunContext
    from app.pipeline.stages import PipelineHost, Stages


class Coordinator(Protocol):
    """app.pipeline.coordinator.CareCoordinator: plans which evidence to build, calls the stages,
    reviews the answers, may re-ground, and appends to ``ctx.record.coordinator``."""

    info: ModelInfo

    def run(self, stages: "Stages", ctx: "RunContext") -> None: ...


class CoordStrategy:
    """``coordinator`` None: the profile's coordinator, built on the first run (inside the run,
    so a profile whose coordinator cannot be built ends as a failed record, not a crash) and
    kept for the next question."""

    mode = Mode.COORD

    def __init__(self, stages: "PipelineHost", coordinator: Coordinator | None = None, **overrides: Any) -> None:
        self.stages, self.coordinator, self.overrides = stages, coordinator, overrides

    def ensure_coordinator(self) -> Coordinator:
        if self.coordinator is None:
            from app.pipeline.coordinator.factory import build_coordinator

            self.coordinator = build_coordinator(self.stages, **self.overrides)
        return self.coordinator

    def run(self, ctx: "RunContext") -> None:
        coordinator = self.ensure_coordinator()
        self.stages.note_model(ctx.record, Role.COORDINATOR, coordinator)
        coordinator.run(self.stages, ctx)
