"""CARE-Flow: every stage once, every configured evidence type, majority vote."""
from __future__ import annotations

from typing import TYPE_CHECKING

from app.pipeline.vocab import Mode

if TYPE_CHECKING:
    from app.pipeline.context import RunContext
    from app.pipeline.stages import Stages


class FlowStrategy:
    mode = Mode.FLOW

    def __init__(self, stages: "Stages") -> None:
        self.stages = stages

    def run(self, ctx: "RunContext") -> None:
        s = self.stages
        ctx.check_cancel()
        entities = s.propose_entities(ctx)
        ctx.check_cancel()
        s.segment(ctx, entities)
        ctx.check_cancel()
        items = s.build_evidence(ctx, s.evidence_types)
        ctx.check_cancel()
        s.answer(ctx, items)
        ctx.check_cancel()
        s.aggregate(ctx)
