"""What the stages of one question share: the :class:`RunContext` and the stage clocks.

Split from the engine so the coordinator and the run strategies can name the context without
importing the engine (no cycle: engine -> strategies -> coordinator -> context).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from app.study.volume import Volume, Window

from .profile_options import EvidenceOptions
from .record import Entity, RunRecord, StageTiming, utc_now
from .types import Box, Cancelled, Stage

log = logging.getLogger(__name__)

ProgressFn = Callable[[Stage, str, float], None]
CancelFn = Callable[[], bool]

# Rough share of the run each stage takes, for a monotone progress fraction.
STAGE_SPAN = {
    Stage.ENTITIES: (0.00, 0.30),
    Stage.MASKS: (0.30, 0.45),
    Stage.EVIDENCE: (0.45, 0.50),
    Stage.ANSWER: (0.50, 0.98),
    Stage.REVIEW: (0.98, 1.00),
}


@dataclass
class RunContext:
    """Everything the stages share for one question; the record is filled in place."""

    volume: Volume
    slice_index: int
    window: Window
    question: str
    record: RunRecord
    pixels: np.ndarray  # the slice's modality values in the display frame [row, col] (or [row, col, 3])
    image_rgb: np.ndarray  # windowed model input (H, W, 3) uint8
    image_key: str  # identifies (pixels, window) for the segmenters' embedding caches
    progress: ProgressFn | None = None
    cancel: CancelFn | None = None
    boxes: list[Box] = field(default_factory=list)
    discarded: set[str] = field(default_factory=set)
    # Study scope: entities localised on this slice from elsewhere in the volume (a propagated
    # box, a text-route mask's box); the entity stage adds them after the clinician's.
    located: list[Entity] = field(default_factory=list)
    # VQA inputs asked so far in this run (digest of prompt + images -> index into
    # record.answers of the row that asked it): an identical input is never asked twice.
    asked: dict[str, int] = field(default_factory=dict)
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)  # the profile's vqa-role evidence options

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("cancelled by the user")

    def report(self, stage: Stage, message: str, within: float = 0.0) -> None:
        if self.progress is None:
            return
        lo, hi = STAGE_SPAN.get(stage, (0.0, 1.0))
        try:
            self.progress(stage, message, lo + (hi - lo) * min(max(within, 0.0), 1.0))
        except Exception:  # a broken progress sink must not lose the run
            log.exception("progress callback failed")


class StageClock:
    """Times one stage and the model calls inside it (``StageTiming.model_seconds`` is what the
    overhead benchmark subtracts)."""

    def __init__(self, record: RunRecord, stage: Stage) -> None:
        self.record, self.stage = record, stage
        self.model_seconds = 0.0

    def __enter__(self) -> "StageClock":
        self.started = utc_now()
        self.t0 = time.perf_counter()
        return self

    def model(self) -> "ModelClock":
        return ModelClock(self)

    def __exit__(self, *exc: Any) -> None:
        self.record.timings.append(
            StageTiming(self.stage, time.perf_counter() - self.t0, self.started, self.model_seconds)
        )


class ModelClock:
    def __init__(self, stage: StageClock) -> None:
        self.stage = stage
        self.seconds = 0.0

    def __enter__(self) -> "ModelClock":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.stage.model_seconds += self.seconds
