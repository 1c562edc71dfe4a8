"""The typed record of one entity's mask (stage 2 output, stored in the run record)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.pipeline.types import Box
from app.pipeline.vocab import ConfidenceGate


@dataclass(frozen=True)
class ProbabilityStats:
    """Statistics of the probability map over the confidence window (the expanded mask bbox)."""

    mean: float
    min: float
    max: float
    entropy: float  # mean per-pixel binary entropy, nats (<= log 2)

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "min": self.min, "max": self.max, "entropy": self.entropy}


@dataclass
class MaskResult:
    """One entity's segmentation and its confidence ``C = 1 - H / log 2``.

    Rejected masks (``accepted`` False) are kept: the record shows what was discarded and why.
    """

    entity: str
    backend: str  # "litemedsam" | "sam3" | ...
    prompt_type: str  # "text" | "box"
    box: Box | None  # the box prompt given to the model (None for text prompts)
    mask: np.ndarray  # (H, W) bool, probability >= 0.5
    area_px: int
    bbox: Box | None  # tight bbox of the mask, (x0, y0, x1, y1) exclusive; None if empty
    window: Box | None  # bbox expanded by 10 % per side: where the entropy was measured
    confidence: float  # the value ``gate`` names (compared with tau)
    accepted: bool
    tau: float
    stats: ProbabilityStats | None  # None for an empty mask
    confidence_paper: float = 0.0  # entropy averaged over the whole map
    confidence_roi: float = 0.0  # entropy averaged over ``window``
    gate: ConfidenceGate = ConfidenceGate.ROI
    object_score: float | None = None  # the backend's own score of this mask, when it has one
    object_score_kind: str = ""  # "iou_head" (LiteMedSAM) | "presence" (SAM3)
    min_object_score: float = 0.0  # > 0: object_score must reach it as well
    # The model's probability map (H, W) float32, for evidence rendering; not serialised.
    probability: np.ndarray | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.mask.shape[0]), int(self.mask.shape[1]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary without the arrays (the mask is stored separately as a PNG)."""
        return {
            "entity": self.entity,
            "backend": self.backend,
            "prompt_type": self.prompt_type,
            "box": _ints(self.box),
            "image_size": [self.shape[1], self.shape[0]],  # (width, height) like the boxes
            "area_px": self.area_px,
            "bbox": _ints(self.bbox),
            "window": _ints(self.window),
            "confidence": float(self.confidence),
            "accepted": bool(self.accepted),
            "tau": float(self.tau),
            "confidence_paper": float(self.confidence_paper),
            "confidence_roi": float(self.confidence_roi),
            "confidence_gate": self.gate.value,
            "object_score": self.object_score,
            "object_score_kind": self.object_score_kind,
            "min_object_score": self.min_object_score,
            "stats": self.stats.to_dict() if self.stats is not None else None,
        }


def _ints(box: Box | None) -> list[int] | None:
    return [int(v) for v in box] if box is not None else None
