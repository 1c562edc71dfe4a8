"""The contract between a run strategy (CARE-Flow, CARE-Coord) and the pipeline's stages.

:class:`~app.pipeline.engine.CarePipeline` implements :class:`Stages`; strategies and the
coordinator depend on this Protocol only, never on the engine, so the engine knows nothing of
modes and the coordinator package never imports it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence

from .types import EvidenceType

if TYPE_CHECKING:
    from .context import RunContext
    from .profiles import Profile
    from .record import Answer, Entity, EvidenceItem, MaskRecord, RunRecord, VoteResult


class Stages(Protocol):
    """The five CARE stages; each takes the run's context and appends to ``ctx.record``, so a
    strategy may call any of them again (other entities, a subset of evidence, a second pass)."""

    evidence_types: tuple[EvidenceType, ...]  # what CARE-Flow builds (and a failed plan falls back to)

    def propose_entities(self, ctx: "RunContext") -> list["Entity"]: ...

    def segment(self, ctx: "RunContext", entities: Sequence["Entity"]) -> list["MaskRecord"]: ...

    def build_evidence(self, ctx: "RunContext", kinds: Sequence[EvidenceType], *,
                       masks: Sequence["MaskRecord"] | None = None,
                       margin: float | None = None) -> list["EvidenceItem"]: ...

    def answer(self, ctx: "RunContext", items: Sequence["EvidenceItem"]) -> list["Answer"]: ...

    def aggregate(self, ctx: "RunContext", answers: Sequence["Answer"] | None = None) -> "VoteResult": ...


class PipelineHost(Stages, Protocol):
    """Stages plus what a coordinator factory reads to wire a coordinator to the same models,
    and where a strategy records a model's provenance."""

    profile: "Profile"
    max_new_tokens: int | None
    device: str | None
    dtype: str | None

    def backend(self, role: str) -> Any: ...

    def note_model(self, record: "RunRecord", role: str, backend: Any) -> None: ...


class RunPreparer(Protocol):
    """What :func:`app.pipeline.lifecycle.execute_run` needs beside the stages."""

    def prepare(self, volume: Any, slice_index: int, question: str, **kwargs: Any) -> "RunContext": ...

    def check_weights(self) -> None: ...
